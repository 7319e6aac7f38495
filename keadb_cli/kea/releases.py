"""Kea release -> the schema version each backend must have (pure data and look-ups).

The numbers were read from the schema constants of every Kea tag from 1.8.0 to 3.3.0
(shared/docs/kea-facts.md §1.1). MySQL and PostgreSQL numbers are independent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from keadb_cli.errors import SettingsError


class Release(NamedTuple):
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class Schema(NamedTuple):
    version: int
    minor: int

    def __str__(self) -> str:
        return f"{self.version}.{self.minor}"


# (series, first patch, last patch, MySQL schema, PostgreSQL schema): one row per run of
# releases that expect the same schemas.
_RUNS: tuple[tuple[tuple[int, int], int, int, tuple[int, int], tuple[int, int]], ...] = (
    ((1, 8), 0, 2, (9, 3), (6, 1)),
    ((1, 9), 0, 0, (9, 3), (6, 1)),
    ((1, 9), 1, 1, (9, 4), (6, 2)),
    ((1, 9), 2, 4, (9, 5), (6, 2)),
    ((1, 9), 5, 9, (9, 6), (6, 2)),
    ((1, 9), 10, 10, (10, 0), (6, 2)),
    ((1, 9), 11, 11, (11, 0), (6, 2)),
    ((2, 0), 0, 3, (12, 0), (6, 2)),
    ((2, 1), 0, 0, (12, 0), (6, 2)),
    ((2, 1), 1, 1, (12, 0), (7, 0)),
    ((2, 1), 2, 2, (13, 0), (8, 0)),
    ((2, 1), 3, 3, (13, 0), (9, 0)),
    ((2, 1), 4, 6, (13, 0), (11, 0)),
    ((2, 1), 7, 7, (14, 0), (12, 0)),
    ((2, 2), 0, 1, (14, 0), (13, 0)),
    ((2, 3), 0, 5, (14, 0), (13, 0)),
    ((2, 3), 6, 6, (15, 0), (14, 0)),
    ((2, 3), 7, 7, (17, 0), (16, 0)),
    ((2, 3), 8, 8, (18, 0), (17, 0)),
    ((2, 4), 0, 2, (19, 0), (18, 0)),
    ((2, 5), 0, 4, (20, 0), (19, 0)),
    ((2, 5), 5, 7, (21, 0), (20, 0)),
    ((2, 5), 8, 8, (21, 0), (21, 0)),
    ((2, 6), 0, 0, (22, 0), (22, 0)),
    ((2, 6), 1, 1, (22, 1), (22, 1)),
    ((2, 6), 2, 5, (22, 2), (22, 2)),
    ((2, 7), 0, 0, (23, 0), (23, 0)),
    ((2, 7), 1, 2, (24, 0), (24, 0)),
    ((2, 7), 3, 3, (25, 0), (25, 0)),
    ((2, 7), 4, 4, (26, 0), (26, 0)),
    ((2, 7), 5, 5, (27, 0), (27, 0)),
    ((2, 7), 6, 6, (28, 0), (28, 0)),
    ((2, 7), 7, 7, (29, 0), (29, 0)),
    ((2, 7), 8, 9, (30, 0), (29, 0)),
    ((3, 0), 0, 4, (30, 0), (29, 0)),
    ((3, 1), 0, 0, (31, 0), (30, 0)),
    ((3, 1), 1, 4, (32, 0), (31, 0)),
    ((3, 1), 5, 7, (33, 0), (32, 0)),
    ((3, 1), 8, 8, (34, 0), (33, 0)),
    ((3, 1), 9, 9, (35, 0), (34, 0)),
    ((3, 2), 0, 0, (35, 0), (34, 0)),
    ((3, 3), 0, 0, (35, 0), (34, 0)),
)


def _build() -> dict[Release, dict[str, Schema]]:
    table: dict[Release, dict[str, Schema]] = {}
    for (major, minor), first, last, mysql, pgsql in _RUNS:
        for patch in range(first, last + 1):
            table[Release(major, minor, patch)] = {
                "mysql": Schema(*mysql),
                "postgresql": Schema(*pgsql),
            }
    return table


RELEASES: dict[Release, dict[str, Schema]] = _build()

_RELEASE_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?\s*$")
_SCHEMA_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*$")


def newest_in_series(major: int, minor: int) -> Release | None:
    patches = [r for r in RELEASES if (r.major, r.minor) == (major, minor)]
    return max(patches) if patches else None


def newest_stable() -> Release:
    """The newest release of a stable series (even minor number)."""
    return max(r for r in RELEASES if r.minor % 2 == 0)


def previous_stable(release: Release) -> Release:
    """The newest release of the stable series before ``release``'s."""
    return max(r for r in RELEASES if r.minor % 2 == 0 and (r.major, r.minor) <
               (release.major, release.minor))


def parse_release(text: str) -> Release:
    """``2.6`` (the series' newest release), ``2.6.3`` or ``3.0.4`` -> a known Release.

    Raises:
        SettingsError: not a version, or a release the map does not know.
    """
    m = _RELEASE_RE.match(text)
    if not m:
        raise SettingsError(
            f"--kea-version must look like 2.6 or 2.6.3, got {text!r}"
        )
    major, minor = int(m.group(1)), int(m.group(2))
    if m.group(3) is None:
        release = newest_in_series(major, minor)
        if release is None:
            raise SettingsError(f"unknown Kea release series {major}.{minor}: {_known_hint()}")
        return release
    release = Release(major, minor, int(m.group(3)))
    if release not in RELEASES:
        raise SettingsError(f"unknown Kea release {release}: {_known_hint()}")
    return release


def parse_schema(text: str, option: str = "--expect") -> Schema:
    """``MAJOR.MINOR`` (as ``--expect`` and ``--from`` take it) -> Schema."""
    m = _SCHEMA_RE.match(text)
    if not m:
        raise SettingsError(f"{option} must look like MAJOR.MINOR (e.g. 14.0), got {text!r}")
    return Schema(int(m.group(1)), int(m.group(2)))


def _known_hint() -> str:
    return f"kea-db knows {min(RELEASES)} to {max(RELEASES)} (see `kea-db versions`)"


def expected_schema(release: Release, db_type: str) -> Schema:
    return RELEASES[release][db_type]


def releases_for_schema(db_type: str, schema: Schema) -> list[Release]:
    """Every known release that expects ``schema`` on ``db_type`` (for messages)."""
    return sorted(r for r, s in RELEASES.items() if s[db_type] == schema)


@dataclass(frozen=True)
class InstalledKea:
    program: str  # the binary that answered
    release: Release


KEA_PROGRAMS = ("kea-dhcp4", "kea-dhcp6", "kea-admin")
_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def detect_installed(search_path: str | None = None) -> InstalledKea | None:
    """The release of an installed Kea program, asked the way its manual says (``-v``).

    ``search_path`` defaults to PATH plus the sbin directories where Kea's servers live.
    Returns None when no Kea program is found or none answers with a known release.
    """
    import os
    import shutil
    import subprocess

    search = search_path
    if search is None:
        search = os.environ.get("PATH", "") + ":" + _SEARCH_PATH
    for program in KEA_PROGRAMS:
        found = shutil.which(program, path=search)
        if not found:
            continue
        try:
            out = subprocess.run(
                [found, "-v"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        if not m:
            continue
        release = Release(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if release in RELEASES:
            return InstalledKea(program=found, release=release)
    return None
