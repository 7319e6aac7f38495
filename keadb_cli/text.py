"""Text that came from a server or a file, made safe to show.

Server error messages, table names, certificate subjects and file excerpts are data: they
must never reach a terminal as control sequences, and a hostile value must not flood the
output. :func:`shown` is the one place that makes such text printable.

Such text may also carry the password: a server or proxy that has it may echo it in an error.
The passwords kea-db uses are kept here (:func:`keep_secret`, a process-wide registry without
I/O), and :func:`redact` replaces each, raw or in the forms output gives it (escaped by
:func:`shown`, escaped for JSON), with ``***``: :func:`shown` does so before and after it
shortens and escapes, and the CLI's output does so again for every value it writes.

A password with fewer than :data:`MIN_SECRET` characters other than white space is not
searched for: starring every ``kea`` or ``12`` would mangle the output.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import Any

DEFAULT_LIMIT = 300  # characters of one value shown before it is shortened
MARKER = "***"  # what a password is replaced with: shorter than any password searched for
MIN_SECRET = 4  # characters other than white space a password needs to be searched for

_forms: tuple[str, ...] = ()  # every form of every kept password, longest first
_lock = threading.Lock()


def keep_secret(value: str | None) -> None:
    """Remember ``value`` (a password kea-db resolved or a client library will use) so that
    no output shows it. Too short a value (see :data:`MIN_SECRET`) is not kept."""
    global _forms
    if not value or sum(not c.isspace() for c in value) < MIN_SECRET:
        return
    with _lock:
        if value in _forms:
            return
        new = {f for f in _secret_forms(value) if len(f) > len(MARKER)}
        _forms = tuple(sorted(set(_forms) | new, key=lambda f: (-len(f), f)))


def forget_secrets() -> None:
    """Drop every kept password (for tests, and for a process that runs several times)."""
    global _forms
    with _lock:
        _forms = ()


def redact(text: str) -> str:
    """``text`` with every kept password (raw, :func:`shown`-escaped or JSON-escaped)
    replaced by ``***``, repeated until none is left (a replacement can bring two halves of
    another occurrence together; each one shortens the text, so this ends)."""
    forms = _forms
    if not forms:
        return text
    while True:
        found = False
        for form in forms:
            if form in text:
                text = text.replace(form, MARKER)
                found = True
        if not found:
            return text


def _secret_forms(value: str) -> set[str]:
    """The password as output could show it: raw, as :func:`shown` prints it (white space
    collapsed, controls escaped), and inside a JSON string (ASCII-only or not)."""
    import json  # only when there is a password to keep

    collapsed = " ".join(value.split())
    return {
        value,
        collapsed,
        "".join(_escape(c) if _unsafe(c) else c for c in value),
        "".join(_escape(c) if _unsafe(c) else c for c in collapsed),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


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
    ``limit`` characters is cut, with its length said. A kept password is replaced by
    ``***`` first, so that no cut or escape can show a part or a form of it, and what is
    shown is searched again (see :func:`redact`)."""
    raw = redact(str(value))
    # Only a bounded prefix is examined: a 10 MB value costs no more than a short one.
    text = " ".join(raw[: limit * 4 + 64].split())
    length = len(text) if len(raw) <= limit * 4 + 64 else len(raw)
    if length > limit:
        text = text[:limit]
    out = "".join(_escape(c) if _unsafe(c) else c for c in text)
    if length > limit:
        out += f"... ({length} characters)"
    return redact(out)


def _unsafe(char: str) -> bool:
    if " " <= char <= "~":
        return False
    # Controls, format characters (bidi overrides), unassigned code points, and separators
    # other than the plain space (line and paragraph separators, odd spaces).
    return unicodedata.category(char)[0] in "CZ"


def redact_json(value: Any) -> Any:
    """A JSON value with every string in it (keys aside) passed through :func:`redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value
