"""`kea-db preflight`'s fleet rules: three Kea configuration files per rule, with the
problem and fixed. The configuration-only rules point at a port where nothing listens
(preflight reports them whatever the database says); the connection limit is read from
real servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from servers import FreshDatabase

from keadb_cli.errors import ExitCode

PG_HOOK = {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_pgsql.so"}
MYSQL_HOOK = {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_mysql.so"}
HA_HOOK = "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so"
NAMES = ("server1", "server2", "server3")


def closed_port() -> int:
    """A loopback port nothing listens on: every login is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def nowhere() -> dict[str, Any]:
    return {"type": "postgresql", "host": "127.0.0.1", "port": closed_port(),
            "user": "kea", "password": "not-used-here", "name": "kea"}


def ha(this: str, peers: tuple[str, ...] = NAMES, **extra: Any) -> dict[str, Any]:
    """The HA hook of ``this`` in one relationship of ``peers`` (hot-standby, backups)."""
    roles = ["primary", "standby"] + ["backup"] * (len(peers) - 2)
    return {"library": HA_HOOK, "parameters": {"high-availability": [{
        "this-server-name": this, "mode": "hot-standby", **extra,
        "peers": [{"name": p, "url": f"http://192.0.2.{i + 1}:8004/", "role": r}
                  for i, (p, r) in enumerate(zip(peers, roles, strict=True))]}]}}


QUIET = {"send-lease-updates": False, "sync-leases": False}


def conf(path: Path, lease: dict[str, Any], *, hook: dict[str, Any] | None = None,
         **section: Any) -> Path:
    body: dict[str, Any] = {"hooks-libraries": [PG_HOOK, MYSQL_HOOK] + ([hook] if hook else []),
                            "lease-database": lease, **section}
    body.setdefault("subnet4", [{"id": 1, "subnet": "192.0.2.0/24"}])
    path.write_text(json.dumps({"Dhcp4": body}, indent=2))
    return path


def run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEA_DB_", "PG", "GITHUB_"))}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "keadb_cli", "preflight", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def fleet(files: list[Path], *extra: str) -> tuple[dict[str, Any], int]:
    args = [a for f in files for a in ("--config", str(f))]
    proc = run(*args, *extra, "--json")
    return json.loads(proc.stdout), proc.returncode


def rules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {f["rule"]: f for f in doc["fleet"]}
    assert len(found) == len(doc["fleet"]), doc["fleet"]
    return found


def members(finding: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m["file"], m["path"]) for m in finding["members"]}


def names_in_detail(finding: dict[str, Any], *pairs: tuple[Path, str]) -> None:
    for file, path in pairs:
        assert f"{file} {path}" in finding["detail"], (file, path, finding["detail"])


# -- unique lease database ----------------------------------------------------------------


def test_a_server_outside_the_ha_pair_on_its_lease_database_fails(
    tmp_path: Path, nowhere: dict[str, Any]
) -> None:
    pair = ("server1", "server2")
    a = conf(tmp_path / "kea-a.conf", nowhere, hook=ha("server1", pair, **QUIET))
    b = conf(tmp_path / "kea-b.conf", nowhere, hook=ha("server2", pair, **QUIET))
    c = conf(tmp_path / "kea-c.conf", nowhere)
    doc, code = fleet([a, b, c], "--kea-version", "2.6.1")
    found = rules(doc)
    assert set(found) == {"unique-lease-database", "shared-lease-release"}
    finding = found["unique-lease-database"]
    assert finding["status"] == "fail" and finding["exit_code"] == ExitCode.CONFIG
    assert members(finding) == {(str(f), "Dhcp4.lease-database") for f in (a, b, c)}
    assert f"{a} and {c}; {b} and {c} are not peers" in finding["detail"]
    assert f"{a} and {b}" not in finding["detail"]
    assert code == ExitCode.CONFIG

    # Kea 2.6.2+ without FLQ supports a lease database shared outside HA: a warning that
    # the sharing must be deliberate (KB kea-shared-lease-database-quickstart).
    doc, code = fleet([a, b, c], "--kea-version", "2.6.2")
    found = rules(doc)
    assert set(found) == {"unique-lease-database"}
    assert found["unique-lease-database"]["status"] == "warn"
    assert "make sure it is deliberate" in found["unique-lease-database"]["detail"]
    assert code == ExitCode.UNREACHABLE  # only the logins fail

    # Fixed: the third server gets its own database; the HA pair may share theirs.
    c = conf(tmp_path / "kea-c.conf", {**nowhere, "name": "kea_c"})
    doc, code = fleet([a, b, c], "--kea-version", "2.6.2")
    assert doc["fleet"] == []
    assert code == ExitCode.UNREACHABLE  # only the logins fail


def test_dhcp4_and_dhcp6_on_one_database_are_not_sharers(
    tmp_path: Path, nowhere: dict[str, Any]
) -> None:
    """lease4 and lease6 are different tables: a DHCPv4 and a DHCPv6 server of one host
    on one database share nothing."""
    a = conf(tmp_path / "kea-dhcp4.conf", nowhere)
    six = tmp_path / "kea-dhcp6.conf"
    six.write_text(json.dumps({"Dhcp6": {"hooks-libraries": [PG_HOOK],
                                         "lease-database": nowhere}}))
    doc, _ = fleet([a, six, a], "--kea-version", "2.6.2")  # a file named twice counts once
    assert doc["fleet"] == []


def test_junit_and_github_annotations_carry_a_fleet_finding(
    tmp_path: Path, nowhere: dict[str, Any]
) -> None:
    files = [conf(tmp_path / f"kea-{n}.conf", nowhere) for n in "abc"]
    junit = tmp_path / "preflight.xml"
    args = [a for f in files for a in ("--config", str(f))]
    proc = run(*args, "--kea-version", "2.6.1", "--junit", str(junit),
               env_extra={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == ExitCode.CONFIG
    suite = ET.parse(junit).getroot().find("testsuite[@name='fleet']")
    assert suite is not None and suite.get("failures") == "2"  # and shared-lease-release
    case = suite.find("testcase[@name='unique-lease-database']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    for f in files:
        assert f"{f} Dhcp4.lease-database" in failure.text
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith("::error") and "fleet unique-lease-database" in line]
    # One annotation on each file involved, at the line its lease-database entry opens.
    at = next(i for i, text in enumerate(files[0].read_text().splitlines(), 1)
                if '"lease-database"' in text)
    assert [line.split(",", 2)[:2] for line in lines] == [
        [f"::error file={f}", f"line={at}"] for f in files]
    assert all(f"{files[2]} Dhcp4.lease-database" in line for line in lines)


# -- shared lease database: release, FLQ, shared-flq ---------------------------------------


def three_peers(tmp_path: Path, lease: dict[str, Any], *, extra: dict[str, Any] | None = None,
                **per_file: dict[str, Any]) -> list[Path]:
    """kea-a/b/c.conf: three HA peers (primary, standby, backup) on one lease database."""
    return [conf(tmp_path / f"kea-{n}.conf", lease, hook=ha(this, **QUIET),
                 **{**(extra or {}), **per_file.get(n, {})})
            for n, this in zip("abc", NAMES, strict=True)]


def test_a_shared_lease_database_needs_kea_2_6_2(tmp_path: Path,
                                                 nowhere: dict[str, Any]) -> None:
    files = three_peers(tmp_path, nowhere)
    doc, code = fleet(files, "--kea-version", "2.6.1")
    finding = rules(doc)["shared-lease-release"]
    assert finding["status"] == "fail" and code == ExitCode.CONFIG
    assert "with Kea 2.6.1 (--kea-version 2.6.1;" in finding["detail"]
    names_in_detail(finding, *((f, "Dhcp4.lease-database") for f in files))
    assert set(rules(doc)) == {"shared-lease-release"}

    doc, _ = fleet(files, "--expect", "22.2")  # no release known: said, not guessed
    finding = rules(doc)["shared-lease-release"]
    assert finding["status"] == "warn"
    assert "cannot know which release these files run on" in finding["detail"]

    doc, _ = fleet(files, "--kea-version", "2.6.2")
    assert doc["fleet"] == []


def test_a_postgresql_host_list_in_another_order_is_the_same_database(
    tmp_path: Path, nowhere: dict[str, Any]
) -> None:
    """libpq tries a host list in order, so ``a,b`` and ``b,a`` reach the same cluster:
    two servers written that way share its lease database; a third host is another."""
    hosts = {"a": "127.0.0.1,127.0.0.2", "b": "127.0.0.2,127.0.0.1", "c": "127.0.0.3"}
    files = [conf(tmp_path / f"kea-{n}.conf", {**nowhere, "host": hosts[n]},
                  hook=ha(this, **QUIET))
             for n, this in zip("abc", NAMES, strict=True)]
    doc, code = fleet(files, "--kea-version", "2.6.1")
    finding = rules(doc)["shared-lease-release"]
    assert finding["status"] == "fail" and code == ExitCode.CONFIG
    assert members(finding) == {(str(files[0]), "Dhcp4.lease-database"),
                                (str(files[1]), "Dhcp4.lease-database")}


def test_flq_on_a_shared_lease_database_fails(tmp_path: Path,
                                              nowhere: dict[str, Any]) -> None:
    network = {"shared-networks": [{"name": "office", "allocator": "flq",
                                    "subnet4": [{"id": 2, "subnet": "198.51.100.0/24"}]}]}
    files = three_peers(tmp_path, nowhere, extra={"allocator": "random"}, b=network)
    doc, code = fleet(files, "--kea-version", "3.0")
    finding = rules(doc)["shared-lease-flq"]
    assert finding["status"] == "fail" and code == ExitCode.CONFIG
    names_in_detail(finding, (files[1], "Dhcp4.shared-networks[0].subnet4[0]"))
    assert "198.51.100.0/24, allocator flq" in finding["detail"]
    assert (str(files[1]), "Dhcp4.shared-networks[0].subnet4[0]") in members(finding)
    assert set(rules(doc)) == {"shared-lease-flq"}

    # A subnet's own allocator wins over its shared network's.
    network["shared-networks"][0]["subnet4"][0]["allocator"] = "random"
    files = three_peers(tmp_path, nowhere, b=network)
    doc, _ = fleet(files, "--kea-version", "3.0")
    assert doc["fleet"] == []


def test_flq_for_delegated_prefixes_of_a_shared_dhcp6_lease_database_fails(
    tmp_path: Path, nowhere: dict[str, Any]
) -> None:
    def files(pd_allocator: str) -> list[Path]:
        out = []
        for n, this in zip("abc", NAMES, strict=True):
            path = tmp_path / f"kea6-{n}.conf"
            path.write_text(json.dumps({"Dhcp6": {
                "hooks-libraries": [PG_HOOK, ha(this, **QUIET)], "lease-database": nowhere,
                "pd-allocator": pd_allocator,
                "subnet6": [{"id": 1, "subnet": "2001:db8:1::/48"}]}}))
            out.append(path)
        return out

    doc, code = fleet(files("flq"), "--kea-version", "3.0")
    finding = rules(doc)["shared-lease-flq"]
    assert code == ExitCode.CONFIG
    assert "Dhcp6.subnet6[0] (2001:db8:1::/48, pd-allocator flq)" in finding["detail"]
    doc, _ = fleet(files("random"), "--kea-version", "3.0")
    assert doc["fleet"] == []


def test_sharers_must_agree_on_shared_flq_subnets(tmp_path: Path,
                                                  nowhere: dict[str, Any]) -> None:
    sflq = {"subnet4": [{"id": 1, "subnet": "192.0.2.0/24", "allocator": "shared-flq"}]}
    files = three_peers(tmp_path, nowhere, a=sflq, b=sflq)
    doc, code = fleet(files, "--kea-version", "3.2")
    finding = rules(doc)["shared-flq-agreement"]
    assert finding["status"] == "fail" and code == ExitCode.CONFIG
    assert (f"192.0.2.0/24 uses shared-flq (allocator) in {files[0]}, {files[1]} but not "
            f"in {files[2]}") in finding["detail"]
    assert (str(files[2]), "Dhcp4.subnet4[0]") in members(finding)

    doc, _ = fleet(three_peers(tmp_path, nowhere, a=sflq, b=sflq, c=sflq),
                   "--kea-version", "3.2")
    assert doc["fleet"] == []


# -- HA peers on one database ----------------------------------------------------------------


def test_ha_peers_on_one_database_should_not_send_lease_updates(
    tmp_path: Path, nowhere: dict[str, Any]
) -> None:
    files = [conf(tmp_path / "kea-a.conf", nowhere, hook=ha("server1")),
             conf(tmp_path / "kea-b.conf", nowhere, hook=ha("server2", **{"sync-leases": False})),
             conf(tmp_path / "kea-c.conf", nowhere, hook=ha("server3", **QUIET))]
    doc, code = fleet(files, "--kea-version", "2.6.2")
    finding = rules(doc)["ha-lease-updates"]
    assert finding["status"] == "warn"
    assert code == ExitCode.UNREACHABLE  # a warning: only the logins fail the run
    relationship = "Dhcp4.hooks-libraries[2].parameters.high-availability[0]"
    assert (f"{files[0]} {relationship}: send-lease-updates true, sync-leases true; "
            f"{files[1]} {relationship}: send-lease-updates true") in finding["detail"]
    assert (str(files[2]), relationship) not in members(finding)
    assert set(rules(doc)) == {"ha-lease-updates"}

    doc, _ = fleet(three_peers(tmp_path, nowhere), "--kea-version", "2.6.2")
    assert doc["fleet"] == []


# -- connections over max_connections ---------------------------------------------------------


@pytest.mark.db
def test_connections_of_every_file_over_max_connections(
    tmp_path: Path, fresh_db: FreshDatabase
) -> None:
    """max_connections read by each backend object (PostgreSQL, MariaDB, Oracle MySQL)."""
    db = fresh_db
    query = "SHOW max_connections" if db.type == "postgresql" else "SELECT @@max_connections"
    limit = int(db.server.sql(query)[0][0])
    access = {"type": db.type, "host": db.host, "port": db.port, "user": db.user,
              "password": db.password, "name": db.name}
    threads = limit // 3 + 1  # three files, one connection more per thread: over the limit

    def files(size: int) -> list[Path]:
        # memfile leases; each file's hosts on the one server: no lease database shared.
        return [conf(tmp_path / f"kea-{n}.conf", {"type": "memfile"},
                     **{"hosts-databases": [access],
                        "multi-threading": {"enable-multi-threading": True,
                                            "thread-pool-size": size}})
                for n in "abc"]

    over = files(threads)
    doc, code = fleet(over, "--kea-version", "3.0")
    finding = rules(doc)["max-connections"]
    assert finding["status"] == "fail" and code == ExitCode.CONFIG
    assert f"max_connections is {limit}" in finding["detail"]
    assert f"up to {3 * (threads + 1)} connections" in finding["detail"]
    assert members(finding) == {(str(f), "Dhcp4.hosts-databases[0]") for f in over}
    names_in_detail(finding, *((f, "Dhcp4.hosts-databases[0]") for f in over))

    doc, _ = fleet(files(2), "--kea-version", "3.0")
    assert doc["fleet"] == []
