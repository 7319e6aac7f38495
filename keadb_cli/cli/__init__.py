"""The command-line layer: click declarations, rendering, the exit-code boundary."""

from keadb_cli.cli.main import cli, main

__all__ = ["cli", "main"]
