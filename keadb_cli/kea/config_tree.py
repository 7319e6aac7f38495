"""A parsed Kea configuration: the tree, where each part came from, and positions."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keadb_cli.kea.config_lexer import (
    _CLOSERS,
    _DIRECTIVE_END,
    _ESCAPE,
    _K_COLON,
    _K_COMMA,
    _K_DIRECTIVE,
    _K_END,
    _K_KEY_OPEN,
    _K_OPEN,
    _K_STRING_COMMA,
    _KEY_ALONE,
    _OPENERS,
    _SIMPLE_ESCAPES,
    _TOKEN,
)


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

def _locate(sources: list[_Source], offset: int) -> Position:
    bases = [s.base for s in sources]
    source = sources[bisect.bisect_right(bases, offset) - 1]
    return source.position(offset - source.base)
