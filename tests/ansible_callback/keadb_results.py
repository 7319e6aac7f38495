"""An Ansible callback for tests/test_ansible.py: every task's result (as a registered
variable holds it), keyed by task name, written as JSON to $KEADB_RESULTS at the end."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "keadb_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, Any] = {}

    def _keep(self, result: Any, failed: bool) -> None:
        self.results[result._task.get_name()] = {**result._result, "failed": failed}

    def v2_runner_on_ok(self, result: Any) -> None:
        self._keep(result, False)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._keep(result, True)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        with open(os.environ["KEADB_RESULTS"], "w", encoding="utf-8") as out:
            json.dump(self.results, out, default=str)
