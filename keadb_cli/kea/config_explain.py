"""Why a piece of a Kea configuration is not a token: the parser's error explanations."""

from __future__ import annotations

from typing import NoReturn

from keadb_cli.kea.config_lexer import (
    _BAD_LITERAL,
    _SIMPLE_ESCAPES,
    _SKIP_RE,
    _describe_char,
)
from keadb_cli.kea.config_tree import _Source


class _Explainer:
    """Mixed into the reader: each method raises the one error that explains the text."""

    def error(self, offset: int, message: str) -> NoReturn:
        raise NotImplementedError

    def bad_token(self, source: _Source, pos: int) -> NoReturn:
        """Explain why no token starts at ``pos`` (after whitespace and comments)."""
        text = source.text
        pos = _SKIP_RE.match(text, pos).end()  # type: ignore[union-attr]  # always matches
        at = source.base + pos
        if text.startswith("/*", pos):
            line = source.position(pos).line
            self.error(at, f"comment not closed: '/*' on line {line} has no '*/'")
        ch = text[pos]
        if ch == '"':
            self.bad_string(source, pos)
        bad = _BAD_LITERAL.match(text, pos)
        if bad:
            word = bad.group()
            self.error(at, f"'{word}' must be written in lower case: {word.lower()}")
        if ch.isalpha() or ch == "'":
            self.error(at, f"invalid character {_describe_char(ch)}: keys and strings "
                           "need double quotes")
        self.error(at, f"invalid character {_describe_char(ch)}")

    def bad_string(self, source: _Source, pos: int) -> NoReturn:
        """A string starts at ``pos`` but is not a valid Kea string. Never quotes content."""
        text = source.text
        i = pos + 1
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == '"':
                break
            if ch == "\n":
                self.error(source.base + pos, "string not closed before the end of the line")
            if ch < " ":
                self.error(source.base + i,
                           f"control character {_describe_char(ch)} in a string "
                           "(write it as an escape such as \\t)")
            if ch == "\\":
                nxt = text[i + 1: i + 2]
                if nxt == "u":
                    digits = text[i + 2: i + 6]
                    if len(digits) < 4 or not all(c in "0123456789abcdefABCDEF"
                                                  for c in digits):
                        self.error(source.base + i, "bad unicode escape in a string: "
                                   "\\u needs four hexadecimal digits")
                    i += 6
                    continue
                if nxt == "" or nxt == "\n":
                    self.error(source.base + pos,
                               "string not closed before the end of the line")
                if nxt not in _SIMPLE_ESCAPES:
                    shown = f"\\{nxt}" if nxt.isprintable() else _describe_char(nxt)
                    self.error(source.base + i, f"bad escape {shown} in a string")
                i += 2
                continue
            i += 1
        else:
            self.error(source.base + pos, "string not closed before the end of the file")
        self.error(source.base + pos, "invalid string")

    def bad_directive(self, source: _Source, pos: int) -> NoReturn:
        text = source.text
        at = source.base + pos
        rest = text[pos + 2:]
        stripped = rest.lstrip(" \t\r\n")
        if not stripped.startswith("include"):
            if not stripped:
                self.error(at, "directive not closed: expected <?include \"file\"?>")
            self.error(at, "unknown directive: Kea knows only <?include \"file\"?>")
        after = stripped[len("include"):].lstrip(" \t\r\n")
        if not after:
            self.error(at, "include directive not closed: expected a quoted file name and ?>")
        if not after.startswith('"'):
            self.error(at, "include directive needs a file name in double quotes")
        if after.startswith('""'):
            self.error(at, "include directive has an empty file name")
        self.error(at, "include file name not closed before the end of the line")
