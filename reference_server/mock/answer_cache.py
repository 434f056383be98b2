"""Memo of finished answers: the server is deterministic (same request, same bytes), so a repeated request reuses
the body or the stream frames it got last time instead of validating, generating and encoding again.

Only what a request's bytes decide is cached: the route, the raw JSON body, its Content-Type and ``X-Mock-Provider``. Everything that
belongs to one request still happens for each one: authentication, the rate-limit counters and headers, the token
charge (``limits.admit`` with the cached model and prompt size), X-Mock-* controls and stream pacing, the journal,
``x-request-id``. A body that failed validation is never stored, so its error is produced again. Apps serving faults
do not cache at all: some faults are random on purpose (PARAMS-007 appends a uuid) and every fault must act on every
request it applies to. Nor do apps that trace faults: a replayed answer asks no fault, so its trace would be empty.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference_server.context import RequestContext

MAX_ENTRIES = 512
MAX_TOTAL_BYTES = 32 * 1024 * 1024
# Larger answers (big embedding batches, n=128) are rare and cheap to rebuild relative to their size: not kept.
MAX_ANSWER_BYTES = 1024 * 1024
MAX_KEY_BYTES = 64 * 1024

CacheKey = tuple[str, str, str | None, str | None, bytes]


@dataclass(slots=True)
class CachedAnswer:
    """What a repeat of the request needs: the model and prompt size to charge, and the body or the SSE frames.

    Never changed once built (the cache shares it between threads); not ``frozen`` because a frozen dataclass
    sets each field through ``object.__setattr__``, and every first-seen request builds one.
    """

    model_id: str
    prompt_tokens: int
    body: bytes = b""
    frames: tuple[bytes, ...] = ()
    size: int = field(init=False, repr=False)  # bytes kept: asked when stored and again when evicted

    def __post_init__(self) -> None:
        self.size = len(self.body) + sum(map(len, self.frames)) if self.frames else len(self.body)


class AnswerCache:
    """Bounded, thread-safe LRU of answers (by entry count and by total bytes)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_TOTAL_BYTES) -> None:
        self._entries: OrderedDict[CacheKey, CachedAnswer] = OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> CachedAnswer | None:
        with self._lock:
            answer = self._entries.get(key)
            if answer is not None:
                self._entries.move_to_end(key)
            return answer

    def put(self, key: CacheKey, answer: CachedAnswer) -> None:
        """Keep ``answer`` (unless it is too large), evicting the least recently used beyond the bounds."""
        size = answer.size
        if size > MAX_ANSWER_BYTES:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = answer
            self._bytes += size
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def request_key(ctx: RequestContext, surface: str) -> CacheKey | None:
    """The cache key of the request, or None when its answer must not be cached or reused.

    The Content-Type is part of the key as sent: only answers are stored, so a key whose type is not JSON never
    finds one (its request answers 415 each time), without parsing the header on every request.
    """
    req = ctx.request
    if ctx.server.config.fault_questions_matter() or ctx.script is not None:
        return None  # a request a scripted rule answers is neither served from nor stored in the cache
    raw = req.get_data(cache=True)
    if len(raw) > MAX_KEY_BYTES:
        return None
    environ = req.environ
    return surface, req.path, environ.get("HTTP_X_MOCK_PROVIDER"), environ.get("CONTENT_TYPE"), raw


def lookup(ctx: RequestContext, key: CacheKey | None) -> CachedAnswer | None:
    """The cached answer for ``key`` (None for no key or a miss)."""
    return ctx.server.answers.get(key) if key is not None else None


def store(ctx: RequestContext, key: CacheKey | None, answer: CachedAnswer) -> None:
    if key is not None:
        ctx.server.answers.put(key, answer)


def recording(frames: Iterator[bytes], done: Callable[[tuple[bytes, ...]], None]) -> Iterator[bytes]:
    """Pass ``frames`` through; hand them all to ``done`` once the last one was produced (not on a cut stream)."""
    seen: list[bytes] = []
    for frame in frames:
        seen.append(frame)
        yield frame
    done(tuple(seen))
