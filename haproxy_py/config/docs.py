"""Operator documentation of the configuration keywords, generated from the keyword tables.

The tables in `keywords` are what the loader obeys, so documentation generated from them cannot
drift from the behaviour: `python -m haproxy_py.config.docs > docs/keywords.md` regenerates
`docs/keywords.md`, and a test fails when the committed file differs from `render()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from haproxy_py.config.keywords import BIND_PARAMS, GLOBAL, OPTIONS, OTHER_SECTIONS, PROXY, SERVER_PARAMS, Keyword

STATUS_LABELS = {
    "supported": "supported",
    "no-effect": "no effect",
    "ignored": "ignored (warning)",
    "unsupported": "unsupported (alert)",
    "removed": "removed (alert)",
}

INTRO = """\
# Configuration keywords

haproxy-py reads HAProxy 2.6 configuration files. This page lists every keyword it knows, section by
section, and what it does with each. It is generated from the keyword tables the parser itself uses
(`python -m haproxy_py.config.docs > docs/keywords.md`), so it cannot go out of date.

A keyword has one of these statuses:

| status | meaning |
|---|---|
| supported | parsed and checked as HAProxy 2.6 does, and it acts as in HAProxy (see *differs* for the exceptions) |
| no effect | accepted and checked, but changes nothing observable in haproxy-py (a tuning knob of something haproxy-py does differently: threads, pollers, TLS, HTTP/2...) |
| ignored (warning) | accepted with a warning: HAProxy would act on it, haproxy-py does not, and the configuration still makes sense without it |
| unsupported (alert) | refused with the alert "... haproxy-py does not implement ...": running without the feature would silently change what the configuration means, so haproxy-py will not start |
| removed (alert) | no longer part of HAProxy 2.6 either; refused with HAProxy's own message, which names the replacement |

A keyword that is not listed is unknown to HAProxy 2.6 too, and is refused with HAProxy's "unknown
keyword" alert (with its "did you mean" hint). Every alert names the file and line it is about.

In the proxy tables, the columns d f l b say where a keyword may appear: `defaults`, `frontend`,
`listen`, `backend`. As in HAProxy, a keyword written in a section that lacks the capability is
ignored with a warning (a few, such as `server`, are refused instead).

These sections are recognised and skipped with a warning (their content is not implemented):
{others}.
"""


def _cell(text: str) -> str:
    """Markdown table cell: pipes escaped, line breaks removed."""
    return " ".join(text.replace("|", "\\|").split())


def _caps(kw: Keyword) -> list[str]:
    return ["x" if c in kw.caps else "" for c in "dflb"]


def _table(keywords: Mapping[str, Keyword], with_caps: bool) -> Iterable[str]:
    head = ["keyword", "syntax", "status"] + (["d", "f", "l", "b"] if with_caps else []) + ["summary", "differs"]
    yield "| " + " | ".join(head) + " |"
    yield "|" + "---|" * len(head)
    for name in sorted(keywords):
        kw = keywords[name]
        row = [f"`{_cell(name)}`", f"`{_cell(kw.syntax)}`", STATUS_LABELS.get(kw.status, kw.status)]
        if with_caps:
            row += _caps(kw)
        row += [_cell(kw.summary), _cell(kw.differs)]
        yield "| " + " | ".join(row) + " |"


def _counts(keywords: Mapping[str, Keyword]) -> str:
    counts: dict[str, int] = {}
    for kw in keywords.values():
        counts[kw.status] = counts.get(kw.status, 0) + 1
    parts = [f"{n} {STATUS_LABELS[s]}" for s, n in sorted(counts.items(), key=lambda x: list(STATUS_LABELS).index(x[0]))]
    return f"{len(keywords)} keywords: " + ", ".join(parts) + "."


SECTIONS: list[tuple[str, str, Mapping[str, Keyword], bool]] = [
    ("global", "Keywords of the `global` section, including every `tune.*` keyword of HAProxy 2.6.", GLOBAL, False),
    ("proxies", "Keywords of `defaults`, `frontend`, `listen` and `backend` sections.", PROXY, True),
    ("options", "Arguments of `option` (and `no option` where the status column allows it; `no option X` works "
                "only for the options marked `[no]` in their syntax).", OPTIONS, True),
    ("bind parameters", "Parameters after the address of a `bind` line.", BIND_PARAMS, False),
    ("server parameters", "Parameters after the address of a `server`, `server-template` or `default-server` line.",
     SERVER_PARAMS, False),
]


def render() -> str:
    """The whole keyword reference as Markdown."""
    out = [INTRO.format(others=", ".join(f"`{s}`" for s in OTHER_SECTIONS))]
    for title, blurb, table, caps in SECTIONS:
        out.append(f"## {title[0].upper()}{title[1:]}\n")
        out.append(f"{blurb} {_counts(table)}\n")
        out.extend(_table(table, caps))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
