"""Real Kea (issue 4): Debian's kea-dhcp4 2.2.0 on databases that kea-db built.

What is proven, on both backends:

- ``kea-db init --kea-version 2.2`` builds a database that Kea 2.2.0 starts on, and
  kea-dhcp4 then answers DHCPv4 exchanges from ``perfdhcp``; every lease perfdhcp was
  acknowledged is the row Kea wrote to ``lease4``.
- MySQL goes over TLS with Kea's own ``trust-anchor`` / ``cert-file`` / ``key-file``: the
  server requires secure transport and the user ``REQUIRE X509``. Debian's Kea 2.2.0 is built
  without TLS for PostgreSQL (TLS keys there stop it: "built with this feature disabled"), so
  its TLS comes from libpq's environment (``PGSSLMODE=verify-full``, ``PGSSLROOTCERT``,
  ``PGSSLCERT``, ``PGSSLKEY``) against a server that accepts TLS only and a user that must
  show a client certificate.
- With ``schema_version`` changed (major down, major up, minor up), kea-dhcp4 refuses to start,
  and ``kea-db check-version`` (reading the very configuration file Kea was given) says BEHIND
  or AHEAD, with the same found/expected versions as Kea's own error message.

The machinery (network namespace and veth link, perfdhcp, kea-dhcp4 runs, kea-db calls) is
in ``real_kea.py``, shared with ``test_real_kea_releases.py`` (Kea 2.6 and 3.0).
"""

from __future__ import annotations

import re

import pytest
from real_kea import (
    CHANGED_SCHEMA,
    CHANGED_SCHEMA_IDS,
    Backend,
    DhcpLink,
    Kea,
    dhcp_link,
    kea,
    kea_tools,
    make_backend,
    prove_changed_schema_refused,
    prove_serves_dhcp,
)

pytestmark = [pytest.mark.kea, pytest.mark.db]

__all__ = ["dhcp_link", "kea", "kea_tools"]  # fixtures

# Kea 2.2's schema versions (what kea-db init --kea-version 2.2 builds).
SCHEMA = {"mysql": "14.0", "postgresql": "13.0"}


@pytest.fixture(params=["mariadb", "mysql", "postgresql"])
def backend(request: pytest.FixtureRequest, kea_tools: None) -> Backend:
    """A kea-db-built Kea 2.2 database on a server that accepts TLS sessions only, owned by
    a user that must show the test client certificate."""
    return make_backend(request, request.param, "2.2", SCHEMA)


def test_kea_serves_dhcp_from_kea_db_database(
    backend: Backend, dhcp_link: DhcpLink, kea: Kea
) -> None:
    prove_serves_dhcp(backend, dhcp_link, kea)


@pytest.mark.parametrize(("column", "delta", "verdict", "exit_code"), CHANGED_SCHEMA,
                         ids=CHANGED_SCHEMA_IDS)
def test_kea_and_check_version_agree_on_changed_schema(
    backend: Backend, kea: Kea, column: str, delta: int, verdict: str, exit_code: int
) -> None:
    prove_changed_schema_refused(backend, kea, column, delta, verdict, exit_code)


def test_kea_refused_without_the_client_certificate(backend: Backend, kea: Kea) -> None:
    """The TLS settings are what lets Kea in: without the client certificate it is refused,
    so the successful runs above really used them."""
    entry = backend.lease_database()
    entry.pop("cert-file", None)
    entry.pop("key-file", None)
    config = kea.write_config(backend, None, "nocert", lease_database=entry)
    # PostgreSQL: libpq without PGSSLCERT / PGSSLKEY (and HOME has no ~/.postgresql).
    run = kea.start(config, backend, without_env=("PGSSLCERT", "PGSSLKEY"))
    assert run.wait_exit() != 0, run.tail()
    text = run.text()
    assert "DHCP4_INIT_FAIL" in text and "Unable to open database" in text, run.tail()
    refusal = {"mysql": r"Access denied for user",
               "postgresql": r"requires a valid client certificate"}[backend.type]
    assert re.search(refusal, text), run.tail()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_kea22_postgresql_refuses_tls_keys(backend: Backend, kea: Kea) -> None:
    """Why PostgreSQL's TLS comes from libpq's environment: Debian's Kea 2.2.0 is built
    without TLS support for PostgreSQL and refuses the keys."""
    entry = backend.lease_database()
    entry.update(backend.tls_keys())
    config = kea.write_config(backend, None, "pgtls", lease_database=entry)
    run = kea.start(config, backend)
    assert run.wait_exit() != 0, run.tail()
    assert "built with this feature disabled" in run.text(), run.tail()
