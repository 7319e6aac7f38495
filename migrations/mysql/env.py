"""kea-db runs these revisions itself (keadb_cli.schema.migrate), never through ``alembic upgrade``.

Kea's ``schema_version`` table is the only version record a Kea database may hold, and the
alembic command would add an ``alembic_version`` table. Use ``kea-db init`` or
:func:`keadb_cli.schema.migrate.upgrade` / :func:`keadb_cli.schema.migrate.offline_sql` instead.
"""

from alembic.util import CommandError

raise CommandError(
    "these Kea schema revisions are applied by kea-db (keadb_cli.schema.migrate), "
    "not by the alembic command: it would add an alembic_version table to a Kea database"
)
