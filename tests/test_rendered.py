"""migrations/<backend>/rendered.json, the record of every revision's offline SQL hash that
init and upgrade check before running anything (README, "Render store").

- The committed files are byte for byte what tests/tools/rendered_hashes.py writes now
  (every revision rendered offline from its down_revision): a change to a revision or to
  the shared schema kit that changes what a revision runs fails here until the file is
  rewritten (and reviewed).
- Released revisions keep their hash forever: tests/data/released-revisions.txt lists each
  with the hash it was released with. kea-db has had no release yet, so the list is empty
  and must stay so until CHANGELOG.md names a release; the comparison itself is proven on
  tampered mappings.
- The tool's ``--check`` exits 1 on a difference and writes nothing; it refuses to write a
  changed hash of a released revision.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
import rendered_hashes

from keadb_cli.schema import scripts

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("mysql", "postgresql")
SHA_A, SHA_B = "a" * 64, "b" * 64


@cache
def fresh(db_type: str) -> rendered_hashes.Entries:
    """The tool's rendering (a few seconds per backend: once per test run)."""
    return rendered_hashes.entries(db_type)


def committed(db_type: str) -> rendered_hashes.Entries:
    entries: rendered_hashes.Entries = json.loads(
        rendered_hashes.path_for(db_type).read_text(encoding="utf-8"))
    return entries


# -- the committed record ----------------------------------------------------------------


@pytest.mark.parametrize("db_type", BACKENDS)
def test_committed_rendered_json_is_what_the_tool_writes(db_type: str) -> None:
    """Every revision's offline SQL (from the revision before it) hashes as recorded, the
    record's chain is alembic's, no revision is missing or extra, and the file is written
    as the tool writes it. After an intended change: run tests/tools/rendered_hashes.py."""
    path = rendered_hashes.path_for(db_type)
    assert path == ROOT / "migrations" / db_type / "rendered.json"
    text = path.read_text(encoding="utf-8")
    want = rendered_hashes.render(fresh(db_type))
    assert text == want, "\n".join(rendered_hashes.differences(text, want))
    # What kea-db itself reads is that file.
    assert scripts.recorded(db_type) == json.loads(want)


def test_released_revisions_keep_their_hashes() -> None:
    """Every revision listed in tests/data/released-revisions.txt has, in rendered.json,
    the hash it was released with; and the list is empty exactly while CHANGELOG.md names
    no release (on the first release it must list that release's revisions)."""
    released = rendered_hashes.read_released()
    found = {db_type: committed(db_type) for db_type in BACKENDS}
    assert rendered_hashes.changed_released(released, found) == []
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = [h for h in re.findall(r"^## +(.+?)\s*$", changelog, re.MULTILINE)
                if h.lower() != "unreleased"]
    if releases:
        assert released, (f"CHANGELOG.md names release(s) {releases} but "
                          "tests/data/released-revisions.txt lists no revision")
    else:
        assert released == {}, ("tests/data/released-revisions.txt lists revisions, but "
                                "CHANGELOG.md names no release")


# -- the comparison, on tampered mappings ----------------------------------------------------


def test_a_changed_or_missing_released_revision_is_reported() -> None:
    found = {db_type: committed(db_type) for db_type in BACKENDS}
    mysql_14 = found["mysql"]["mysql_14_0"]["sha256"]
    pgsql_13 = found["postgresql"]["pgsql_13_0"]["sha256"]
    assert isinstance(mysql_14, str) and isinstance(pgsql_13, str)
    released = {"mysql_14_0": mysql_14, "pgsql_13_0": pgsql_13}
    assert rendered_hashes.changed_released(released, found) == []
    # One hash changed in the record: that revision, and only it, is reported.
    tampered = json.loads(json.dumps(found))
    tampered["mysql"]["mysql_14_0"]["sha256"] = SHA_A
    assert rendered_hashes.changed_released(released, tampered) == [
        f"mysql_14_0: released with {mysql_14}, now {SHA_A}"]
    # The listed hash differs from the record (a wrong list): reported the same way.
    assert rendered_hashes.changed_released({**released, "pgsql_13_0": SHA_B}, found) == [
        f"pgsql_13_0: released with {SHA_B}, now {pgsql_13}"]
    # A released revision removed from the record.
    del tampered["postgresql"]["pgsql_13_0"]
    assert rendered_hashes.changed_released(released, tampered) == [
        f"mysql_14_0: released with {mysql_14}, now {SHA_A}",
        f"pgsql_13_0: released with {pgsql_13}, now missing"]


def test_the_released_list_format() -> None:
    text = ("# header\n\nmysql_14_0 " + SHA_A + "  # comment\npgsql_22_1\t" + SHA_B + "\n")
    assert rendered_hashes.parse_released(text) == {"mysql_14_0": SHA_A, "pgsql_22_1": SHA_B}
    for bad in (f"mysql_14_0 {SHA_A} extra", "mysql_14_0", f"mysql_14_0 {SHA_A[:-1]}",
                f"mysql_14_0 {SHA_A.upper()}", f"lease4 {SHA_A}",
                f"mysql_14_0 {SHA_A}\nmysql_14_0 {SHA_A}"):
        with pytest.raises(ValueError, match="line"):
            rendered_hashes.parse_released(bad)


# -- the tool's modes ---------------------------------------------------------------------


def test_check_mode_fails_on_a_difference_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On copies of the files: --check passes on the committed text, fails on a changed
    hash without writing, and the write mode restores the file; a changed released
    revision is refused, written only with --allow-released-change."""
    copies = {db_type: tmp_path / f"{db_type}.json" for db_type in BACKENDS}
    for db_type, copy in copies.items():
        copy.write_bytes(rendered_hashes.path_for(db_type).read_bytes())
    monkeypatch.setattr(rendered_hashes, "path_for", copies.__getitem__)
    monkeypatch.setattr(rendered_hashes, "entries", fresh)
    released = tmp_path / "released.txt"
    released.write_text("# none\n")
    monkeypatch.setattr(rendered_hashes, "RELEASED", released)
    good = copies["postgresql"].read_text()

    assert rendered_hashes.main(["--check"]) == 0
    tampered = good.replace(str(committed("postgresql")["pgsql_20_0"]["sha256"]), SHA_A)
    assert tampered != good
    copies["postgresql"].write_text(tampered)
    capsys.readouterr()
    assert rendered_hashes.main(["--check"]) == 1
    assert "pgsql_20_0" in capsys.readouterr().err
    assert copies["postgresql"].read_text() == tampered  # --check wrote nothing
    assert rendered_hashes.main([]) == 0
    assert copies["postgresql"].read_text() == good
    assert rendered_hashes.main(["--check"]) == 0

    # pgsql_20_0 "released" with another hash than it renders to: refused either way.
    released.write_text(f"pgsql_20_0 {SHA_A}\n")
    copies["postgresql"].write_text(tampered)
    assert rendered_hashes.main([]) == 1
    assert copies["postgresql"].read_text() == tampered
    assert rendered_hashes.main(["--check"]) == 1
    assert rendered_hashes.main(["--allow-released-change"]) == 0
    assert copies["postgresql"].read_text() == good
