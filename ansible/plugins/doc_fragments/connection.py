# Copyright: kea-db developers
# Mozilla Public License 2.0 (see https://mozilla.org/MPL/2.0/)
"""The connection options every keadb.kea_db module takes."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  config:
    description:
      - Kea configuration file (C(kea-dhcp4.conf), C(kea-dhcp6.conf)) whose SQL database
        entries the module acts on. The options below override the file's values.
    type: path
  backend:
    description:
      - With O(config), the entries to act on, as kea-db's C(--backend) (C(lease),
        C(hosts), C(config), C(Dhcp4), or a path such as C(Dhcp4.hosts-databases[1])).
    type: str
  db_type:
    description: Backend type (Kea's C(type)).
    type: str
    choices: [mysql, postgresql]
    aliases: [type]
  host:
    description: Server host (Kea's default is localhost).
    type: str
  port:
    description: Server port.
    type: int
  user:
    description: Database user.
    type: str
  name:
    description: Database name.
    type: str
  password:
    description:
      - Database password. Never logged, never returned. Prefer O(password_file).
    type: str
  password_file:
    description: File whose first line is the database password.
    type: path
  kea_version:
    description:
      - Kea release to compare with (C(2.6) means the newest 2.6.x). Default, as kea-db's
        default, the Kea installed on the host.
    type: str
  expect:
    description: Expected schema version (MAJOR.MINOR); overrides the release map.
    type: str
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
  read_timeout:
    description: MySQL, seconds to wait for a read.
    type: int
  write_timeout:
    description: MySQL, seconds to wait for a write.
    type: int
  tcp_user_timeout:
    description: PostgreSQL, TCP user timeout in seconds.
    type: int
  trust_anchor:
    description: CA file (or MySQL, hashed CA directory) to verify the server.
    type: path
  cert_file:
    description: Client certificate file.
    type: path
  key_file:
    description: Client private key file.
    type: path
  cipher_list:
    description: MySQL, OpenSSL cipher list.
    type: str
  ssl_mode:
    description: PostgreSQL, libpq sslmode (Kea 3.1+).
    type: str
  readonly:
    description: The backend is read-only for Kea (Kea's C(readonly)).
    type: bool
  statement_timeout:
    description: Deadline of every statement after login, in seconds.
    type: float
  server_public_key:
    description: MySQL, the server's RSA public key file for a cleartext login.
    type: path
requirements:
  - kea-db (the C(keadb_cli) package) in the Python that runs the module on the Kea host
notes:
  - Runs on the Kea host; set C(ansible_python_interpreter) to a Python with kea-db.
"""
