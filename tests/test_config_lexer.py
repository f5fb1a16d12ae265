"""The line tokenizer against HAProxy 2.6 (reference §1.2), table-driven.

Every `.notice` case below was checked against the real HAProxy 2.6.12 binary: `.notice WORD`
makes HAProxy print the word it tokenized (and "Unexpected argument 'X'" names the second one), so
the expected values are HAProxy's, not our reading of the documentation. When `/usr/sbin/haproxy`
is installed, `test_haproxy_agrees` re-checks each case against it.

Two places where 2.6.12 differs from the reference text: an empty word in the middle of a line is
not an error in 2.6 (it is kept as an empty argument), and an unterminated or unknown pseudo
variable (`${.FOO}`) is "forbidden first char".
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

from haproxy_py.config.errors import StatementError
from haproxy_py.config.lexer import MAX_WORDS, expand_address_vars, tokenize

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
ENV = {"HOME": "/h", "EMPTY": "", "X": "a b  c", "LEAD": " a", "TRAIL": "a ", "_U": "u", "PORT": "8080"}


@dataclass(frozen=True)
class Case:
    """A `.notice` line: `words` are the arguments after `.notice`, or `error` HAProxy's alert."""

    why: str
    line: str
    words: tuple[str, ...] = ()
    error: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(ENV))


def ok(why: str, line: str, *words: str) -> Case:
    return Case(why, line, tuple(words))


def bad(why: str, line: str, error: str) -> Case:
    return Case(why, line, error=error)


CASES = [
    # quoting and concatenation
    ok("double quotes keep blanks", '.notice "a b"', "a b"),
    ok("quotes concatenate with text", ".notice \"a b\"'c'd", "a bcd"),
    ok("single quote inside double quotes", ".notice \"'\"", "'"),
    ok("double quote inside single quotes", ".notice '\"'", '"'),
    ok("escaped quotes outside quotes", '.notice \\"q\\"', '"q"'),
    ok("escaped single quote inside double quotes", ".notice \"a\\'b\"", "a'b"),
    ok("backslash is literal inside single quotes", ".notice 'a\\nb'", "a\\nb"),
    ok("backslash then quote ends a single-quoted part", ".notice 'a\\'b", "a\\b"),
    # escapes
    ok("escaped blank joins words", ".notice a\\ b", "a b"),
    ok("escaped blank in second word", ".notice a b\\ c", "a", "b c"),
    ok("\\n outside quotes", ".notice a\\nb", "a\nb"),
    ok("double backslash inside double quotes", '.notice "a\\\\nb"', "a\\nb"),
    ok("double backslash alone", ".notice \\\\", "\\"),
    ok("\\xNN outside quotes", ".notice a\\x41b", "aAb"),
    ok("\\xNN inside double quotes", '.notice "\\x41"', "A"),
    ok("unknown escapes stay two characters", ".notice a\\yb\\1", "a\\yb\\1"),
    ok("unknown escape inside double quotes", '.notice "a\\yb"', "a\\yb"),
    ok("escaped blank inside double quotes", '.notice "a\\ b"', "a b"),
    bad("bad \\x sequence", ".notice a\\xZZ",
        "truncated or invalid hexadecimal sequence at position 12:\n  .notice a\\xZZ\n           ^"),
    bad("truncated \\x sequence", ".notice a\\x4",
        "truncated or invalid hexadecimal sequence at position 12:\n  .notice a\\x4\n           ^"),
    # comments
    ok("comment glued to a word", ".notice a#b", "a"),
    ok("escaped hash", ".notice a\\#b", "a#b"),
    ok("hash inside double quotes", '.notice "a#b"', "a#b"),
    # environment variables: only inside double quotes
    ok("$VAR inside double quotes", '.notice "x${HOME}y"', "x/hy"),
    ok("$VAR without braces", '.notice "e$HOME"', "e/h"),
    ok("$VAR stops at a dot", '.notice "$HOME.x"', "/h.x"),
    ok("$VAR stops at a dash", '.notice "$HOME-x"', "/h-x"),
    ok("two variables", '.notice "${HOME}${HOME}"', "/h/h"),
    ok("underscore variable", '.notice "${_U}"', "u"),
    ok("$VAR outside quotes is literal", ".notice e$HOME", "e$HOME"),
    ok("$VAR inside single quotes is literal", ".notice 'e$HOME'", "e$HOME"),
    ok("\\$ outside quotes stays two characters", ".notice a\\$b", "a\\$b"),
    ok("\\$ inside double quotes is a dollar", '.notice "c\\$d"', "c$d"),
    ok("\\$ inside double quotes before a name", '.notice "\\$HOME"', "$HOME"),
    ok("${NAME-default} when unset", '.notice "${NOPE-def val}"', "def val"),
    ok("${NAME-default} when set but empty", '.notice "${EMPTY-def}"', ""),
    ok("${NAME-} when set", '.notice "${HOME-}"', "/h"),
    ok("${NAME-} when unset", '.notice "${NOPE-}x"', "x"),
    ok("default ends at the first brace", '.notice "${NOPE-a}b}"', "ab}"),
    ok("default is not expanded", '.notice "${NOPE-$HOME}"', "$HOME"),
    ok("backslash in a default is kept", '.notice "${NOPE-a\\}b}"', "a\\b}"),
    bad("${NAME:-x} is not supported", '.notice "${HOME:-x}"',
        'unmatched brace in environment variable name at position 13:\n  .notice "${HOME:-x}"\n            ^'),
    bad("${NAME#x} is not supported", '.notice "${HOME#x}"',
        'unmatched brace in environment variable name at position 13:\n  .notice "${HOME#x}"\n            ^'),
    bad("unterminated ${", '.notice "${HOME"',
        'unmatched brace in environment variable name at position 13:\n  .notice "${HOME"\n            ^'),
    bad("blank before the closing brace", '.notice "${HOME }"',
        'unmatched brace in environment variable name at position 13:\n  .notice "${HOME }"\n            ^'),
    bad("name starting with a digit", '.notice "$1abc"',
        'forbidden first char in environment variable name at position 13:\n  .notice "$1abc"\n            ^'),
    bad("lone dollar", '.notice "a$"',
        'forbidden first char in environment variable name at position 14:\n  .notice "a$"\n             ^'),
    bad("empty braces", '.notice "${}"',
        'forbidden first char in environment variable name at position 14:\n  .notice "${}"\n             ^'),
    bad("blank after the brace", '.notice "${ HOME}"',
        'forbidden first char in environment variable name at position 14:\n  .notice "${ HOME}"\n             ^'),
    bad("unknown pseudo variable (line printed cut after the name)", '.notice "${.FOO}"',
        'forbidden first char in environment variable name at position 14:\n  .notice "${.FOO\n             ^'),
    # ${NAME[*]}: split into words at spaces
    ok("[*] splits at spaces, runs of spaces are one separator", '.notice "${X[*]}"', "a", "b", "c"),
    ok("[*] with a leading space starts with an empty word", '.notice "${LEAD[*]}"', "", "a"),
    ok("[*] with text around", '.notice "p${X[*]}s"', "pa", "b", "cs"),
    ok("[*] with a trailing space leaves an empty word", '.notice "${TRAIL[*]}" tail', "a", "", "tail"),
    ok("[*] of an unset variable", '.notice "${NOPE[*]}"', ""),
    ok("[*] applies to the default too", '.notice "${NOPE[*]-d e}"', "d", "e"),
    ok("[*] inside a default is literal", '.notice "${NOPE-d e[*]}"', "d e[*]"),
    ok("[*] unquoted is literal", ".notice ${X[*]}", "${X[*]}"),
    # pseudo variables
    ok("pseudo variables", '.notice "${.LINE}:${.FILE}:${.SECTION}"', "2:o.cfg:global"),
    ok("pseudo variable without braces", '.notice "$.LINE"', "2"),
    # blanks, line ends
    ok("tabs separate words", "\t.notice\ta\t", "a"),
    ok("vertical tab separates words", ".notice a\x0bb", "a", "b"),
    ok("form feed separates words", ".notice a\x0cb c", "a", "b", "c"),
    ok("carriage return ends the line", ".notice a\rb", "a"),
    ok("non-ASCII bytes pass through", ".notice \u00e9t\u00e9", "\u00e9t\u00e9"),
    # no continuation: a trailing backslash is kept
    ok("trailing backslash is a literal backslash", ".notice a\\", "a\\"),
    # empty words
    ok("empty word in the middle is kept", '.notice "" b', "", "b"),
    ok("trailing empty word is dropped", '.notice a ""', "a"),
    ok("empty variable in the middle is kept", '.notice "${EMPTY}" b', "", "b"),
    # quotes
    bad("unmatched double quote", '.notice "abc', 'unmatched quote at position 11:\n  .notice "abc\n          ^'),
    bad("unmatched single quote", ".notice 'abc", "unmatched quote at position 11:\n  .notice 'abc\n          ^"),
    bad("carriage return inside quotes ends the line", '.notice "a\rb"',
        'unmatched quote at position 11:\n  .notice "a b"\n          ^'),
]


@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_tokenize(case: Case) -> None:
    env = dict(case.env, **{".LINE": "2", ".FILE": "o.cfg", ".SECTION": "global"})
    line = "  " + case.line
    if case.error is not None:
        with pytest.raises(StatementError) as exc:
            tokenize(line, env)
        assert exc.value.message == case.error
    else:
        words = list(case.words)
        while words and words[-1] == "":
            words.pop()  # trailing empty words are the same as none
        assert tokenize(line, env) == [".notice", *words]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", []),
        ("   ", []),
        ("# a comment", []),
        ("   # indented comment", []),
        ('"" daemon', []),  # a line whose first word is empty is ignored, as in HAProxy
        ("bind :80 # trailing comment", ["bind", ":80"]),
        ("maxconn \"\" 10", ["maxconn", "", "10"]),
        ("daemon \\", ["daemon", "\\"]),
        ("\\", ["\\"]),
        ("server s1 127.0.0.1:80 check", ["server", "s1", "127.0.0.1:80", "check"]),
    ],
)
def test_tokenize_whole_lines(line: str, expected: list[str]) -> None:
    assert tokenize(line, ENV) == expected


def test_64_words_is_the_limit() -> None:
    words = [f"w{i}" for i in range(1, MAX_WORDS + 1)]
    assert tokenize(" ".join(words), {}) == words


def test_65_words_is_an_error_naming_the_64th() -> None:
    line = "  .notice " + " ".join(f"w{i}" for i in range(1, 70))
    with pytest.raises(StatementError) as exc:
        tokenize(line, {})
    # HAProxy 2.6.12: position is where the 64th word starts in its output buffer
    assert exc.value.message == "too many words, truncating after word 64, position 248: <w63>."


def test_word_limit_can_be_lifted_for_cc() -> None:
    assert len(tokenize(" ".join(["1"] * 100), {}, max_words=None)) == 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:$PORT", "127.0.0.1:8080"),
        ("127.0.0.1:${PORT}", "127.0.0.1:8080"),
        ("127.0.0.1:${NOPE}", "127.0.0.1:"),
        ("127.0.0.1:${NOPE-9}", "127.0.0.1:9"),
        ("fd@${PORT}", "fd@8080"),
        ("no-variables", "no-variables"),
    ],
)
def test_address_second_expansion(text: str, expected: str) -> None:
    """Address arguments get a second, unquoted expansion (`bind 127.0.0.1:$PORT` works)."""
    assert expand_address_vars(text, ENV) == expected


def _haproxy_notice(line: str, env: dict[str, str], tmp: str) -> tuple[str, str]:
    """Run `haproxy -c` on `global` + line: ("notice", word), ("extra", 2nd word) or ("alert", text)."""
    path = os.path.join(tmp, "o.cfg")
    with open(path, "wb") as f:
        f.write(("global\n  " + line + "\n").encode("utf-8", "surrogateescape"))
    assert HAPROXY is not None
    run = subprocess.run([HAPROXY, "-c", "-f", "o.cfg"], capture_output=True, cwd=tmp, timeout=20,
                         env={"PATH": os.environ.get("PATH", ""), **env})
    out = run.stderr.decode("utf-8", "replace")
    m = re.search(r"Unexpected argument '(.*)' for '\.notice'", out)
    if m:
        return "extra", m.group(1)
    m = re.search(r"\[NOTICE\]\s+\(\d+\) : config : parsing \[o\.cfg:2\]: '(.*)'\.\n", out, re.S)
    if m:
        return "notice", m.group(1)
    m = re.search(r"parsing \[o\.cfg:2\]: (.*?)\n(?:\[|$)", out, re.S)
    assert m, out
    return "alert", m.group(1).rstrip("\n")


@pytest.mark.skipif(HAPROXY is None, reason="HAProxy is not installed: the expected values are not re-checked")
@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_haproxy_agrees(case: Case, tmp_path: pathlib.Path) -> None:
    kind, text = _haproxy_notice(case.line, case.env, str(tmp_path))
    if case.error is not None:
        assert (kind, text) == ("alert", case.error)
    elif len(case.words) > 1 and case.words[1] != "":
        assert (kind, text) == ("extra", case.words[1])
    else:
        assert (kind, text) == ("notice", case.words[0] if case.words else "")
