"""HAProxy's line tokenizer: quotes, backslash escapes, comments and environment variables.

One physical line is one statement (there is no continuation). The rules follow HAProxy 2.6's
`parse_line()` exactly, including its quirks: `$VAR` is expanded only inside double quotes, `\\$`
outside quotes stays two characters, and an empty word in the middle of a line is an error.
"""

from __future__ import annotations

from collections.abc import Mapping

from haproxy_py.config.errors import StatementError

MAX_WORDS = 64

_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", " ": " ", "#": "#"}
_HEX = set("0123456789abcdefABCDEF")


def _is_name_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_")


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _caret(line: str, at: int) -> str:
    return f":\n  {line.rstrip()}\n  {' ' * at}^"


def _expand_var(line: str, pos: int, env: Mapping[str, str]) -> tuple[list[str] | str, int]:
    """Expand `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` starting at `line[pos] == '$'`.

    Pseudo-variables (`.LINE`, `.FILE`, `.SECTION`) are looked up in `env` like the others. Returns
    the value (a list of words for `[*]`) and the position just after the reference.
    """
    i = pos + 1
    braced = i < len(line) and line[i] == "{"
    if braced:
        i += 1
    start = i
    if i < len(line) and line[i] == ".":
        i += 1
    elif i >= len(line) or not _is_name_start(line[i]):
        raise StatementError(
            f"forbidden first char in environment variable name at position {i + 1}" + _caret(line, i)
        )
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
    if split:
        return [w for w in value.split(" ") if w], i
    return value, i


def tokenize(line: str, env: Mapping[str, str]) -> list[str]:
    """Split one config line into words, HAProxy style.

    Raises StatementError for an unmatched quote, a bad `\\x` sequence, an unmatched `${`, or an
    empty argument followed by more words. An empty line or a comment yields [].
    """
    words: list[str] = []
    cur: list[str] = []
    in_word = False  # a word has started (even if it is empty so far, e.g. "")
    quote = ""  # current quote char or ""
    quote_pos = 0
    empty_at: tuple[int, int] | None = None  # (argument number, position) of an empty word
    i = 0
    n = len(line)

    def finish_word(at: int) -> None:
        nonlocal cur, in_word, empty_at
        word = "".join(cur)
        if word == "" and empty_at is None:
            empty_at = (len(words), at)
        words.append(word)
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
            if i + 1 >= n:
                cur.append("\\")
                in_word = True
                i += 1
                continue
            nxt = line[i + 1]
            if nxt == "x":
                hexs = line[i + 2 : i + 4]
                if len(hexs) != 2 or not set(hexs) <= _HEX:
                    raise StatementError(f"truncated or invalid hexadecimal sequence at position {i + 1}" + _caret(line, i))
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
            in_word = True
            continue
        if quote == '"':
            if c == '"':
                quote = ""
                i += 1
            elif c == "$":
                value, i = _expand_var(line, i, env)
                if isinstance(value, list):
                    cur.append(" ".join(value))
                else:
                    cur.append(value)
            else:
                cur.append(c)
                i += 1
            continue
        # unquoted
        if c in " \t\r\n":
            if in_word:
                finish_word(i)
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
        raise StatementError(f"unmatched quote at position {quote_pos + 1}" + _caret(line, quote_pos))
    if in_word:
        finish_word(n)
    if empty_at is not None:
        # trailing empty words are dropped; one followed by more words ends the line early
        last_nonempty = max((k for k, w in enumerate(words) if w != ""), default=-1)
        argno, at = empty_at
        if argno < last_nonempty:
            raise StatementError(
                f"argument number {argno} at position {at + 1} is empty and marks the end of the argument list"
            )
        words = words[: last_nonempty + 1]
    if len(words) > MAX_WORDS:
        raise StatementError(f"too many words, truncating after word {MAX_WORDS}")
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
            out.append(" ".join(value) if isinstance(value, list) else value)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
