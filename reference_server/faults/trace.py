"""Fault tracing: which faults each request asked about, so a negative-control run can skip what a fault cannot touch.

With ``ServerConfig(trace_faults=True)`` every ``config.fault(X)`` call records ``X`` (active or not) into the trace
of the request being served. The server is deterministic, so a request whose trace lacks ``X`` answers the same
bytes under ``--gw-server-fault X`` as on a clean server, and a conformance case whose requests all lack ``X`` keeps
its clean verdict: the negative-control matrix reruns only the cases that consulted the fault (tests/proof).

What a trace holds:

- the requirement IDs ``fault()`` was asked about while the request was served, streamed body included: the trace
  is thread-local because a streamed body is generated after the view returned, in the same thread;
- what it inherited from earlier requests through shared state (``couple``): the rate limiter's counters and the
  X-Mock-Fail-Times attempt counts make one request's answer depend on others, so a decision read from that state
  carries the traces of the requests that wrote it;
- consults made outside any request (app creation) go to ``global_consults``: they may affect every request.

Reading a trace copies the live set: a stream may still be adding to it.
"""

from __future__ import annotations

import threading
from collections import deque

# Requests remembered (by start order and by x-request-id); an older one reads as unknown, never as "consulted
# nothing". A full conformance run makes a few hundred requests.
DEFAULT_RETAIN = 100_000

# Shared-state channel of the requests that never reached the rate limiter with a key (refused by auth, open
# paths): under a fault such a request might be admitted and counted against any key.
UNKEYED = ("limits", None)


class FaultTrace:
    """Per-request sets of consulted fault IDs, found by x-request-id or by start order."""

    def __init__(self, retain: int = DEFAULT_RETAIN) -> None:
        self.global_consults: set[str] = set()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._started: deque[set[str]] = deque(maxlen=retain)
        self._started_total = 0
        self._by_id: dict[str, set[str]] = {}
        self._ids: deque[str] = deque()
        self._retain = retain
        self._channels: dict[object, list[set[str]]] = {}

    # -- recording (server side) ------------------------------------------------------------------------------
    def consult(self, requirement: str) -> None:
        """``fault(requirement)`` was asked: record it in the current request's trace (global outside requests)."""
        current = getattr(self._local, "consults", None)
        (self.global_consults if current is None else current).add(requirement)

    def begin_request(self, _ctx: object = None) -> None:
        """Start the trace of the request this thread serves now (the app's first before step; the step's request
        context is not needed: the trace is per thread).

        Returns None: a before step that returns a value would become the response.
        """
        consults: set[str] = set()
        self._local.consults = consults
        with self._lock:
            self._started.append(consults)
            self._started_total += 1

    def current(self) -> set[str] | None:
        """The live trace of the request this thread serves (None outside requests)."""
        return getattr(self._local, "consults", None)

    def link(self, request_id: str) -> None:
        """Name the current trace by the ``x-request-id`` just given to its response."""
        consults = self.current()
        if consults is None:
            return
        with self._lock:
            if request_id not in self._by_id:
                self._ids.append(request_id)
                if len(self._ids) > self._retain:
                    self._by_id.pop(self._ids.popleft(), None)
            self._by_id[request_id] = consults

    def couple(self, channel: object, *, inherit: bool, also: tuple[object, ...] = ()) -> None:
        """The current request writes shared state ``channel``; with ``inherit`` its answer also read that state.

        Reading takes the union of every earlier writer's trace (and of the ``also`` channels), as it is now: a
        writer still streaming keeps adding, which can only widen the result.
        """
        consults = self.current()
        if consults is None:
            return
        with self._lock:
            writers = self._channels.setdefault(channel, [])
            sources = [s for name in (channel, *also) for s in self._channels.get(name, ())] if inherit else []
            if not any(w is consults for w in writers[-1:]):
                writers.append(consults)
        for source in sources:
            if source is not consults:
                consults.update(source.copy())

    def inherit_everything(self) -> None:
        """The current answer shows earlier requests (the request journal): it depends on all of them."""
        consults = self.current()
        if consults is None:
            return
        with self._lock:
            started = list(self._started)
        for source in started:
            if source is not consults:
                consults.update(source.copy())
        consults.update(self.global_consults)

    # -- reading (the conformance plugin, the journal) --------------------------------------------------------
    def mark(self) -> int:
        """A position in the sequence of started requests, for ``consulted_since``."""
        with self._lock:
            return self._started_total

    def consulted_since(self, mark: int) -> set[str] | None:
        """Union of the traces of every request started since ``mark``; None when some are no longer retained."""
        with self._lock:
            count = self._started_total - mark
            if count > len(self._started):
                return None
            recent = list(self._started)[len(self._started) - count:] if count else []
        out: set[str] = set()
        for consults in recent:
            out |= consults.copy()
        return out

    def consulted_by(self, request_id: str) -> set[str] | None:
        """The trace of the request answered with this ``x-request-id``; None when unknown to this server."""
        with self._lock:
            consults = self._by_id.get(request_id)
        return None if consults is None else consults.copy()
