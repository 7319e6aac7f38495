"""kea-db: preflight checks and schema tooling for ISC Kea DHCP database backends."""

__version__ = "0.1.0.dev0"
