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
from keadb_cli.kea.config_explain import _Explainer
from keadb_cli.kea.config_lexer import (
    _BINARY_PROBE,
    _CLOSERS,
    _COMMA_STATES,
    _DIRECTIVE,
    _DIRECTIVE_END,
    _ELEMENT_STATES,
    _ESCAPE,
    _EXPECTED,
    _INTEGER,
    _K_CLOSE,
    _K_CLOSE_COMMA,
    _K_COLON,
    _K_COMMA,
    _K_DIRECTIVE,
    _K_KEY,
    _K_KEY_OPEN,
    _K_LITERAL,
    _K_LITERAL_COMMA,
    _K_MEMBER_FIRST,
    _K_MEMBER_LAST,
    _K_NUMBER,
    _K_NUMBER_COMMA,
    _K_OPEN,
    _K_STRING,
    _K_STRING_COMMA,
    _KEY_STATES,
    _LEADING_ZERO,
    _LITERAL_KINDS,
    _LITERALS,
    _NEXT_STATES,
    _NUMBERS,
    _OPENERS,
    _PASSWORD_VALUE_RE,
    _S_DONE,
    _S_LCOMMA,
    _S_LFIRST,
    _S_LNEXT,
    _S_MCOLON,
    _S_MCOMMA,
    _S_MFIRST,
    _S_MNEXT,
    _S_MVALUE,
    _S_TOP,
    _SIMPLE_ESCAPES,
    _SKIP_RE,
    _TOKEN,
    _VALUE_STATES,
    _byte_position,
    _short_token,
)
from keadb_cli.kea.config_tree import (
    KeaConfig,
    Position,
    _locate,
    _scan_members,
    _Source,
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






class _Reader(_Explainer):
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


