"""The release map and release parsing. Expected numbers are typed in from
shared/docs/kea-facts.md §1.1, not computed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keadb_cli.errors import ExitCode, SettingsError
from keadb_cli.kea.releases import (
    RELEASES,
    Release,
    Schema,
    detect_installed,
    expected_schema,
    parse_release,
    parse_schema,
)


@pytest.mark.parametrize(
    ("release", "mysql", "pgsql"),
    [
        ("1.8.0", (9, 3), (6, 1)),
        ("1.9.1", (9, 4), (6, 2)),
        ("1.9.11", (11, 0), (6, 2)),
        ("2.0.0", (12, 0), (6, 2)),
        ("2.0", (12, 0), (6, 2)),
        ("2.1.1", (12, 0), (7, 0)),
        ("2.1.7", (14, 0), (12, 0)),
        ("2.2.0", (14, 0), (13, 0)),
        ("2.2", (14, 0), (13, 0)),
        ("2.3.6", (15, 0), (14, 0)),
        ("2.3.7", (17, 0), (16, 0)),
        ("2.4", (19, 0), (18, 0)),
        ("2.5.8", (21, 0), (21, 0)),
        ("2.6.0", (22, 0), (22, 0)),
        ("2.6.1", (22, 1), (22, 1)),
        ("2.6.3", (22, 2), (22, 2)),
        ("2.6", (22, 2), (22, 2)),
        ("2.7.8", (30, 0), (29, 0)),
        ("3.0.4", (30, 0), (29, 0)),
        ("3.1.0", (31, 0), (30, 0)),
        ("3.1.8", (34, 0), (33, 0)),
        ("3.2", (35, 0), (34, 0)),
        ("3.3.0", (35, 0), (34, 0)),
    ],
)
def test_release_map(release: str, mysql: tuple[int, int], pgsql: tuple[int, int]) -> None:
    rel = parse_release(release)
    assert expected_schema(rel, "mysql") == Schema(*mysql)
    assert expected_schema(rel, "postgresql") == Schema(*pgsql)


def test_series_means_newest_release() -> None:
    assert parse_release("2.6") == Release(2, 6, 5)
    assert parse_release("3.0") == Release(3, 0, 4)
    assert parse_release("2.2") == Release(2, 2, 1)


def test_map_covers_every_series_from_1_8_to_3_3() -> None:
    series = {(r.major, r.minor) for r in RELEASES}
    assert series == {
        (1, 8), (1, 9), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7),
        (3, 0), (3, 1), (3, 2), (3, 3),
    }
    assert min(RELEASES) == Release(1, 8, 0)
    assert max(RELEASES) == Release(3, 3, 0)


@pytest.mark.parametrize("text", ["2.8", "2.6.9", "4.0.0", "0.1", "abc", "2", "2.6.3.1", ""])
def test_unknown_or_malformed_release_is_a_settings_error(text: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_release(text)
    assert err.value.exit_code == ExitCode.SETTINGS
    assert "\n" not in err.value.message


def test_parse_schema() -> None:
    assert parse_schema("14.0") == Schema(14, 0)
    assert parse_schema(" 22.2 ") == Schema(22, 2)
    for bad in ("14", "14.0.1", "x.y", "-1.0"):
        with pytest.raises(SettingsError):
            parse_schema(bad)


def test_schema_ordering_is_numeric() -> None:
    assert Schema(9, 6) < Schema(10, 0)
    assert Schema(22, 1) < Schema(22, 2)


def test_detect_installed_reads_the_programs_version(tmp_path: Path) -> None:
    fake = tmp_path / "kea-dhcp6"
    fake.write_text("#!/bin/sh\necho 2.6.3\n")
    fake.chmod(0o755)
    found = detect_installed(str(tmp_path))
    assert found is not None
    assert found.release == Release(2, 6, 3)
    assert found.program == str(fake)


def test_detect_installed_ignores_unknown_answers(tmp_path: Path) -> None:
    fake = tmp_path / "kea-dhcp4"
    fake.write_text("#!/bin/sh\necho garbage\n")
    fake.chmod(0o755)
    assert detect_installed(str(tmp_path)) is None
    assert detect_installed(str(tmp_path / "nothing-here")) is None


def test_detect_installed_finds_debians_kea() -> None:
    """CI installs Debian's Kea 2.2.0 (kea-dhcp4-server, kea-admin)."""
    assert os.path.exists("/usr/sbin/kea-dhcp4"), ".ci/run installs kea-dhcp4-server"
    found = detect_installed("/usr/sbin")
    assert found is not None
    assert found.release == Release(2, 2, 0)
