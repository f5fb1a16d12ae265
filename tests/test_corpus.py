"""haproxy-py's verdict on 123 real-world haproxy.cfg files against HAProxy 2.6's (`oracle.tsv`).

For every file the oracle lists, haproxy-py must accept it where HAProxy did (`-c` exit 0 or 2) and
refuse it where HAProxy refused it (exit 1), unless the file is listed in
`tests/corpus_disagreements.py` with the reason. The list must stay exact: a listed file that now
agrees fails too, so improvements show up and the list is pruned.

Files are loaded from inside the corpus folder (their `aux/` paths are relative), with an empty
environment and host names resolved, as HAProxy ran them.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from corpus_disagreements import KNOWN
from haproxy_py.config import loader
from haproxy_py.config.errors import ConfigError

CORPUS = os.environ.get("HAPROXY_PY_CORPUS", "/work/shared/corpus")
ORACLE = os.path.join(CORPUS, "oracle.tsv")


def _rows() -> list[dict[str, str]]:
    if not os.path.exists(ORACLE):
        return []
    with open(ORACLE, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


ROWS = _rows()
pytestmark = pytest.mark.skipif(not ROWS, reason=f"corpus not found: {ORACLE} is missing")


@pytest.fixture
def in_corpus() -> Iterator[None]:
    """Run from the corpus folder: the files name their stand-in certificates, maps... as `aux/...`."""
    old = os.getcwd()
    os.chdir(CORPUS)
    try:
        yield
    finally:
        os.chdir(old)


def verdict(name: str) -> tuple[bool, str]:
    """(accepted?, first alert as printed) for one corpus file."""
    try:
        loader.load([name], env={}, resolve=True)
    except ConfigError as e:
        return False, e.alerts[0].render(0) if e.alerts else str(e)
    return True, ""


def haproxy_accepted(row: dict[str, str]) -> bool:
    return row["exit_code"] in ("0", "2")


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_file_verdict(row: dict[str, str], in_corpus: None) -> None:
    name = row["file"]
    accepted, alert = verdict(name)
    agrees = accepted == haproxy_accepted(row)
    if name in KNOWN:
        reason, evidence = KNOWN[name]
        assert not agrees, f"{name} now agrees with HAProxy: remove it from tests/corpus_disagreements.py"
        assert evidence in alert, f"{name} disagrees for another reason than listed ({reason}): {alert}"
        return
    assert agrees, (
        f"{name}: HAProxy {'accepted' if haproxy_accepted(row) else 'refused'} it "
        f"({row['category']}: {row['first_alert'] or 'no alert'}), haproxy-py "
        f"{'accepted' if accepted else 'refused'} it {alert}"
    )


def test_known_disagreements_name_corpus_files() -> None:
    files = {r["file"] for r in ROWS}
    assert not set(KNOWN) - files, "tests/corpus_disagreements.py names files that are not in oracle.tsv"


def test_agreement_summary(in_corpus: None, record_property: Callable[[str, object], None],
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Counts for the record (shown with -s, and as a property in junit reports)."""
    outcome: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for row in ROWS:
        accepted, _alert = verdict(row["file"])
        if accepted == haproxy_accepted(row):
            outcome["agree"] += 1
        else:
            outcome["disagree"] += 1
            reasons[KNOWN.get(row["file"], ("UNLISTED", ""))[0]] += 1
    summary = (f"corpus: {len(ROWS)} files, {outcome['agree']} agree with HAProxy 2.6, {outcome['disagree']} "
               f"disagree ({len(KNOWN)} known)")
    record_property("corpus_summary", summary)
    with capsys.disabled():
        print("\n" + summary)
        for reason, n in reasons.most_common():
            print(f"  {n:3d}  {reason}")
    assert outcome["agree"] + outcome["disagree"] == len(ROWS)
    assert outcome["disagree"] == len(KNOWN)
