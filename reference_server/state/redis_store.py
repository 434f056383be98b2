"""Redis-backed state, shared by every worker and host pointing at the same Redis (``--state redis://...``).

Keys live under ``llmref:<profile>:`` (``?prefix=`` in the URL changes ``llmref``): counters ``cnt:<name>``, rules
``rules`` (hash id -> JSON) with ``rule_order`` (list) and ``rules_version``, the journal ``journal`` (list of
rendered entries, trimmed to the journal size), and the rate-limit windows under ``limits:`` (kept by the ``limits``
library, see :mod:`reference_server.state.redis_limits`). Every operation is atomic in Redis (INCR, Lua), so
counts are exact across processes. Connection errors become :class:`StateStoreUnavailable` at once (no retry
loop): the request gets a 503 and the next one tries again.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from reference_server.state.base import StateStore, StateStoreUnavailable, display_url

log = logging.getLogger(__name__)
COUNTER_TTL_SECONDS = 86_400  # counters of a long-running server do not pile up forever
CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 5.0

_ADD_RULES = """
for i, id in ipairs(ARGV) do
  if i % 2 == 1 and redis.call('HEXISTS', KEYS[1], id) == 1 then return (i - 1) / 2 end
end
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
redis.call('INCR', KEYS[3])
return -1
"""

_CLEAR_PREFIX = """
local cursor = '0'
repeat
  local found = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = found[1]
  if #found[2] > 0 then redis.call('DEL', unpack(found[2])) end
until cursor == '0'
return 1
"""


def _unavailable(method: Callable) -> Callable:
    """Turn Redis errors into :class:`StateStoreUnavailable` naming the store."""

    @functools.wraps(method)
    def wrapper(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise StateStoreUnavailable(self.url, str(exc) or type(exc).__name__) from exc

    return wrapper


def split_prefix(url: str, namespace: str) -> tuple[str, str]:
    """The Redis URL without our ``prefix`` query parameter, and the key prefix ``<prefix>:<namespace>``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), "llmref")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), f"{prefix}:{namespace}"


class RedisStore(StateStore):
    shared = True

    def __init__(self, url: str, namespace: str = "default") -> None:
        redis_url, self.prefix = split_prefix(url, namespace)
        self.url = display_url(url)
        self.client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0), health_check_interval=0,
        )
        self._add_rules = self.client.register_script(_ADD_RULES)
        self._clear_prefix = self.client.register_script(_CLEAR_PREFIX)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @_unavailable
    def check(self) -> None:
        self.client.ping()

    @_unavailable
    def incr(self, name: str) -> int:
        key = self.key(f"cnt:{name}")
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, COUNTER_TTL_SECONDS)
        return int(pipe.execute()[0])

    @_unavailable
    def reset_counters(self) -> None:
        self._clear_prefix(args=[self.key("cnt:*")])

    @_unavailable
    def add_rules(self, raws: list[dict[str, Any]]) -> None:
        args: list[str] = []
        for raw in raws:
            args += [raw["id"], json.dumps(raw)]
        taken = int(self._add_rules(keys=[self.key("rules"), self.key("rule_order"), self.key("rules_version")],
                                    args=args))
        if taken >= 0:
            raise KeyError(taken)

    @_unavailable
    def rule_list(self) -> list[dict[str, Any]]:
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(self.key("rule_order"), 0, -1)
        pipe.hgetall(self.key("rules"))
        order, rules = pipe.execute()
        return [json.loads(rules[rule_id]) for rule_id in order if rule_id in rules]

    @_unavailable
    def rules_version(self) -> int:
        return int(self.client.get(self.key("rules_version")) or 0)

    @_unavailable
    def delete_rule(self, rule_id: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.key("rules"), rule_id)
        pipe.lrem(self.key("rule_order"), 0, rule_id)
        pipe.incr(self.key("rules_version"))
        found = bool(pipe.execute()[0])
        self._clear_prefix(args=[self.key(f"cnt:rule:{rule_id}:*")])
        return found

    @_unavailable
    def clear_rules(self) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.key("rules"), self.key("rule_order"))
        pipe.incr(self.key("rules_version"))
        pipe.execute()
        self._clear_prefix(args=[self.key("cnt:rule:*")])

    def journal(self, size: int) -> RedisJournal:
        return RedisJournal(self, size)

    def rate_limiter(self, snapshot: Callable[..., Any]) -> Any:
        from reference_server.state.redis_limits import RedisRateLimiter

        return RedisRateLimiter(self, snapshot)

    def close(self) -> None:
        self.client.close()


class RedisJournal:
    """The journal as a Redis list of rendered entries (rendering happens when recording: other processes read it)."""

    def __init__(self, store: RedisStore, size: int) -> None:
        self.store, self.size, self.key = store, max(1, size), store.key("journal")

    @property
    def url(self) -> str:
        return self.store.url

    def record(self, entry: dict[str, Any]) -> None:
        """Append ``entry``; with Redis away the entry is lost (logged), never the answer it records (a 503 that
        says the store is away must still reach the client)."""
        from reference_server.control.journal import render

        try:
            self.append_rendered(render(entry))
        except StateStoreUnavailable as exc:
            log.warning("journal entry not recorded: %s", exc)

    def append_rendered(self, rendered: dict[str, Any]) -> None:
        try:
            pipe = self.store.client.pipeline(transaction=False)
            pipe.rpush(self.key, json.dumps(rendered, default=str))
            pipe.ltrim(self.key, -self.size, -1)
            pipe.execute()
        except redis.RedisError as exc:
            raise StateStoreUnavailable(self.store.url, str(exc)) from exc

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        try:
            raw = self.store.client.lrange(self.key, -limit if limit else 0, -1)
        except redis.RedisError as exc:
            raise StateStoreUnavailable(self.store.url, str(exc)) from exc
        return [json.loads(item) for item in raw]

    def clear(self) -> None:
        try:
            self.store.client.delete(self.key)
        except redis.RedisError as exc:
            raise StateStoreUnavailable(self.store.url, str(exc)) from exc

    def __len__(self) -> int:
        try:
            return int(self.store.client.llen(self.key))
        except redis.RedisError as exc:
            raise StateStoreUnavailable(self.store.url, str(exc)) from exc
