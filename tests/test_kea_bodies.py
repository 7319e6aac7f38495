"""keadb_cli/schema/kea_bodies.json knows every routine and trigger body kea-admin builds.

The file (written by tests/tools/kea_body_hashes.py; hashes, object keys and schema versions
only) is how ``kea-db verify`` recognises Kea's own body text. On PostgreSQL, MariaDB and
Oracle MySQL, Debian's kea-admin 2.2.0, 2.6.3 and 3.0.4 ``db-init``, and 2.2.0's database
then upgraded by 3.0.4's ``db-upgrade``, build databases whose every trigger and routine body
hash the file lists for that flavour at the database's schema version. The file's shape is
checked too, and that a missing entry is reported.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from kea_admin import kea_admin_init, kea_admin_upgrade
from servers import FreshDatabase

from keadb_cli.kea.releases import Schema, expected_schema, parse_release
from keadb_cli.schema import catalog
from keadb_cli.schema.scripts import known_schemas

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
import kea_body_hashes

BODIES = Path(catalog.__file__).with_name("kea_bodies.json")
FLAVOURS = {"postgresql": "postgresql", "mariadb": "mysql", "mysql": "mysql"}
# Debian kea-admin chains: the first release runs db-init, the next ones db-upgrade. Each
# database is built once; 2.2.0's is then upgraded, so every release inits once per server.
PATHS = {"2.2.0-then-3.0.4": ("2.2.0", "3.0.4"), "2.6.3": ("2.6.3",), "3.0.4": ("3.0.4",)}
# Schema versions no release expects: the generator has no tag for them.
NO_RELEASE = {"postgresql": {"15.0"}, "mysql": {"16.0"}}


@cache
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BODIES.read_text(encoding="utf-8"))
    return data


def _flavour(db: FreshDatabase) -> str:
    return "postgresql" if db.type == "postgresql" else str(db.server.flavor)


@pytest.mark.db
@pytest.mark.kea
@pytest.mark.parametrize("path", list(PATHS.values()), ids=list(PATHS))
def test_kea_admin_bodies_are_recorded(fresh_db: FreshDatabase, path: tuple[str, ...]) -> None:
    db = fresh_db
    flavour = _flavour(db)
    args = (db.type, db.host, db.port, db.user, db.password, db.name)
    missing: list[str] = []
    for step, release in enumerate(path):
        run = kea_admin_upgrade if step else kea_admin_init
        run(*args, release=release)
        found = kea_body_hashes.read_catalog(db, flavour)
        schema = kea_body_hashes.schema_of(found)
        assert schema == expected_schema(parse_release(release), db.type)
        hashes = kea_body_hashes.body_hashes(found)
        assert len(hashes) > 50, f"only {len(hashes)} bodies read after kea-admin {release}"
        what = f"kea-admin {' -> '.join(path[: step + 1])}"
        missing += [f"{what}: {line}"
                    for line in kea_body_hashes.unrecorded(hashes, recorded()[flavour], schema)]
    assert not missing, (
        f"{len(missing)} {flavour} bodies not in {BODIES.name} (rerun "
        "tests/tools/kea_body_hashes.py):\n" + "\n".join(missing)
    )


def test_a_missing_entry_is_reported() -> None:
    objects = recorded()["postgresql"]
    key = next(k for k in sorted(objects) if k.startswith("routine "))
    digest, versions = next(iter(objects[key].items()))
    schema = Schema(*(int(p) for p in versions[0].split(".")))
    assert kea_body_hashes.unrecorded({key: digest}, objects, schema) == []
    other = "0" * 64
    assert kea_body_hashes.unrecorded({key: other}, objects, schema) == [
        f"{key}: {other} not recorded at {schema}"
    ]
    assert kea_body_hashes.unrecorded({key: digest}, objects, Schema(1, 0)) == [
        f"{key}: {digest} not recorded at 1.0"
    ]
    without = {k: v for k, v in objects.items() if k != key}
    assert kea_body_hashes.unrecorded({key: digest}, without, schema) == [
        f"{key}: {digest} not recorded at {schema}"
    ]


def test_the_file_holds_facts_only_for_every_known_version() -> None:
    data = recorded()
    assert set(data) == {"about", *FLAVOURS}
    assert "kea_body_hashes.py" in data["about"]
    for flavour, db_type in FLAVOURS.items():
        known = {f"{major}.{minor}" for major, minor in known_schemas(db_type)}
        seen: set[str] = set()
        assert data[flavour], flavour
        for key, by_hash in data[flavour].items():
            assert re.fullmatch(r"(trigger \w+|routine (function|procedure) \w+\(.*\))", key), key
            for digest, versions in by_hash.items():
                assert re.fullmatch(r"[0-9a-f]{64}", digest), (key, digest)
                assert versions, (key, digest)
                assert versions == sorted(set(versions), key=kea_body_hashes.version_key)
                assert set(versions) <= known, (flavour, key, set(versions) - known)
                seen.update(versions)
        assert seen == known - NO_RELEASE[db_type], flavour


def test_the_file_is_as_the_generator_writes_it() -> None:
    bodies: kea_body_hashes.Bodies = {
        flavour: {
            key: {digest: {Schema(*map(int, v.split("."))) for v in versions}
                  for digest, versions in by_hash.items()}
            for key, by_hash in recorded()[flavour].items()
        }
        for flavour in FLAVOURS
    }
    assert kea_body_hashes.render(bodies) == BODIES.read_text(encoding="utf-8")
