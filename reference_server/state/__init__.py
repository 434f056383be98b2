"""Where the server keeps state between requests: :func:`open_store` picks memory or Redis from a URL.

See :mod:`reference_server.state.base` for the interface, ``memory.py`` and ``redis_store.py`` for the two stores.
The Redis modules are imported only when a ``redis://`` URL is given, so the default costs no import.
"""

from __future__ import annotations

from reference_server.state.base import StateStore, StateStoreUnavailable, display_url
from reference_server.state.memory import MemoryStore

SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(url: str | None, namespace: str = "default", *, check: bool = True) -> StateStore:
    """``memory`` (or None/empty) -> :class:`MemoryStore`; ``redis://host:port/db`` -> a Redis store.

    ``check``: ping a Redis store now, so an unreachable one is one clear error naming its URL at start-up.
    Raises ``ValueError`` for an unknown scheme and :class:`StateStoreUnavailable` for an unreachable store.
    """
    if not url or url == "memory":
        return MemoryStore()
    if not url.startswith(SCHEMES):
        raise ValueError(f"unknown state store {display_url(url)!r}: use 'memory' or redis://host:port/db")
    try:
        from reference_server.state.redis_store import RedisStore
    except ImportError as exc:  # the optional dependencies of the redis extra
        raise ValueError(f"--state {display_url(url)} needs the Redis extra ({exc.name} is missing): "
                         "pip install 'llm-gateway-conformance[redis]'") from None

    store = RedisStore(url, namespace)
    if check:
        try:
            store.check()
        except StateStoreUnavailable as exc:
            store.close()
            raise StateStoreUnavailable(exc.url, f"cannot connect ({exc.reason})") from None
    return store


__all__ = ["MemoryStore", "StateStore", "StateStoreUnavailable", "open_store", "display_url"]
