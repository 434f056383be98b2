"""Rate-limit windows and budgets in Redis, through the ``limits`` library (fixed windows, atomic in Redis).

Same interface and header semantics as the in-process ``limits.RateLimiter``: a key's minute window opens with its
first request and lasts 60 s (``limits``' fixed window: the counter's expiry is set when it is created); the token
budget and the daily count are windows of their own; the wallet is a running total. ``hit`` counts a request and
admits it while the count stays within the limit (a refused request leaves remaining at 0, as in memory);
``charge`` applies daily limit, wallet and token budget in that order and takes back what it added when one
refuses, so a refused request spends nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from reference_server.state.base import StateStoreUnavailable


class RedisRateLimiter:
    """``hit``/``charge``/``reset`` of ``limits.RateLimiter`` over a :class:`RedisStore`."""

    def __init__(self, store: Any, snapshot: Callable[..., Any]) -> None:
        self.store, self.snapshot = store, snapshot
        self.storage = RedisStorage("redis://", connection_pool=store.client.connection_pool,
                                    key_prefix=store.key("limits"))
        self.windows = FixedWindowRateLimiter(self.storage)
        self.wall_clock: Callable[[], float] = time.time
        self.clock: Callable[[], float] = time.monotonic  # unused: Redis expiries keep the time

    def _state(self, method: Callable, *args: Any) -> Any:
        try:
            return method(*args)
        except redis.RedisError as exc:
            raise StateStoreUnavailable(self.store.url, str(exc) or type(exc).__name__) from exc

    def _snap(self, key: str, policy: Any, requests_item: Any, tokens_item: Any) -> Any:
        # One round trip for the three reads (the keys as ``limits`` names them).
        requests_key = self.storage.prefixed_key(requests_item.key_for("req", key))
        pipe = self.store.client.pipeline(transaction=False)
        pipe.get(requests_key)
        pipe.get(self.storage.prefixed_key(tokens_item.key_for("tok", key)))
        pipe.pttl(requests_key)
        used_raw, tokens_raw, ttl_ms = pipe.execute()
        used, tokens = int(used_raw or 0), int(tokens_raw or 0)
        reset = ttl_ms / 1000 if used and ttl_ms > 0 else 60.0
        return self.snapshot(
            limit_requests=policy.requests_per_minute,
            remaining_requests=max(0, policy.requests_per_minute - used),
            limit_tokens=policy.tokens_per_minute,
            remaining_tokens=max(0, policy.tokens_per_minute - tokens),
            reset_seconds=max(0.0, min(60.0, reset)),
        )

    @staticmethod
    def _items(policy: Any) -> tuple[Any, Any]:
        return RateLimitItemPerMinute(policy.requests_per_minute), RateLimitItemPerMinute(policy.tokens_per_minute)

    def hit(self, key: str, policy: Any) -> tuple[bool, Any]:
        return self._state(self._hit, key, policy)

    def _hit(self, key: str, policy: Any) -> tuple[bool, Any]:
        requests_item, tokens_item = self._items(policy)
        allowed = self.windows.hit(requests_item, "req", key)
        return allowed, self._snap(key, policy, requests_item, tokens_item)

    def charge(self, key: str, policy: Any, tokens: int) -> tuple[str | None, Any]:
        return self._state(self._charge, key, policy, tokens)

    def _charge(self, key: str, policy: Any, tokens: int) -> tuple[str | None, Any]:
        requests_item, tokens_item = self._items(policy)
        undo: list[Callable[[], Any]] = []
        reason = None
        if policy.daily_requests is not None:
            day = RateLimitItemPerDay(max(1, policy.daily_requests))
            day_key = day.key_for("day", key)
            allowed = self.windows.hit(day, "day", key) and policy.daily_requests > 0
            undo.append(lambda: self.storage.incr(day_key, day.get_expiry(), amount=-1))
            if not allowed:
                reason = "daily"
        if reason is None and policy.balance is not None:
            spent_key = self.storage.prefixed_key(f"spent/{key}")
            cost = policy.cost_per_request
            spent = float(self.store.client.incrbyfloat(spent_key, cost))
            undo.append(lambda: self.store.client.incrbyfloat(spent_key, -cost))
            if policy.balance - (spent - cost) <= 0:
                reason = "balance"
        if reason is None:
            tok_key = tokens_item.key_for("tok", key)
            if not self.windows.hit(tokens_item, "tok", key, cost=max(0, tokens)):
                reason = "tokens"
                undo.append(lambda: self.storage.incr(tok_key, tokens_item.get_expiry(), amount=-max(0, tokens)))
        if reason is not None:
            for step in reversed(undo):
                step()
        return reason, self._snap(key, policy, requests_item, tokens_item)

    def reset(self) -> None:
        self._state(self.storage.reset)
