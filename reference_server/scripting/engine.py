"""The scripting engine: registered rules (kept in the state store), and which rule answers a request.

Rules are tried in registration order; the first whose conditions hold answers. ``nth`` counts, per rule, the
requests that met its other conditions and reached it (no earlier rule answered them); ``times`` counts the requests
the rule answered, and a used-up rule lets the request fall through to the next one. The counters live in the state
store, so they are exact across gunicorn workers and hosts sharing a Redis. Each process keeps its parsed rules
and re-reads them when the store's rules version changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from reference_server.scripting.matching import RequestFacts, matches
from reference_server.scripting.rules import Rule, RuleError, ScriptedResponse, parse_rule, parse_rules


@dataclass(frozen=True)
class Selection:
    """The rule that answers a request, the answer it gives, and which of its answers this is (1-based)."""

    rule: Rule
    response: ScriptedResponse
    served: int


class ScriptEngine:
    """Rules and counters over a state store (``reference_server.state``)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: tuple[int, list[Rule]] = (-1, [])

    def add(self, data: Any) -> list[Rule]:
        """Parse and register ``{"rules": [...]}`` (or a list); raises :class:`RuleError` naming index and field."""
        rules = parse_rules(data)
        try:
            self.store.add_rules([rule.raw for rule in rules])
        except KeyError as taken:
            index = taken.args[0]
            raise RuleError(index, "id", f"a rule with id {rules[index].id!r} is already registered") from None
        return rules

    def rules(self) -> list[Rule]:
        """The registered rules, parsed (cached until the store's rules version changes)."""
        version = self.store.rules_version()
        cached_version, cached = self._cache
        if version == cached_version:
            return cached
        rules = [parse_rule(raw, index) for index, raw in enumerate(self.store.rule_list())]
        with self._lock:
            self._cache = (version, rules)
        return rules

    def listing(self) -> list[dict[str, Any]]:
        return [rule.raw for rule in self.rules()]

    def delete(self, rule_id: str) -> bool:
        return self.store.delete_rule(rule_id)

    def clear(self) -> None:
        self.store.clear_rules()

    def select(self, facts: RequestFacts) -> Selection | None:
        """The rule answering a request with ``facts`` (None: answer normally), counting towards nth and times."""
        for rule in self.rules():
            if not matches(rule.match, facts):
                continue
            if rule.match.nth is not None and self.store.incr(f"rule:{rule.id}:seen") != rule.match.nth:
                continue
            served = self.store.incr(f"rule:{rule.id}:served")
            if rule.times is not None and served > rule.times:
                continue
            return Selection(rule, rule.response_for(served), served)
        return None

    def attempt(self, nonce: str) -> int:
        """1-based count of the requests that carried ``nonce`` (this one included)."""
        return self.store.incr(f"nonce:{nonce}")
