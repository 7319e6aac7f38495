"""``kea-db demo``: the whole job on a throw-away local PostgreSQL, then nothing left behind.

Steps: start a local server, create a database, ``init`` it for a Kea release (by default
the newest stable one), run ``check-version`` against that release (MATCH) and the stable
release before it (AHEAD: the older Kea refuses the newer schema), ``test-tls`` as both
would open the session, stop the server and remove its directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keadb_cli.commands.check_version import VersionResult, check_version
from keadb_cli.commands.init import InitResult, init_one
from keadb_cli.commands.settings import Target
from keadb_cli.db.plan import plan_for
from keadb_cli.db.session import open_session
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import newest_stable, parse_release, previous_stable

DEMO_DATABASE = "kea"


@dataclass
class DemoReport:
    server: str
    release: str
    init: InitResult | None = None
    checks: list[tuple[Target, VersionResult]] = field(default_factory=list)
    tls: list[Any] = field(default_factory=list)  # tls_check.TlsResult per Kea release
    removed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "kea_version": self.release,
            "init": self.init.to_json() if self.init else None,
            "checks": [
                {"target": t.to_json(), **r.to_json()} for t, r in self.checks
            ],
            "tls": [r.to_json() for r in self.tls],
            "removed": self.removed,
        }


def run_demo(
    kea_version: str | None = None, progress: Callable[[str], None] | None = None
) -> DemoReport:
    """Run the demo (``kea_version`` None: the newest stable release); raises SandboxError
    when no local PostgreSQL can be started."""
    from keadb_cli.commands.sandbox import local_postgres

    say = progress or (lambda _line: None)
    release = parse_release(kea_version) if kea_version else newest_stable()
    older = previous_stable(release)
    target = Target(release=release, expect=None, source=f"Kea {release}")
    with local_postgres() as pg:
        say(f"started a throw-away PostgreSQL on 127.0.0.1:{pg.port} in {pg.directory}")
        admin = DbAccess(type="postgresql", host=pg.host, port=pg.port, user=pg.superuser,
                         name="postgres")
        session = open_session(plan_for(admin, env={}))
        try:
            session.query(f'CREATE DATABASE "{DEMO_DATABASE}"')
        finally:
            session.close()
        access = DbAccess(type="postgresql", host=pg.host, port=pg.port, user=pg.superuser,
                          name=DEMO_DATABASE, ssl_mode="disable")
        report = DemoReport(server=f"PostgreSQL 127.0.0.1:{pg.port}/{DEMO_DATABASE}",
                            release=str(release))
        say(f"kea-db init --kea-version {release}")
        report.init = init_one(access, target, progress=progress, env={})
        for rel in (release, older):
            check_target = Target(release=rel, expect=None, source=f"Kea {rel}")
            say(f"kea-db check-version --kea-version {rel}")
            report.checks.append(
                (check_target, check_version(access, check_target.schema_for("postgresql"),
                                             env={}))
            )
        from keadb_cli.commands.test_tls.check import Policy
        from keadb_cli.commands.test_tls.check import run as test_tls

        tls_access = dataclasses.replace(access, ssl_mode=None, trust_anchor=str(pg.ca_file))
        for rel in (older, release):
            say(f"kea-db test-tls --trust-anchor ca.pem --kea-version {rel}")
            report.tls.append(test_tls(tls_access, rel, Policy(), env={}))
        say("stopping the server and removing its directory")
    report.removed = not pg.directory.exists()
    return report
