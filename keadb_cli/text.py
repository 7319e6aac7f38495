"""Text that came from a server or a file, made safe to show.

Server error messages, table names, certificate subjects and file excerpts are data: they
must never reach a terminal as control sequences, and a hostile value must not flood the
output. :func:`shown` is the one place that makes such text printable.
"""

from __future__ import annotations

import unicodedata

DEFAULT_LIMIT = 300  # characters of one value shown before it is shortened


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as one printable line: runs of white space become one space, every other
    control or format character is escaped (ESC becomes ``\\x1b``), and a value longer than
    ``limit`` characters is cut, with its length said."""
    raw = str(value)
    # Only a bounded prefix is examined: a 10 MB value costs no more than a short one.
    text = " ".join(raw[: limit * 4 + 64].split())
    length = len(text) if len(raw) <= limit * 4 + 64 else len(raw)
    if length > limit:
        text = text[:limit]
    out = "".join(_escape(c) if _unsafe(c) else c for c in text)
    if length > limit:
        out += f"... ({length} characters)"
    return out


def _unsafe(char: str) -> bool:
    if " " <= char <= "~":
        return False
    # Controls, format characters (bidi overrides), unassigned code points, and separators
    # other than the plain space (line and paragraph separators, odd spaces).
    return unicodedata.category(char)[0] in "CZ"
