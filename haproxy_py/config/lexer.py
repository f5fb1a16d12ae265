"""HAProxy's line tokenizer: quotes, backslash escapes, comments and environment variables.

One physical line is one statement (there is no continuation). The rules follow HAProxy 2.6's
`parse_line()` as the 2.6.12 binary behaves (checked with `.notice` lines), quirks included:

* `$VAR`/`${VAR}` are expanded only inside double quotes; outside them `\\$` stays two characters.
* `${NAME-default}` (unset, not empty); `${NAME[*]}` splits the value into words at spaces;
  `${NAME:-x}` is an error ("unmatched brace"); pseudo variables `.FILE`, `.LINE`, `.SECTION`.
* blanks are space, tab, vertical tab and form feed; an unquoted `#` starts a comment even glued to
  a word; a carriage return ends the line.
* An empty word (`""`, or a variable expanding to nothing) is kept as an empty argument: 2.6 has no
  "empty argument" check (that message only exists in later versions), so `maxconn "" 10` reaches
  the keyword with args `["", "10"]`. Trailing empty words are the same as no word, and a line whose
  first word is empty is ignored entirely.
* More than 64 words is fatal ("too many words, truncating after word 64, position N: <w>.").
"""

from __future__ import annotations

from collections.abc import Mapping

from haproxy_py.config.errors import StatementError

MAX_WORDS = 64
BLANKS = " \t\v\f"
PSEUDO_VARS = (".FILE", ".LINE", ".SECTION")

_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", " ": " ", "#": "#"}
_HEX = set("0123456789abcdefABCDEF")


class _Split:
    """A `${NAME[*]}` value: each run of spaces in it separates words."""

    def __init__(self, value: str) -> None:
        self.value = value


def _is_name_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_")


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _caret(line: str, at: int) -> str:
    """HAProxy's two-line pointer under the offending character: the line is printed without its
    leading blanks (positions in the message itself count them)."""
    lead = len(line) - len(line.lstrip(BLANKS))
    return f":\n  {line[lead:]}\n  {' ' * (at - lead)}^"


def _expand_var(line: str, pos: int, env: Mapping[str, str]) -> tuple[str | _Split, int]:
    """Expand `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` starting at `line[pos] == '$'`.

    Pseudo-variables (`.LINE`, `.FILE`, `.SECTION`) are looked up in `env` like the others. Returns
    the value (a _Split for `[*]`) and the position just after the reference.
    """
    i = pos + 1
    braced = i < len(line) and line[i] == "{"
    if braced:
        i += 1
    start = i
    if i < len(line) and line[i] == ".":
        i += 1
        while i < len(line) and _is_name_char(line[i]):
            i += 1
        if line[start:i] not in PSEUDO_VARS:
            # HAProxy cut the line after the name to look it up, and prints it that way
            raise StatementError(
                f"forbidden first char in environment variable name at position {start + 1}" + _caret(line[:i], start)
            )
    elif i >= len(line) or not _is_name_start(line[i]):
        raise StatementError(f"forbidden first char in environment variable name at position {i + 1}" + _caret(line, i))
    while i < len(line) and _is_name_char(line[i]):
        i += 1
    name = line[start:i]
    split = False
    default: str | None = None
    if braced:
        if line.startswith("[*]", i):
            split = True
            i += 3
        if i < len(line) and line[i] == "-":
            j = line.find("}", i)
            if j < 0:
                raise StatementError(
                    f"unmatched brace in environment variable name at position {pos + 2}" + _caret(line, pos + 1)
                )
            default = line[i + 1 : j]
            i = j
        if i >= len(line) or line[i] != "}":
            raise StatementError(
                f"unmatched brace in environment variable name at position {pos + 2}" + _caret(line, pos + 1)
            )
        i += 1
    value = env.get(name)
    if value is None:
        value = default if default is not None else ""
    return (_Split(value) if split else value), i


def tokenize(line: str, env: Mapping[str, str], max_words: int | None = MAX_WORDS) -> list[str]:
    """Split one config line into words, HAProxy style.

    Raises StatementError (message in HAProxy's words, with the caret lines it prints) for an
    unmatched quote, a bad `\\x` sequence, a bad variable reference, or too many words (when
    `max_words` is not None). An empty line, a comment, or a line whose first word is empty yield [].
    """
    printed = line.replace("\r", " ").replace("\n", " ")  # how HAProxy shows the line in errors
    for stop in ("\r", "\n"):
        cut = line.find(stop)
        if cut >= 0:
            line = line[:cut]
    words: list[str] = []
    cur: list[str] = []
    in_word = False  # a word has started (even if it is empty so far, e.g. "")
    quote = ""  # current quote char or ""
    quote_pos = 0
    i = 0
    n = len(line)

    def finish_word() -> None:
        nonlocal cur, in_word
        words.append("".join(cur))
        cur = []
        in_word = False

    while i < n:
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                cur.append(c)
            i += 1
            continue
        if c == "\\":
            in_word = True
            if i + 1 >= n:
                cur.append("\\")
                i += 1
                continue
            nxt = line[i + 1]
            if nxt == "x":
                hexs = line[i + 2 : i + 4]
                if len(hexs) != 2 or not set(hexs) <= _HEX:
                    raise StatementError(
                        f"truncated or invalid hexadecimal sequence at position {i + 1}" + _caret(line, i)
                    )
                cur.append(chr(int(hexs, 16)))
                i += 4
            elif nxt == "$":
                cur.append("$" if quote == '"' else "\\$")
                i += 2
            elif nxt in _SIMPLE_ESCAPES:
                cur.append(_SIMPLE_ESCAPES[nxt])
                i += 2
            else:
                cur.append("\\" + nxt)
                i += 2
            continue
        if quote == '"':
            if c == '"':
                quote = ""
                i += 1
            elif c == "$":
                value, i = _expand_var(line, i, env)
                if isinstance(value, _Split):
                    k = 0
                    v = value.value
                    while k < len(v):
                        if v[k] == " ":
                            while k < len(v) and v[k] == " ":
                                k += 1
                            finish_word()
                            in_word = True  # the rest of the quoted text continues a new word
                        else:
                            cur.append(v[k])
                            k += 1
                else:
                    cur.append(value)
            else:
                cur.append(c)
                i += 1
            continue
        # unquoted
        if c in BLANKS:
            if in_word:
                finish_word()
            i += 1
            continue
        if c == "#":
            break
        if c in "\"'":
            quote = c
            quote_pos = i
            in_word = True
            i += 1
            continue
        cur.append(c)
        in_word = True
        i += 1
    if quote:
        raise StatementError(f"unmatched quote at position {quote_pos + 1}" + _caret(printed, quote_pos))
    if in_word:
        finish_word()
    if max_words is not None and len(words) > max_words:
        position = 1 + sum(len(w) + 1 for w in words[: max_words - 1])
        raise StatementError(
            f"too many words, truncating after word {max_words}, position {position}: <{words[max_words - 1]}>."
        )
    while words and words[-1] == "":
        words.pop()
    if words and words[0] == "":
        return []
    return words


def expand_address_vars(text: str, env: Mapping[str, str]) -> str:
    """The second expansion HAProxy applies inside address arguments: `$VAR`/`${VAR}` unquoted."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$":
            value, j = _expand_var(text, i, env)
            out.append(value.value if isinstance(value, _Split) else value)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
