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


def backend(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """``--backend``: also the entry paths of a ``--config`` file given before it (click
    has parsed the words before the cursor into ``ctx.params``)."""
    from click.shell_completion import CompletionItem

    from keadb_cli.commands.completion import backend_candidates

    params = ctx.params if ctx is not None else {}
    given = params.get("configs") or params.get("config") or ()
    files = [given] if isinstance(given, str) else [f for f in given if isinstance(f, str)]
    return [CompletionItem(value, help=text or None)
            for value, text in backend_candidates(incomplete, files)]


kea_version = _wrap("kea_version_candidates")
db_type = _wrap("type_candidates")
