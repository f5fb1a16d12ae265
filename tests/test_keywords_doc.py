"""docs/keywords.md is generated from the keyword tables and must match them.

The page is what operators read to know whether a directive works in haproxy-py; if it were edited
by hand or left stale after a table change, it would lie. Regenerate it with
`python -m haproxy_py.config.docs > docs/keywords.md`.
"""

from __future__ import annotations

import os

import pytest

from haproxy_py.config import docs
from haproxy_py.config.keywords import BIND_PARAMS, GLOBAL, OPTIONS, PROXY, SERVER_PARAMS, Keyword

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "keywords.md")
REGENERATE = "regenerate it with: python -m haproxy_py.config.docs > docs/keywords.md"
TABLES = {"GLOBAL": GLOBAL, "PROXY": PROXY, "OPTIONS": OPTIONS, "BIND_PARAMS": BIND_PARAMS,
          "SERVER_PARAMS": SERVER_PARAMS}


def test_docs_file_matches_the_tables() -> None:
    assert os.path.exists(DOC), f"docs/keywords.md is missing; {REGENERATE}"
    with open(DOC, encoding="utf-8") as f:
        committed = f.read()
    assert committed == docs.render(), f"docs/keywords.md is out of date; {REGENERATE}"


@pytest.mark.parametrize("table", list(TABLES), ids=list(TABLES))
def test_every_keyword_is_documented_once(table: str) -> None:
    text = docs.render()
    for name in TABLES[table]:
        assert f"| `{docs._cell(name)}` |" in text, f"{table}: {name} missing from the page"


@pytest.mark.parametrize("table", list(TABLES), ids=list(TABLES))
def test_every_keyword_has_a_known_status_and_a_summary(table: str) -> None:
    for name, kw in TABLES[table].items():
        assert isinstance(kw, Keyword) and kw.name == name
        assert kw.status in docs.STATUS_LABELS, f"{name}: unknown status {kw.status!r}"
        assert kw.summary.strip(), f"{name}: no summary"
        assert set(kw.caps) <= set("dflb") and kw.caps, f"{name}: bad capabilities {kw.caps!r}"


def test_render_is_deterministic() -> None:
    assert docs.render() == docs.render()


def test_intro_explains_every_status() -> None:
    text = docs.render()
    for label in docs.STATUS_LABELS.values():
        assert f"| {label} |" in text


def test_capability_columns() -> None:
    """`server` may only appear in listen and backend sections: l and b are marked, d and f are not."""
    row = next(line for line in docs.render().splitlines() if line.startswith("| `server` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:7] == ["", "", "x", "x"]
