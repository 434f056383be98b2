"""The state-store interface: what the server keeps between requests, in one place that can be shared.

Rate-limit windows and token budgets, the X-Mock-Fail-Times and rule counters, the request journal and the
scripted rules live in a :class:`StateStore`. ``memory`` (the default, no set-up) keeps them in this process;
``redis://...`` (``--state`` / ``REFERENCE_SERVER_STATE``) keeps them in Redis, so several gunicorn workers and
several hosts count against the same limits, see the same journal and follow the same scripts.

Any store operation may raise :class:`StateStoreUnavailable`; the app answers it with a 503 in the OpenAI envelope
naming the state store (and the next request tries again, so the server recovers when the store comes back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit


class StateStoreUnavailable(RuntimeError):
    """The state store cannot be reached; ``url`` is its address without credentials."""

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = url, reason
        super().__init__(f"state store {url} unavailable: {reason}")


class Journal(Protocol):
    """The request journal (``GET /_mock/requests``); ``record`` takes an entry the journal module renders."""

    def record(self, entry: dict[str, Any]) -> None: ...
    def entries(self, limit: int | None = None) -> list[dict[str, Any]]: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...


def display_url(url: str) -> str:
    """``url`` without its password (``redis://:secret@h:6379/0`` -> ``redis://***@h:6379/0``)."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


class StateStore:
    """What every store offers. Counters are named strings; rules are the normalised JSON of ``scripting.rules``."""

    url: str = "memory"
    shared: bool = False  # True when other processes see the same state

    # counters (X-Mock-Fail-Times attempts, rule nth/times counts, nonce attempts)
    def incr(self, name: str) -> int:
        """Add one to counter ``name`` and return its new value (1 for the first time), atomically."""
        raise NotImplementedError

    def reset_counters(self) -> None:
        raise NotImplementedError

    # scripted rules, in registration order
    def add_rules(self, raws: list[dict[str, Any]]) -> None:
        """Append rules; raises ``KeyError(index)`` (index into ``raws``) for an id already registered."""
        raise NotImplementedError

    def rule_list(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def rules_version(self) -> int:
        """A number that changes whenever the rules change (lets each process cache its parsed rules)."""
        raise NotImplementedError

    def delete_rule(self, rule_id: str) -> bool:
        raise NotImplementedError

    def clear_rules(self) -> None:
        raise NotImplementedError

    # journal and rate limits
    def journal(self, size: int) -> Journal:
        raise NotImplementedError

    def rate_limiter(self, snapshot: Callable[..., Any]) -> Any | None:
        """A rate limiter sharing this store's state, or None for the in-process default (``limits.RateLimiter``)."""
        return None

    def check(self) -> None:
        """Raise :class:`StateStoreUnavailable` when the store cannot be reached (start-up check)."""

    def close(self) -> None:
        """Release connections."""
