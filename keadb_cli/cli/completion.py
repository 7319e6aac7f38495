"""click ``shell_complete`` callbacks: the candidates come from
:mod:`keadb_cli.commands.completion`; this only wraps them as click's items."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CompleteFn = Callable[[Any, Any, str], list[Any]]


def _wrap(name: str) -> CompleteFn:
    def complete(ctx: Any, param: Any, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        from keadb_cli.commands import completion

        pairs: list[tuple[str, str]] = getattr(completion, name)(incomplete)
        return [CompletionItem(value, help=text or None) for value, text in pairs]

    return complete


kea_version = _wrap("kea_version_candidates")
backend = _wrap("backend_candidates")
db_type = _wrap("type_candidates")
