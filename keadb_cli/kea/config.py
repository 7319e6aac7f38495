"""Read a Kea configuration file the way Kea's own lexer and parser read it.

Kea's syntax is JSON plus a few additions (ARM "JSON Syntax", lexer ``dhcp4_lexer.ll``):

* ``#`` and ``//`` comments to the end of the line, ``/* ... */`` comments across lines
  (an unclosed one is an error);
* ``<?include "path"?>`` anywhere between tokens: the named file is read at that point and
  its tokens are spliced in. The path is used as written, so a relative path is relative to
  the working directory of the Kea process (``cwd`` here), not to the including file. Kea
  allows 11 nested includes (it refuses the 12th); cycles are reported as such here;
* an extra comma after a map member or a list element (also ``[1,,2]``) is accepted with a
  warning; a comma right after ``{`` or ``[`` is an error;
* a duplicate key in one map is an error;
* numbers such as ``.5``, ``5.`` and ``-.5`` are floats; integers with leading zeros are read
  with a warning; a leading ``+`` is an error; integers must fit in 64 bits;
* ``true``, ``false`` and ``null`` are lower case only;
* strings are JSON strings, but ``\\u`` escapes are limited to ``\\u0000``..``\\u00ff``.

No library reads this exactly, hence this small lexer: json5 and pyjson5 have no ``#``
comments and no includes, take the last of duplicate keys (pyjson5) and accept what Kea
refuses (single quotes, bare keys, hex, ``+1``, ``Infinity``, ``\u0100``); commentjson has no
``/* */`` and no ``.5``, and keeps the last of duplicate keys; none of the three warns about an
extra comma, accepts ``[1,,2]`` or gives file and line across includes.

Deliberate differences from Kea: files must be UTF-8 (Kea passes other bytes through inside
strings), ``\\u0080``..``\\u00ff`` become the code points U+0080..U+00FF (Kea stores the raw
byte), nesting deeper than :data:`MAX_NESTING` is refused (Kea's parser stack has no limit),
columns count characters (Kea counts bytes), and every file must be a regular file of at most
16 MiB, 64 MiB with everything it includes (:mod:`keadb_cli.files`: a FIFO or ``/dev/zero``
is refused, never waited on or read without end).

The core never prints: errors are :class:`~keadb_cli.errors.ConfigError` with one line that
starts with ``file:line:column``; warnings are collected in :attr:`KeaConfig.warnings`.
"""

from __future__ import annotations

import bisect
import gc
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from keadb_cli.errors import ConfigError
from keadb_cli.files import (
    MAX_CONFIG_FILE,
    MAX_CONFIG_INCLUDES,
    MAX_CONFIG_TOTAL,
    describe_size,
    read_bounded,
)
from keadb_cli.text import shown

__all__ = [
    "MAX_INCLUDE_DEPTH",
    "MAX_NESTING",
    "KeaConfig",
    "Position",
    "load",
    "loads",
]

MAX_INCLUDE_DEPTH = 11
"""Nested includes Kea accepts: ``includeFile`` refuses a 12th while 11 are open."""

MAX_NESTING = 256
"""Maps and lists open at once. Real Kea files use about 10; this keeps a hostile file
(megabytes of ``[[[[``) from eating memory, and later recursive walks from overflowing."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT64_DIGITS = len(str(_INT64_MAX))  # 19: more significant digits never fit
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


@dataclass(frozen=True)
class Position:
    """A place in a configuration file; lines and columns count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def file_line(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class _Source:
    name: str  # as Kea would name it: the path as given or as written in the directive
    path: Path  # resolved, for reading and cycle detection
    text: str
    base: int  # virtual offset of text[0]; every position is one int across all files
    newlines: list[int] | None = None
    # For an included file: the including file, and where its directive's "?>" is sought.
    resume: tuple[_Source, int] | None = None

    def position(self, offset: int) -> Position:
        if self.newlines is None:
            self.newlines = [m.start() for m in re.finditer("\n", self.text)]
        index = bisect.bisect_left(self.newlines, offset)
        start = self.newlines[index - 1] + 1 if index else 0
        return Position(self.name, index + 1, offset - start + 1)


@dataclass
class KeaConfig(Mapping[str, Any]):
    """A parsed Kea configuration: the top-level map, where each part came from, warnings.

    It is a read-only mapping over :attr:`root` (``config["Dhcp4"]``). Every map and list
    of the tree remembers where it starts, keyed by the object's identity, so keep using
    the objects found in :attr:`root` (not copies) when asking :meth:`position`. Where a
    key or an element is, is worked out on demand by reading that part of the file again.
    """

    path: str
    cwd: Path
    root: dict[str, Any] = field(repr=False)  # it holds passwords
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every file read, main file first
    _sources: list[_Source] = field(default_factory=list, repr=False)
    _opens: dict[int, int] = field(default_factory=dict, repr=False)
    _includes: dict[int, _Source] = field(default_factory=dict, repr=False)
    _members: dict[int, _Members] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.root[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def position(
        self, container: object, key: str | int | None = None, *, value: bool = False
    ) -> Position | None:
        """Where ``container`` starts, or where its ``key`` (or that key's value) is.

        ``container`` is a dict or list from this configuration; ``key`` a map key or a
        list index (an index gives the element). None when unknown.
        """
        start = self._opens.get(id(container))
        if start is None:
            return None
        offset: int | None = start
        if key is not None:
            members = self._members.get(start)
            if members is None:
                members = _scan_members(self._sources, self._includes, start)
                self._members[start] = members
            if isinstance(key, str) and isinstance(container, dict):
                pair = members.keys.get(key)
                offset = None if pair is None else pair[1 if value else 0]
            elif isinstance(key, int) and isinstance(container, list):
                items = members.items
                offset = items[key] if -len(items) <= key < len(items) else None
            else:
                offset = None
        if offset is None:
            return None
        return _locate(self._sources, offset)

    def location(
        self, container: object, key: str | int | None = None, *, value: bool = False
    ) -> str:
        """:meth:`position` as ``file:line:column``; the container's, or the main file's
        name, when that is unknown."""
        pos = self.position(container, key, value=value)
        if pos is None and key is not None:
            pos = self.position(container)
        return str(pos) if pos is not None else self.path


@dataclass
class _Members:
    """Where the members of one map or list are: key -> (key, value) offsets; elements."""

    keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    items: list[int] = field(default_factory=list)


def _scan_members(
    sources: list[_Source], includes: dict[int, _Source], start: int, stop: str | None = None
) -> _Members:
    """Read the map or list that starts at virtual offset ``start`` again, token by token,
    and note where its own keys, values and elements are. The text parsed before, so
    nothing here can fail; with ``stop``, reading ends once that key has been seen (the
    rest of the map may not be valid yet)."""
    members = _Members()
    keys = members.keys
    bases = [s.base for s in sources]
    source = sources[bisect.bisect_right(bases, start) - 1]
    text, base, pos = source.text, source.base, start - source.base
    match = _TOKEN.match
    is_map = text[pos] == "{"
    depth = 0
    pending: str | None = None  # key whose value comes next
    while True:
        if stop is not None and stop in keys:
            return members
        m = match(text, pos)
        assert m is not None
        kind: int = m.lastindex  # type: ignore[assignment]
        pos = m.end()
        if kind == _K_DIRECTIVE:
            source = includes[base + pos - 2]
            text, base, pos = source.text, source.base, 0
        elif kind == _K_END:
            # A map or list may start in an included file and end in the including one.
            assert source.resume is not None
            source, pos = source.resume
            text, base = source.text, source.base
            pos = _DIRECTIVE_END.match(text, pos).end()  # type: ignore[union-attr]
        elif kind in _CLOSERS:
            depth -= 1
            if depth == 0:
                return members
        elif kind == _K_COMMA:
            pass
        elif depth > 1:
            if kind in _OPENERS:
                depth += 1
        elif kind == _K_OPEN:
            depth += 1
            if depth == 2:
                vstart = base + pos - 1
                if pending is not None:
                    keys[pending] = (keys[pending][0], vstart)
                    pending = None
                elif not is_map:
                    members.items.append(vstart)
        elif kind == _K_COLON:
            pass  # the key was noted when it was read
        elif kind <= _K_STRING_COMMA:
            raw = m.group(1)
            tstart = base + m.start(1)
            if is_map and pending is None:  # a key, maybe with its value
                name = raw[1:-1] if "\\" not in raw else _decode_valid(raw)
                if kind in _KEY_ALONE:
                    keys[name] = (tstart, tstart)
                    pending = name
                elif kind == _K_KEY_OPEN:
                    keys[name] = (tstart, base + pos - 1)
                    depth += 1
                else:
                    keys[name] = (tstart, base + m.start((kind - 1) | 1))
            elif pending is not None:
                keys[pending] = (keys[pending][0], tstart)
                pending = None
            else:
                members.items.append(tstart)
        else:  # a number or a literal, maybe with its comma
            vstart = base + m.start(kind if kind & 1 else kind - 1)
            if pending is not None:
                keys[pending] = (keys[pending][0], vstart)
                pending = None
            elif not is_map:
                members.items.append(vstart)


def _decode_valid(raw: str) -> str:
    """A string token known to be valid, without its quotes and escapes."""

    def replace(m: re.Match[str]) -> str:
        simple = m.group(1)
        return _SIMPLE_ESCAPES[simple] if simple is not None else chr(int(m.group(2), 16))

    return _ESCAPE.sub(replace, raw[1:-1])


def load(path: str | os.PathLike[str], *, cwd: Path | None = None) -> KeaConfig:
    """Read and parse the Kea configuration file at ``path``.

    ``path`` is opened as given. Relative include paths are resolved against ``cwd``, the
    working directory Kea would run in (default: this process's working directory).

    Raises:
        ConfigError: the file or an included one cannot be read, or is not valid Kea
            syntax; the message starts with ``file:line:column``.
    """
    name = os.fspath(path)
    reader = _Reader(Path.cwd() if cwd is None else Path(cwd), name)
    source = reader.open_main(name)
    return reader.parse(source)


def loads(text: str, *, name: str = "<string>", cwd: Path | None = None) -> KeaConfig:
    """Parse Kea configuration text (tests, stdin). Includes are resolved against ``cwd``.

    Raises:
        ConfigError: as :func:`load`.
    """
    reader = _Reader(Path.cwd() if cwd is None else Path(cwd), name)
    source = reader.add_source(name, Path(reader.cwd, name), text)
    return reader.parse(source)


# A "password" key followed by the opening quote of its value (a string never spans lines).
_PASSWORD_VALUE_RE = re.compile(r'"password"\s*:\s*"')


def _locate(sources: list[_Source], offset: int) -> Position:
    bases = [s.base for s in sources]
    source = sources[bisect.bisect_right(bases, offset) - 1]
    return source.position(offset - source.base)


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


class _Reader:
    """One load: the sources read so far and the parser."""

    def __init__(self, cwd: Path, main_name: str) -> None:
        self.cwd = cwd
        self.main_name = main_name
        self.sources: list[_Source] = []
        self.next_base = 0
        self.warnings: list[tuple[int, str]] = []
        self.includes: dict[int, _Source] = {}  # directive position -> the file it read
        self.total_bytes = 0  # read so far, every file (an include read twice counts twice)
        self.include_count = 0

    # -- sources ---------------------------------------------------------------------

    def add_source(self, name: str, path: Path, text: str) -> _Source:
        source = _Source(name, path, text, self.next_base)
        self.sources.append(source)
        self.next_base += len(text) + 1
        return source

    def open_main(self, name: str) -> _Source:
        path = Path(name)
        return self.add_source(name, path, self._read(name, path, None))

    def _read(self, name: str, path: Path, at: int | None) -> str:
        """The text of a file; errors cite ``at`` (the include directive) when given.

        Every file is hostile input (:func:`~keadb_cli.files.read_bounded`): a regular
        file of at most :data:`~keadb_cli.files.MAX_CONFIG_FILE` bytes, and all files of
        one load together at most :data:`~keadb_cli.files.MAX_CONFIG_TOTAL`.
        """
        where = str(self.position(at)) if at is not None else ""
        what = "include file" if at is not None else "Kea configuration file"
        if at is not None:
            self.include_count += 1
            if self.include_count > MAX_CONFIG_INCLUDES:
                self.error(at, f"more than {MAX_CONFIG_INCLUDES} include directives: "
                               "kea-db refuses to follow more")
        data = read_bounded(path, what=what, limit=MAX_CONFIG_FILE, error=ConfigError,
                            name=name, where=where)
        self.total_bytes += len(data)
        if self.total_bytes > MAX_CONFIG_TOTAL:
            assert at is not None  # one file alone is at most MAX_CONFIG_FILE
            self.error(at, f"the configuration and its included files are larger than "
                           f"{describe_size(MAX_CONFIG_TOTAL)} together, more than any Kea "
                           "configuration needs: check the include directives")
        nul = data.find(b"\x00", 0, _BINARY_PROBE)
        if nul >= 0:
            line, col = _byte_position(data, nul)
            raise ConfigError(
                f"{name}:{line}:{col}: binary data (a NUL byte): not a Kea configuration file"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, col = _byte_position(data, exc.start)
            raise ConfigError(
                f"{name}:{line}:{col}: not UTF-8 text (byte 0x{data[exc.start]:02x})"
            ) from None

    def position(self, offset: int) -> Position:
        return _locate(self.sources, offset)

    def error(self, offset: int, message: str) -> NoReturn:
        where = self.position(offset)
        if self._after_password_value(offset):
            # Structural redaction: the column, and any quoted text, would tell the
            # password's length or part of it. The line is enough to find the mistake.
            raise ConfigError(
                f"{where.file}:{where.line}: syntax error in or after the value of "
                '"password" on this line (neither the value nor the position in the line '
                "is shown)"
            )
        raise ConfigError(f"{where}: {message}")

    def _after_password_value(self, offset: int) -> bool:
        """Does a ``"password"`` key's string value start on the error's line, before it?"""
        bases = [s.base for s in self.sources]
        source = self.sources[bisect.bisect_right(bases, offset) - 1]
        local = offset - source.base
        start = source.text.rfind("\n", 0, local) + 1
        return _PASSWORD_VALUE_RE.search(source.text, start, max(start, local + 1)) is not None

    # -- tokens that do not match ----------------------------------------------------

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

    def decode_string(self, raw: str, at: int) -> str:
        """The value of a string token with backslashes (``raw`` includes the quotes)."""

        def replace(m: re.Match[str]) -> str:
            simple = m.group(1)
            if simple is not None:
                return _SIMPLE_ESCAPES[simple]
            code = m.group(2)
            if code[:2] != "00":
                self.error(at + 1 + m.start(), f"unsupported unicode escape \\u{code}: Kea "
                           "accepts only \\u0000 to \\u00ff")
            return chr(int(code, 16))

        return _ESCAPE.sub(replace, raw[1:-1])

    def number(self, token: str, at: int) -> int | float:
        """The value of a number token. An integer is read from its significant digits
        only (Python's ``int()`` refuses more than 4300 digits, and leading zeros do not
        make a number larger); a token is quoted shortened in messages."""
        quoted = _short_token(token)
        if token[0] == "+":
            self.error(at, f"number {quoted} has a plus sign, which Kea refuses")
        if _INTEGER.match(token):
            digits = token.lstrip("-").lstrip("0")
            if len(digits) > _INT64_DIGITS:
                self.error(at, f"integer {quoted} does not fit in 64 bits")
            value: int | float = int(digits) if digits else 0
            if token[0] == "-":
                value = -value
            if not _INT64_MIN <= value <= _INT64_MAX:
                self.error(at, f"integer {quoted} does not fit in 64 bits")
            if _LEADING_ZERO.match(token):
                self.warnings.append((at, "leading zeros in integers will be deprecated"))
            return value
        try:
            value = float(token)
        except ValueError:
            self.error(at, f"'{quoted}' is not a number")
        if value in (float("inf"), float("-inf")):
            self.error(at, f"number {quoted} is too large")
        if _LEADING_ZERO.match(token):
            self.warnings.append((at, "leading zeros in numbers will be deprecated"))
        return value

    # -- includes --------------------------------------------------------------------

    def include(self, source: _Source, pos: int, open_files: list[_Source]) -> _Source:
        """Open the file named by the directive at ``pos``; return its source."""
        text = source.text
        at = source.base + pos
        m = _DIRECTIVE.match(text, pos)
        if m is None:
            self.bad_directive(source, pos)
        name = m.group(1)
        if "\x00" in name:  # past the binary probe: no path can hold one
            self.error(at, "include file name holds a NUL byte: not a file name")
        path = Path(name) if os.path.isabs(name) else self.cwd / name
        real = os.path.realpath(path)
        for opened in open_files:
            if os.path.realpath(opened.path) == real:
                chain = " -> ".join(shown(n, 80) for n in [*(s.name for s in open_files), name])
                self.error(at, f"include cycle: {chain}")
        if len(open_files) - 1 >= MAX_INCLUDE_DEPTH:
            self.error(at, f"too many nested includes: Kea allows {MAX_INCLUDE_DEPTH}")
        return self.add_source(name, path, self._read(name, path, at))

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

    # -- the parser ------------------------------------------------------------------

    def parse(self, main: _Source) -> KeaConfig:
        """Tokens of ``main`` (and its includes) into a :class:`KeaConfig`."""
        gc_was_enabled = gc.isenabled()
        gc.disable()  # the tree is acyclic; collecting while it grows costs a fifth
        try:
            return self._parse(main)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _parse(self, main: _Source) -> KeaConfig:
        opens: dict[int, int] = {}  # id(container) -> where it starts
        match = _TOKEN.match
        source = main
        text = source.text
        base = source.base
        pos = 0
        open_files: list[_Source] = [main]
        suspended: list[tuple[_Source, int]] = []  # including files and where to resume

        root: dict[str, Any] | None = None
        state = _S_TOP
        # The open container; the enclosing ones wait on ``stack``.
        cur: Any = None
        is_map = False
        key = ""
        stack: list[tuple[Any, bool, str]] = []
        comma_at = 0  # position of the last comma, for the extra-comma warning
        warnings = self.warnings
        value: Any
        vstart: int  # where the value starts
        comma: bool  # the value's token ends with a comma

        while True:
            m = match(text, pos)
            if m is None:
                self.bad_token(source, pos)
            kind: int = m.lastindex  # type: ignore[assignment]  # every branch has a group
            pos = m.end()

            if kind in _OPENERS:
                if kind == _K_KEY_OPEN:  # "key": { or "key": [
                    raw = m.group(1)
                    s = raw[1:-1] if "\\" not in raw else self.decode_string(raw, base + m.start(1))
                    if state != _S_MFIRST and state != _S_MCOMMA:
                        if state in _VALUE_STATES:
                            self.error(base + m.start(2), "unexpected ':' after a string value")
                        self.unexpected(base + m.start(1), "string", state)
                    if s in cur:
                        self.duplicate(opens[id(cur)], s, base + m.start(1))
                    key = s
                    state = _S_MVALUE
                    ch = m.group(_K_KEY_OPEN)
                else:
                    ch = m.group(_K_OPEN)
                    if state not in _VALUE_STATES and (state != _S_TOP or ch == "["):
                        self.unexpected(base + pos - 1, f"'{ch}'", state)
                if len(stack) >= MAX_NESTING - 1:  # plus the open one
                    self.error(base + pos - 1, f"maps and lists nested more than {MAX_NESTING} "
                                               "deep")
                if state != _S_TOP:
                    stack.append((cur, is_map, key))
                if ch == "{":
                    cur = {}
                    is_map = True
                    state = _S_MFIRST
                    if root is None:
                        root = cur
                else:
                    cur = []
                    is_map = False
                    state = _S_LFIRST
                opens[id(cur)] = base + pos - 1
                continue

            if kind <= _K_STRING_COMMA:  # a string; maybe a key, maybe with its value
                raw = m.group(1)
                s = raw[1:-1] if "\\" not in raw else self.decode_string(raw, base + m.start(1))
                if state in _KEY_STATES:
                    if s in cur:
                        self.duplicate(opens[id(cur)], s, base + m.start(1))
                    if kind >= _K_MEMBER_FIRST and kind <= _K_MEMBER_LAST:
                        group = (kind - 1) | 1  # 3/4 -> 3, 5/6 -> 5, 7/8 -> 7
                        token = m.group(group)
                        if group == 3:
                            value = (token[1:-1] if "\\" not in token
                                     else self.decode_string(token, base + m.start(3)))
                        elif group == 5:
                            if token.isdigit() and (token[0] != "0" or len(token) == 1) \
                                    and len(token) < 19:
                                value = int(token)
                            else:
                                value = self.number(token, base + m.start(5))
                        else:
                            value = _LITERALS[token]
                        cur[s] = value
                        if kind & 1:
                            state = _S_MNEXT
                        else:
                            state = _S_MCOMMA
                            comma_at = base + pos - 1
                        continue
                    key = s
                    if kind == _K_KEY:
                        state = _S_MVALUE
                        continue
                    if kind == _K_STRING:
                        state = _S_MCOLON
                        continue
                    self.unexpected(base + pos - 1, "','", _S_MCOLON)
                if kind != _K_STRING and kind != _K_STRING_COMMA:
                    if state in _VALUE_STATES:
                        self.error(base + m.start(2), "unexpected ':' after a string value")
                    self.unexpected(base + m.start(1), "string", state)
                value = s
                comma = kind == _K_STRING_COMMA
                vstart = base + m.start(1)
            elif kind in _CLOSERS:
                if m.group(_K_CLOSE) == "}":
                    if not is_map or state not in (_S_MFIRST, _S_MNEXT, _S_MCOMMA):
                        self.unexpected(base + m.start(_K_CLOSE), "'}'", state)
                elif is_map or state not in (_S_LFIRST, _S_LNEXT, _S_LCOMMA):
                    self.unexpected(base + m.start(_K_CLOSE), "']'", state)
                if state in _COMMA_STATES:
                    warnings.append((comma_at, _EXTRA_COMMA))
                if not stack:
                    state = _S_DONE
                    if kind == _K_CLOSE_COMMA:
                        self.unexpected(base + pos - 1, "','", state)
                    continue
                value = cur
                vstart = opens[id(cur)]
                comma = kind == _K_CLOSE_COMMA
                cur, is_map, key = stack.pop()
                state = _S_MVALUE if is_map else _S_LCOMMA  # the slot the value fills
            elif kind == _K_COMMA:
                if state in _NEXT_STATES:
                    state += 1  # _S_MNEXT -> _S_MCOMMA, _S_LNEXT -> _S_LCOMMA
                elif state in _COMMA_STATES:
                    warnings.append((comma_at, _EXTRA_COMMA))
                else:
                    self.unexpected(base + pos - 1, "','", state)
                comma_at = base + pos - 1
                continue
            elif kind in _NUMBERS:
                token = m.group(_K_NUMBER)
                vstart = base + m.start(_K_NUMBER)
                if token.isdigit() and (token[0] != "0" or len(token) == 1) and len(token) < 19:
                    value = int(token)
                else:
                    value = self.number(token, vstart)
                comma = kind == _K_NUMBER_COMMA
            elif kind in _LITERAL_KINDS:
                vstart = base + m.start(_K_LITERAL)
                value = _LITERALS[m.group(_K_LITERAL)]
                comma = kind == _K_LITERAL_COMMA
            elif kind == _K_COLON:
                if state != _S_MCOLON:
                    self.unexpected(base + pos - 1, "':'", state)
                state = _S_MVALUE
                continue
            elif kind == _K_DIRECTIVE:
                start = pos - 2
                new = self.include(source, start, open_files)
                self.includes[base + start] = new
                resume = _DIRECTIVE.match(text, start).end()  # type: ignore[union-attr]
                new.resume = (source, resume)
                suspended.append((source, resume))
                open_files.append(new)
                source, text, base, pos = new, new.text, new.base, 0
                continue
            else:  # end of the current file
                if suspended:
                    open_files.pop()
                    source, pos = suspended.pop()
                    text, base = source.text, source.base
                    end = _DIRECTIVE_END.match(text, pos)
                    if end is None:
                        rest = text[pos:].strip(" \t\r\n")
                        here = base + _SKIP_RE.match(text, pos).end()  # type: ignore[union-attr]
                        if not rest:
                            self.error(here, "include directive not closed: expected '?>'")
                        self.error(here, "expected '?>' to close the include directive")
                    pos = end.end()
                    continue
                if state == _S_DONE:
                    break
                if state == _S_TOP:
                    self.error(base + pos, "empty configuration: expected '{'")
                self.error(base + pos, f"unexpected end of file: expected {_EXPECTED[state]}")

            # A scalar or a closed container fills the slot the state says.
            if state == _S_MVALUE:
                cur[key] = value
                state = _S_MNEXT
            elif state in _ELEMENT_STATES:
                cur.append(value)
                state = _S_LNEXT
            else:
                self.unexpected(vstart, "string" if isinstance(value, str) else "value", state)
            if comma:
                state += 1  # _S_MNEXT -> _S_MCOMMA, _S_LNEXT -> _S_LCOMMA
                comma_at = base + pos - 1

        assert root is not None
        config = KeaConfig(
            path=self.main_name,
            cwd=self.cwd,
            root=root,
            files=[s.name for s in self.sources],
            _sources=self.sources,
            _opens=opens,
            _includes=self.includes,
        )
        config.warnings.extend(
            f"{self.position(at)}: {message}" for at, message in sorted(self.warnings)
        )
        return config

    def duplicate(self, map_start: int, key: str, at: int) -> NoReturn:
        members = _scan_members(self.sources, self.includes, map_start, stop=key)
        first = self.position(members.keys[key][0])
        where = f"line {first.line}, column {first.column}"
        if first.file != self.position(at).file:
            where = f"{first.file}:{first.line}:{first.column}"
        self.error(at, f'duplicate key "{shown(key, 80)}" in one map (first at {where})')

    def unexpected(self, at: int, what: str, state: int) -> NoReturn:
        self.error(at, f"unexpected {what}: expected {_EXPECTED[state]}")


_EXTRA_COMMA = "extra comma: a piece of configuration may have been left out"


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, index) + 1
    start = data.rfind(b"\n", 0, index) + 1
    column = len(data[start:index].decode("utf-8", errors="replace")) + 1
    return line, column
