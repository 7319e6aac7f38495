"""PostgreSQL's ``host`` as libpq's host list (``"host": "db1,db2"``), which Kea passes to
libpq as it is, with its one ``port`` for every host: kea-db tries the hosts in order as
libpq does, honours ``PGTARGETSESSIONATTRS``, watches the login of every host it tries, and
names the host that answered in check-version, test-tls and preflight. MySQL refuses a list.

One topology for the module, on one port: a primary on 127.0.0.1, its hot standby on
127.0.0.2 (``pg_basebackup -R``), nothing on 127.0.0.3, and a fake server that asks for the
password in clear on 127.0.0.4 (only while its test runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import servers
from fakes import FakeServer
from servers import FreshDatabase, PostgresServer, create_fresh_database, start_postgres

from keadb_cli.errors import ExitCode
from keadb_cli.kea.validate import validate

PRIMARY, STANDBY, NOBODY, FAKE = "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"
REPLAY_WAIT = 60.0  # seconds the new role and database may take to reach the standby


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[PostgresServer, FreshDatabase]]:
    """(standby, the database and user made on the primary, replayed on the standby)."""
    primary = start_postgres(settings={"wal_level": "replica", "max_wal_senders": "5"})
    standby = None
    try:
        primary.prepend_hba(f"host replication postgres {primary.host}/32 trust")
        standby = servers.start_postgres_standby(primary, listen=STANDBY, port=primary.port)
        db = create_fresh_database(primary)
        deadline = time.monotonic() + REPLAY_WAIT
        query = "SELECT count(*) FROM pg_roles WHERE rolname = %s"
        while standby.sql(query, params=[db.user])[0][0] != 1:
            assert time.monotonic() < deadline, "the user did not reach the standby"
            time.sleep(0.05)
        yield standby, db
    finally:
        servers.stop_servers([s for s in (standby, primary) if s is not None])


def _kea_db(db: FreshDatabase, host: str, *args: str,
            env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    env.update({"KEA_DB_PASSWORD": db.password, **(env_extra or {})})
    command, *rest = args
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", command, "--type", "postgresql", "--host", host,
         "--port", str(db.port), "--user", db.user, "--name", db.name,
         "--connect-timeout", "5", *rest],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert db.password not in proc.stdout + proc.stderr
    return proc


def _preflight(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG"))}
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "preflight", "--config", str(config),
         "--kea-version", "2.6", *extra],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return doc


@pytest.mark.db
def test_the_next_host_answers_when_the_first_is_down(
        pair: tuple[PostgresServer, FreshDatabase], tmp_path: Path) -> None:
    _standby, db = pair
    hosts = f"{NOBODY},{PRIMARY}"
    port = {"host": PRIMARY, "port": db.port}
    version = _kea_db(db, hosts, "check-version", "--expect", "13.0", "--json")
    result = _result(version)
    assert (result["verdict"], result["answered"]) == ("EMPTY", port), result
    assert result["node"]["role"] == "primary"
    text = _kea_db(db, hosts, "check-version", "--expect", "13.0")
    assert f"(answered: {PRIMARY}:{db.port})" in text.stdout, text.stdout
    # test-tls: the session's host is the one its wire probe went to (no TLS here)
    tls = _kea_db(db, hosts, "test-tls", "--json")
    doc = _result(tls)
    assert doc["answered"] == port and doc["session"]["answered"] == port, doc
    assert doc["session"]["connected"] is True
    assert (doc["wire"]["error"], doc["wire"]["offered"]) == (None, False), doc["wire"]
    tls_text = _kea_db(db, hosts, "test-tls")
    assert f"(answered: {PRIMARY}:{db.port})" in tls_text.stdout, tls_text.stdout
    # preflight, from a Kea file whose host is the list
    entry = {"type": "postgresql", "host": hosts, "port": db.port, "user": db.user,
             "password": db.password, "name": db.name}
    config = tmp_path / "kea-dhcp4.conf"
    config.write_text(json.dumps({"Dhcp4": {"lease-database": entry}}))
    flight = _preflight(config, "--json")
    found = [e for e in json.loads(flight.stdout)["entries"]
             if e["path"] == "Dhcp4.lease-database"]
    assert len(found) == 1 and found[0]["answered"] == port, flight.stdout
    login = {c["check"]: c for c in found[0]["checks"]}["login"]
    assert f"at {PRIMARY}:{db.port} (host list {hosts})" in login["detail"], login
    flight_text = _preflight(config)
    assert f"at {PRIMARY}:{db.port}" in flight_text.stdout, flight_text.stdout
    assert db.password not in flight.stdout + flight_text.stdout + flight_text.stderr


@pytest.mark.db
def test_target_session_attrs_picks_the_primary(
        pair: tuple[PostgresServer, FreshDatabase]) -> None:
    _standby, db = pair
    hosts = f"{STANDBY},{PRIMARY}"
    first = _result(_kea_db(db, hosts, "check-version", "--expect", "13.0", "--json"))
    assert first["answered"] == {"host": STANDBY, "port": db.port}, first
    assert first["node"]["role"] == "standby"
    picked = _result(_kea_db(db, hosts, "check-version", "--expect", "13.0", "--json",
                             env_extra={"PGTARGETSESSIONATTRS": "read-write"}))
    assert picked["answered"] == {"host": PRIMARY, "port": db.port}, picked
    assert picked["node"]["role"] == "primary"
    # init refuses the standby that answered, naming it (and the list)
    init = _kea_db(db, hosts, "init", "--kea-version", "2.2", "--json")
    refused = _result(init)
    assert init.returncode == ExitCode.NODE_NOT_WRITABLE, refused
    assert refused["detail"].startswith(
        f"PostgreSQL {STANDBY}:{db.port}/{db.name} (host list {hosts}) is a hot standby"), refused


@pytest.mark.db
def test_the_guard_watches_the_next_host_too(
        pair: tuple[PostgresServer, FreshDatabase]) -> None:
    """The standby takes the SCRAM login (watched, then left alone), libpq leaves it for not
    being read-write, and the next host asks for the password in clear: refused unsent."""
    _standby, db = pair
    with FakeServer("postgresql", "cleartext_password", bind=(FAKE, db.port)) as fake:
        proc = _kea_db(db, f"{STANDBY},{FAKE}", "check-version", "--expect", "13.0",
                       "--json", env_extra={"PGTARGETSESSIONATTRS": "read-write"})
        assert fake.wait_for("password-requested", timeout=1)
        assert fake.startups and fake.startups[0].get("user") == db.user
        assert (len(fake.auth_replies), len(fake.recovered_passwords)) == (0, 0)
        assert not fake.received_any(db.password.encode())
    result = _result(proc)
    assert (result["verdict"], result["reason_code"]) == ("DENIED", "insecure-auth"), result
    assert proc.returncode == ExitCode.DENIED
    assert f"PostgreSQL {FAKE}:{db.port}/{db.name} (host list {STANDBY},{FAKE}): " \
        in result["detail"]
    assert "password in clear" in result["detail"]
    assert result["answered"] is None


def test_mysql_refuses_a_host_list() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_DB_", "PG", "MYSQL"))}
    proc = subprocess.run(
        [sys.executable, "-m", "keadb_cli", "check-version", "--type", "mysql", "--host",
         "db1,db2", "--user", "kea", "--name", "kea", "--expect", "14.0"],
        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == ExitCode.SETTINGS, proc
    assert proc.stderr.strip().splitlines() == [
        "kea-db: error: host is a list of 2 names: Kea's MySQL backend takes one host (host "
        "lists are libpq's, PostgreSQL only)"], proc.stderr
    mysql = [f.message for f in validate({"type": "mysql", "name": "kea", "host": "a,b"})]
    assert mysql == ["'host' is a list of 2 names: Kea's MySQL backend takes one host (host "
                     "lists are libpq's, PostgreSQL only)"]
    good = {"type": "postgresql", "name": "kea", "host": "db1,/run/postgresql,10.0.0.1"}
    assert [f.message for f in validate(good)] == []
    bad = {"type": "postgresql", "name": "kea", "host": "db1," + "x" * 64 + ".example"}
    assert [f.message for f in validate(bad)] == [
        "'host' (a host list): entry 2 has a label of 64 characters: a host name label has "
        "at most 63 (RFC 1035), so no resolver can look it up"]
