"""The tokens of Kea's configuration syntax: one regular expression, its kinds, and the
parser's states (see :mod:`keadb_cli.kea.config`)."""

from __future__ import annotations

import re
from typing import Any

_SHORT_TOKEN = 40  # characters of a number token quoted in a message
_BINARY_PROBE = 8192

# Whitespace and comments between tokens. Kea's blanks are space, tab, CR and LF only.
_SKIP = r"(?:[ \t\r\n]++|\#[^\n]*+|//[^\n]*+|/\*(?s:.*?)\*/)*+"
_STRING = r'"[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4})[^"\\\x00-\x1f]*+)*+"'
_WS = r"[ \t\r\n]*+"
_NUMBER = r"(?=[-+.0-9])[-+]?[0-9]*+\.?[0-9]*+(?:[eE][-+]?[0-9]+)?"
_LITERAL = r"true|false|null"
_COMMA = r"(?:" + _WS + r"(,))?"
# One regular expression for the next token; the number of the last group that matched
# tells the kind. To save Python work per token, a key, its colon, a scalar value and the
# comma after it are matched at once ("name": "kea",), and so are a value and its comma.
# Whitespace inside such a run may not hold comments; one that does is read token by
# token instead, with the same result. A matched comma is always the match's last
# character.
_TOKEN = re.compile(
    _SKIP
    + r"(?:"
    + r"(" + _STRING + r")"  # 1 string
    + r"(?:" + _WS + r"(:)"  # 2 ':' after it: the string is a key
    + r"(?:" + _WS + r"(?:"
    + r"(" + _STRING + r")" + _COMMA  # 3 string value of the member, 4 ','
    + r"|(" + _NUMBER + r")" + _COMMA  # 5 number value of the member, 6 ','
    + r"|(" + _LITERAL + r")" + _COMMA  # 7 literal value of the member, 8 ','
    + r"|([{\[])"  # 9 '{' or '[' opening the member's value
    + r"))?"
    + r"|" + _WS + r"(,))?"  # 10 ',' after a string value
    + r"|(" + _NUMBER + r")" + _COMMA  # 11 number, 12 ','
    + r"|(" + _LITERAL + r")" + _COMMA  # 13 literal, 14 ','
    + r"|([{\[])"  # 15 '{' or '['
    + r"|([}\]])" + _COMMA  # 16 '}' or ']', 17 ','
    + r"|(,)"  # 18
    + r"|(:)"  # 19
    + r"|(<\?)"  # 20 directive
    + r"|(\Z)"  # 21 end of this file
    + r")"
)
_K_STRING, _K_KEY = 1, 2
_K_MEMBER_FIRST, _K_MEMBER_LAST = 3, 8  # odd: no comma; even: with a comma
_K_KEY_OPEN, _K_STRING_COMMA = 9, 10
_K_NUMBER, _K_NUMBER_COMMA, _K_LITERAL, _K_LITERAL_COMMA = 11, 12, 13, 14
_K_OPEN, _K_CLOSE, _K_CLOSE_COMMA, _K_COMMA, _K_COLON = 15, 16, 17, 18, 19
_K_DIRECTIVE, _K_END = 20, 21

_SKIP_RE = re.compile(_SKIP)
_DIRECTIVE = re.compile(r'<\?[ \t\r\n]*+include[ \t\r\n]*+"([^"\n]+)"')
_DIRECTIVE_END = re.compile(r"[ \t\r\n]*+\?>")
_ESCAPE = re.compile(r"\\(?:([\"\\/bfnrt])|u([0-9A-Fa-f]{4}))")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
                   "r": "\r", "t": "\t"}
_LEADING_ZERO = re.compile(r"-?0[0-9]")
_INTEGER = re.compile(r"-?[0-9]+\Z")
_BAD_LITERAL = re.compile(r"(?i:true|false|null)")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}

# Parser states.
_S_TOP = 0  # before the top-level '{'
_S_MFIRST = 1  # after '{': a key or '}'
_S_MCOLON = 2  # after a key: ':'
_S_MVALUE = 3  # after ':': a value
_S_MNEXT = 4  # after a member: ',' or '}'
_S_MCOMMA = 5  # after ',' in a map: a key, or an extra ',' or '}' (warning)
_S_LFIRST = 6  # after '[': a value or ']'
_S_LNEXT = 7  # after an element: ',' or ']'
_S_LCOMMA = 8  # after ',' in a list: a value, or an extra ',' or ']' (warning)
_S_DONE = 9  # after the top-level '}'

_EXPECTED = {
    _S_TOP: "'{' to start the configuration",
    _S_MFIRST: "a quoted key or '}'",
    _S_MCOLON: "':' after the key",
    _S_MVALUE: "a value",
    _S_MNEXT: "',' or '}'",
    _S_MCOMMA: "a quoted key or '}'",
    _S_LFIRST: "a value or ']'",
    _S_LNEXT: "',' or ']'",
    _S_LCOMMA: "a value or ']'",
    _S_DONE: "the end of the file after the closing '}'",
}
_VALUE_STATES = frozenset({_S_MVALUE, _S_LFIRST, _S_LCOMMA})
_KEY_STATES = frozenset({_S_MFIRST, _S_MCOMMA})
_COMMA_STATES = frozenset({_S_MCOMMA, _S_LCOMMA})
_NEXT_STATES = frozenset({_S_MNEXT, _S_LNEXT})
_ELEMENT_STATES = frozenset({_S_LFIRST, _S_LCOMMA})
_OPENERS = frozenset({_K_OPEN, _K_KEY_OPEN})
_CLOSERS = frozenset({_K_CLOSE, _K_CLOSE_COMMA})
_KEY_ALONE = frozenset({_K_STRING, _K_KEY})
_NUMBERS = frozenset({_K_NUMBER, _K_NUMBER_COMMA})
_LITERAL_KINDS = frozenset({_K_LITERAL, _K_LITERAL_COMMA})

# A "password" key followed by the opening quote of its value (a string never spans lines).
_PASSWORD_VALUE_RE = re.compile(r'"password"\s*:\s*"')


def _short_token(token: str) -> str:
    """A number token for a message: a hostile one may have megabytes of digits."""
    if len(token) <= _SHORT_TOKEN:
        return token
    return f"{token[:_SHORT_TOKEN // 2]}...{token[-8:]} ({len(token)} characters)"


def _describe_char(ch: str) -> str:
    if ch == "\ufeff":
        return "U+FEFF (a byte order mark; Kea does not accept one)"
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}'"
    return f"U+{ord(ch):04X}"

def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, index) + 1
    start = data.rfind(b"\n", 0, index) + 1
    column = len(data[start:index].decode("utf-8", errors="replace")) + 1
    return line, column
