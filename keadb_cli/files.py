"""Read a local input file as if it were hostile: bounded in size, never blocking.

Every file kea-db reads on the operator's behalf (a password file, a Kea configuration and
its includes, TLS certificates and keys) goes through :func:`read_bounded`. A path may name
``/dev/zero``, a FIFO nobody writes to, a terminal, a socket or a file of gigabytes; each is
refused with one line that says what the path is and what to do, before kea-db blocks or
fills its memory.

A core module: it never prints and never exits; it raises the
:class:`~keadb_cli.errors.KeaDbError` subclass its caller names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from keadb_cli.errors import KeaDbError

__all__ = [
    "MAX_CA_DIR_ENTRIES",
    "MAX_CA_DIR_FILES",
    "MAX_CONFIG_FILE",
    "MAX_CONFIG_INCLUDES",
    "MAX_CONFIG_TOTAL",
    "MAX_PASSWORD_FILE",
    "MAX_TLS_FILE",
    "describe_size",
    "read_bounded",
]

KiB = 1024
MiB = 1024 * KiB

MAX_PASSWORD_FILE = 64 * KiB
"""A password file (``--password-file``, Kea's ``password-file``): one line is used."""

MAX_CONFIG_FILE = 16 * MiB
"""One Kea configuration file, the main one or an included one."""

MAX_CONFIG_TOTAL = 64 * MiB
"""A Kea configuration and every file it includes, together (a file included twice counts
twice: it is read twice)."""

MAX_CONFIG_INCLUDES = 10_000
"""Include directives followed in one configuration (an empty file costs no bytes but an
open and a cycle check each)."""

MAX_TLS_FILE = 1 * MiB
"""One certificate, key or CA bundle file (a system CA bundle is about 200 KiB)."""

MAX_CA_DIR_FILES = 1000
"""Hash-named certificates examined in one CA directory (``/etc/ssl/certs`` holds a few
hundred)."""

MAX_CA_DIR_ENTRIES = 10_000
"""Directory entries listed in one CA directory before the listing stops."""

_CHUNK = 1 * MiB

# What a path that is not a regular file is, in words (S_IFMT -> "a FIFO"...).
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def describe_size(size: int) -> str:
    """``64 KiB``, ``16 MiB``, ``1.5 MiB``, ``100 bytes``."""
    for unit, name in ((MiB, "MiB"), (KiB, "KiB")):
        if size >= unit:
            value = size / unit
            return f"{value:.0f} {name}" if value == int(value) else f"{value:.1f} {name}"
    return f"{size} bytes"


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def _refuse_kind(mode: int, what: str, shown: str) -> str:
    kind = _kind(mode)
    if stat.S_ISDIR(mode):
        return f"{what} {shown} is a directory, not a file"
    return (
        f"{what} {shown} is {kind}, not a regular file: give the path of a regular file "
        "(kea-db does not read FIFOs, devices or sockets: they can block or never end)"
    )


def _os_error(err: OSError, what: str, shown: str, path: str) -> str:
    if isinstance(err, FileNotFoundError):
        return f"{what} {shown} does not exist"
    if isinstance(err, NotADirectoryError):
        return f"{what} {shown} does not exist (a part of its path is not a directory)"
    if isinstance(err, PermissionError):
        return f"{what} {shown} is not readable by this user: check its mode and owner"
    if isinstance(err, IsADirectoryError):
        return f"{what} {shown} is a directory, not a file"
    if err.errno in (errno.ENXIO, errno.EOPNOTSUPP):
        # open() of a socket fails with ENXIO: say what the path is rather than the errno.
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = 0
        if mode and not stat.S_ISREG(mode):
            return _refuse_kind(mode, what, shown)
    if err.errno == errno.ELOOP:
        return f"{what} {shown} cannot be read: too many levels of symbolic links"
    return f"{what} {shown} cannot be read: {err.strerror or type(err).__name__}"


def read_bounded(
    path: str | os.PathLike[str],
    *,
    what: str,
    limit: int,
    error: type[KeaDbError],
    name: str | None = None,
    where: str = "",
) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    The path is checked before it is opened, so that a device is never opened at all;
    it is then opened without blocking (``O_NONBLOCK``: a FIFO with no writer would block
    the open) and without becoming a controlling terminal, and the opened descriptor is
    checked again (the path may have changed in between). At most ``limit + 1`` bytes are
    read, whatever the file's size says (``/proc`` files say 0).

    ``what`` names the file in messages ("password file", "Kea configuration file",
    "trust-anchor"); ``name`` is how to show the path (default: ``path``); ``where``
    (``file:line:column``) starts the message when given.

    Raises:
        error: one line: the file does not exist, is not readable, is not a regular file
            (a directory, FIFO, device, socket), is larger than ``limit`` or cannot be read.
    """
    fspath = os.fspath(path)
    shown = _shown(name if name is not None else fspath)
    prefix = f"{where}: " if where else ""

    def refuse(message: str) -> KeaDbError:
        return error(prefix + message)

    def too_large() -> KeaDbError:
        return refuse(
            f"{what} {shown} is larger than {describe_size(limit)}, more than any {what} "
            "needs: check the path"
        )

    try:
        before = os.stat(fspath)
    except ValueError:  # no path holds a NUL byte
        raise refuse(f"{what} {shown} cannot be read: the path holds a NUL byte") from None
    except OSError as err:
        raise refuse(_os_error(err, what, shown, fspath)) from None
    if not stat.S_ISREG(before.st_mode):
        raise refuse(_refuse_kind(before.st_mode, what, shown))
    if before.st_size > limit:
        raise too_large()
    try:
        fd = os.open(fspath, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as err:
        raise refuse(_os_error(err, what, shown, fspath)) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise refuse(_refuse_kind(opened.st_mode, what, shown))
        if opened.st_size > limit:
            raise too_large()
        os.set_blocking(fd, True)  # a regular file: O_NONBLOCK only guarded the open
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise too_large()
        return b"".join(chunks)
    except OSError as err:
        raise refuse(_os_error(err, what, shown, fspath)) from None
    finally:
        os.close(fd)


def _shown(path: str) -> str:
    """A path as it may appear in a one-line message: control characters escaped, a very
    long path shortened."""
    from keadb_cli.text import shown

    return shown(path, 200) if not path.isprintable() or len(path) > 200 else path


def refuse_special(path: str, *, what: str, allow_directory: bool = False) -> str | None:
    """Why a file a client library will read itself (a TLS file, a server key) is not
    usable without reading it: a FIFO, device or socket could block that library forever.
    None when it is a regular file, when it does not exist (the library says so in its
    own words), or when it is a directory and ``allow_directory``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or (allow_directory and stat.S_ISDIR(mode)):
        return None
    if stat.S_ISDIR(mode):
        return None  # the library's own error names it (PostgreSQL: a file is needed)
    return _refuse_kind(mode, what, _shown(path))


def write_report(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file in the same
    directory, flushed to disk, then renamed over ``path``.

    Raises:
        SettingsError: the directory is not writable, or ``path`` is a directory.
    """
    import tempfile

    from keadb_cli.errors import SettingsError  # errors imports nothing from here

    target = Path(path)
    if target.is_dir():
        raise SettingsError(f"{_shown(path)} is a directory: give a file name for the report")
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as err:
        raise SettingsError(f"cannot write {_shown(path)}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SettingsError(f"cannot write {_shown(path)}: {err.strerror or err}") from None
