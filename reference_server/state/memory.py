"""In-process state: the embedded default. Nothing is shared with other processes (one gunicorn worker only)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from reference_server.control.journal import RequestJournal
from reference_server.state.base import StateStore


class MemoryStore(StateStore):
    url = "memory"
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._rules: dict[str, dict[str, Any]] = {}  # insertion order is registration order
        self._versions = itertools.count(1)
        self._version = 0

    def incr(self, name: str) -> int:
        with self._lock:
            value = self._counters[name] = self._counters.get(name, 0) + 1
            return value

    def reset_counters(self) -> None:
        with self._lock:
            self._counters.clear()

    def add_rules(self, raws: list[dict[str, Any]]) -> None:
        with self._lock:
            for index, raw in enumerate(raws):
                if raw["id"] in self._rules:
                    raise KeyError(index)
            for raw in raws:
                self._rules[raw["id"]] = raw
            self._version = next(self._versions)

    def rule_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._rules.values())

    def rules_version(self) -> int:
        return self._version

    def delete_rule(self, rule_id: str) -> bool:
        with self._lock:
            found = self._rules.pop(rule_id, None) is not None
            self._forget(rule_id)
            self._version = next(self._versions)
            return found

    def _forget(self, rule_id: str) -> None:
        for name in [n for n in self._counters if n.startswith(f"rule:{rule_id}:")]:
            del self._counters[name]

    def clear_rules(self) -> None:
        with self._lock:
            for rule_id in self._rules:
                self._forget(rule_id)
            self._rules.clear()
            self._version = next(self._versions)

    def journal(self, size: int) -> RequestJournal:
        return RequestJournal(size)
