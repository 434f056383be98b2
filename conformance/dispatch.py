"""The exchange store's scheduling: a pool that starts the highest-priority job first under a limit that a 429
lowers (``Dispatcher``), and the priority of a planned exchange, the longest chain of sends waiting behind it
(``chain_lengths``). Knows jobs and ``Entry`` dependencies, nothing of HTTP."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conformance.exchanges import Entry


class Dispatcher:
    """Runs jobs on a pool of ``cap`` threads, the highest priority first (then first come), at most ``limit`` at
    once. The limit halves on ``congested()`` (a 429 the target asked to be retried after), at most once per round
    (``limit`` answers since the last cut: the 429s of one burst are one signal, as TCP takes the losses of one
    window), and grows by ``1/limit`` per ``answered()``: back to the cap after a few rounds without a 429."""

    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self.limit = float(self.cap)
        self._since_cut = self.cap  # answers since the limit was last halved (the first 429 halves it)
        self._pool = ThreadPoolExecutor(self.cap, thread_name_prefix="conformance-exchange")
        self._heap: list[tuple[int, int, Callable[[], Any]]] = []
        self._order = itertools.count()
        self._running = 0
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, priority: int, job: Callable[[], Any]) -> None:
        with self._lock:
            heapq.heappush(self._heap, (-priority, next(self._order), job))
            ready = self._take()
        self._start(ready)

    def congested(self) -> None:
        with self._lock:
            if self._since_cut >= int(self.limit):
                self.limit = max(1.0, self.limit / 2)
                self._since_cut = 0

    def answered(self) -> None:
        with self._lock:
            self._since_cut += 1
            self.limit = min(float(self.cap), self.limit + 1 / self.limit)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._heap.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _take(self) -> list[Callable[[], Any]]:
        """The jobs that may start now (the lock held)."""
        ready = []
        while self._heap and not self._closed and self._running < max(1, int(self.limit)):
            ready.append(heapq.heappop(self._heap)[2])
            self._running += 1
        return ready

    def _start(self, jobs: list[Callable[[], Any]]) -> None:
        for job in jobs:
            self._pool.submit(self._run, job)

    def _run(self, job: Callable[[], Any]) -> None:
        try:
            job()
        finally:
            with self._lock:
                self._running -= 1
                ready = self._take()
            self._start(ready)


def chain_lengths(entries: list[Entry]) -> dict[str, int]:
    """Each entry's longest chain of sends, itself included, through the entries that need it: how many exchange
    latencies the run waits after starting it. An entry sending in order counts two (its length is known only
    once it is built)."""
    dependents: dict[str, list[Entry]] = {}
    for entry in entries:
        for dep in entry.needs:
            dependents.setdefault(dep.key, []).append(entry)
    lengths: dict[str, int] = {}

    def length(entry: Entry) -> int:
        if entry.key not in lengths:
            lengths[entry.key] = 1  # a cycle cannot be declared (needs= takes declared entries), but stay finite
            below = max((length(d) for d in dependents.get(entry.key, ())), default=0)
            lengths[entry.key] = (2 if entry.sequential else 1) + below
        return lengths[entry.key]

    for entry in entries:
        length(entry)
    return lengths
