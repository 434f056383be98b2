"""The exchange store: sends the run's plan of declared exchanges concurrently and hands out their recordings.

Unless the target is known to answer (the preflight passed, or it is the embedded server), the first planned
exchange goes alone: a target that does not answer then costs one timeout, not one per worker thread. The rest go
under the cap (``--gw-concurrency``), longest chain first: an entry that others wait for (``needs``) or that sends
in order is started before the single exchanges, so the run's critical path starts at once. An entry is launched
from the callback of its last dependency, so no pool thread ever waits for another task. A 429 of an exchange that
does not ask for one is retried after its Retry-After (at most ``MAX_RETRY_AFTER_S`` each, ``MAX_429_RETRIES``
times), and halves the number of exchanges in flight (once per burst), which grows back by one per round of
answers (additive increase, multiplicative decrease, as TCP does: ``conformance.dispatch``); every attempt stays in
the transcript. What is declared is in ``conformance.exchanges``.

Over 400 lines: the case side (``fetch``, ``adhoc``, ``shared``, ``settle``) and the sending side (the plan, the
dependencies, one send per planned content, the 429 back-off, sandwich scripts) share one lock and one table of
futures; split in two, each half would reach into the other's state.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import httpx

from conformance.client import Exchange, GatewayClient, HarnessError
from conformance.dispatch import Dispatcher, chain_lengths
from conformance.exchanges import (
    DEFAULT_CONCURRENCY,
    Call,
    CallResult,
    Entry,
    PlanContext,
    Recorded,
    Spec,
)

MAX_429_RETRIES = 2
MAX_RETRY_AFTER_S = 30.0


# -- the store ---------------------------------------------------------------------------------------------------
class ExchangeStore:
    """Sends each declared exchange once per process, concurrently under ``concurrency``, and records it."""

    def __init__(self, context: PlanContext, make_client: Callable[[str | None], GatewayClient], wire: Any,
                 attach: Callable[[Any, list[Exchange]], None], *, concurrency: int = DEFAULT_CONCURRENCY,
                 plan: Callable[[Any], list[Entry]] = lambda unit: [],
                 read_limits: tuple[float, float] = (60.0, 30.0),
                 make_transport: Callable[[str | None], Any] | None = None, plan_by_module: bool = False,
                 sandwich: Any = None, probe_first: bool = True) -> None:
        self.context, self.wire, self._attach = context, wire, attach
        self.probe_first = probe_first  # send the first exchange alone (False: the target is known to answer)
        self.sandwich = sandwich  # sandwich mode: sends the specs that carry a script (conformance.sandwich)
        self._make_transport = make_transport
        self.concurrency = max(1, concurrency)
        self._plan, self._read_limits = plan, read_limits
        self._make_client = make_client
        self._clients: dict[str | None, GatewayClient] = {}
        self._futures: dict[str, Future] = {}
        self._views: dict[str, Any] = {}
        self._adhoc: dict[str, Entry] = {}
        self._content: dict[str, Future] = {}  # what was sent (content_key) -> its recording: sent once
        self._planned_content: dict[tuple[str, bool], Future] = {}  # the same, between planned entries without needs
        self._lock = threading.RLock()
        self._planned: set = set()  # the units whose plan was sent: None (the whole run) or module paths
        self._plan_futures: list[Future] = []  # every planned entry's recording (``settle`` waits for them)
        self._plan_by_module = plan_by_module
        self._dispatcher: Dispatcher | None = None
        self._priority: dict[str, int] = {}  # entry key -> its chain length (``chain_lengths``): started first

    # -- the case side ------------------------------------------------------------------------------------------
    def fetch(self, entry: Entry, node: Any) -> Any:
        """The recorded exchange(s) of ``entry`` (through its view), attached to ``node``'s transcript; a harness
        error while sending is raised here (ERROR), a builder's skip skips."""
        self.start(node)
        result = self._result(entry)
        if entry.hint:
            return None
        self._attach(node, self.exchanges_of(entry))
        if isinstance(result, BaseException):
            raise result
        if entry.key not in self._views:
            self._views[entry.key] = self._view(entry, result)
        return self._views[entry.key]

    def adhoc(self, name: str, spec: Spec, node: Any, view: Callable[[Recorded], Any] | None = None, *,
              index: bool = False) -> Any:
        """A named exchange a case asks for while it runs (not planned: sent now, in the calling case's time, then
        kept under ``name`` for every later case asking for it). ``index``: later ``shared`` requests of the same
        content get it too (named ones are not: two names may send one body twice on purpose)."""
        with self._lock:
            entry = self._adhoc.get(name)
            if entry is None:
                entry = self._adhoc[name] = Entry(f"adhoc.{name}", lambda _plan: spec, (), False, view,
                                                  indexed=index)
                entry.spec = spec
            elif self.content_key(entry.spec) != self.content_key(spec):
                raise ValueError(f"suite bug: exchange {name!r} was planned with another request than the one "
                                 "a case asks for")
        if entry.view is None and view is not None:
            entry.view = view
        return self.fetch(entry, node)

    def shared(self, spec: Spec, node: Any, view: Callable[[Recorded], Any] | None = None) -> Any:
        """The recording of a request with exactly this content (method, URL, body, headers, key, read), whoever
        declared or sent it first; sent now when nobody did."""
        self.start(node)
        key = self.content_key(spec)
        with self._lock:
            future = self._content.get(key)
        if future is None:
            self.settle()  # an entry launched late (after its needs) may plan it
            with self._lock:
                future = self._content.get(key)
        if future is None:
            return self.adhoc(f"shared:{key}", spec, node, view, index=True)
        rec = future.exception() or future.result()
        if isinstance(rec, BaseException):
            raise rec
        self._attach(node, rec.exchanges)
        if rec.error is not None:
            raise rec.error
        return view(rec) if view is not None else rec

    def content_key(self, spec: Spec) -> str:
        client = self._client(spec.key)
        url = client.url(spec.path) if spec.root else client.api(spec.path)
        return json.dumps([spec.method, url, spec.body, spec.content.hex() if spec.content else None,
                           sorted(spec.headers.items()), spec.auth, spec.key, spec.read], default=str)

    def client(self, key: str | None = None) -> GatewayClient:
        """The store's client for ``key`` (None: the run's key), e.g. to build URLs the way it sends them."""
        return self._client(key)

    def exchanges_of(self, entry: Entry) -> list[Exchange]:
        """The exchanges behind ``entry``: its dependencies' first, then its own."""
        out = [ex for dep in entry.needs for ex in self.exchanges_of(dep)]
        result = self._result(entry)
        for rec in (result if isinstance(result, list) else [result] if result is not None else []):
            out += getattr(rec, "exchanges", []) + getattr(rec, "upstream", [])
        return out

    def _view(self, entry: Entry, result: Any) -> Any:
        if result is None:
            return None
        for rec in result if isinstance(result, list) else [result]:
            if rec.error is not None:
                raise rec.error
        if entry.view is None:
            return result
        return [entry.view(rec) for rec in result] if isinstance(result, list) else entry.view(result)

    # -- sending ------------------------------------------------------------------------------------------------
    def start(self, node: Any = None) -> None:
        """Send the plan of ``node``'s unit (once): the whole run's, or under ``plan_by_module`` (an xdist worker,
        which runs only some modules) its module's. The run's first exchange goes alone (``probe_first``), the rest
        under the cap, longest chain first. Returns once they are handed to the dispatcher: each case waits for what
        it judges (``fetch``), anything unplanned for the whole plan (``settle``)."""
        unit = getattr(node, "path", None) if self._plan_by_module else None
        with self._lock:
            if unit in self._planned:
                return
            self._planned.add(unit)
            entries = [e for e in self._plan(unit) if self._prefetched(e) and e.key not in self._futures]
            self._priority.update(chain_lengths(entries))
            # Longest chain first (stable: plan order among equals); the dispatcher starts what it is handed while
            # under the cap, so the order of submission is the order of start.
            entries.sort(key=lambda e: -self._priority[e.key])
            alone = self._dispatcher is None and self.probe_first and bool(entries)  # the run's first exchange
            if self._dispatcher is None:
                self._dispatcher = Dispatcher(self.concurrency)
            if alone:
                self._submit(entries[0])
        if alone:
            self._futures[entries[0].key].exception()
        with self._lock:
            for entry in entries[1:] if alone else entries:
                self._submit(entry)
            self._plan_futures += [self._futures[entry.key] for entry in entries]

    def settle(self) -> None:
        """Wait until every planned exchange sent so far is recorded. A case judges its own exchanges as soon as
        they are in (judging overlaps the sending); what is not planned (an exchange a case asks for while it
        runs, a direct client's request) goes after the plan, as if the plan had been sent before the cases ran:
        it neither races the plan for a rate limit nor sees its traffic."""
        with self._lock:
            pending = list(self._plan_futures)
        for future in pending:
            future.exception()

    def _prefetched(self, entry: Entry) -> bool:
        wanted = entry.prefetch(self.context) if callable(entry.prefetch) else entry.prefetch
        return bool(wanted) and all(self._prefetched(dep) for dep in entry.needs)

    def _result(self, entry: Entry) -> Any:
        with self._lock:
            planned = entry.key in self._futures
        if not planned:  # not in the plan (asked while a case runs, or by a case outside the selection)
            self.settle()  # which may declare it (a hint's named exchange): then it is not sent twice
            with self._lock:
                if entry.key not in self._futures:
                    self._submit(entry)
        future = self._futures[entry.key]
        return future.exception() or future.result()

    def _submit(self, entry: Entry) -> None:
        """Schedule ``entry`` once its dependencies are recorded (callers hold the lock). No pool thread ever waits
        for another task: an entry is launched from the callback of its last dependency."""
        if entry.key in self._futures:
            return
        for dep in entry.needs:
            self._submit(dep)
        future: Future = Future()
        self._futures[entry.key] = future
        deps = [self._futures[d.key] for d in entry.needs]
        pending = [len(deps)]

        def dep_done(_: Future) -> None:
            with self._lock:
                pending[0] -= 1
                ready = pending[0] == 0
            if ready:
                self._launch(entry, future)

        if not deps:
            self._launch(entry, future)
        for dep in deps:
            dep.add_done_callback(dep_done)

    def _launch(self, entry: Entry, future: Future) -> None:
        """Build ``entry``'s spec(s) from its dependencies' recordings and hand the sending to the pool."""
        try:
            needed = {dep.build.__name__: self._view(dep, self._futures[dep.key].result()) for dep in entry.needs}
            built = entry.build(self.context, **needed)
        except BaseException as exc:  # noqa: BLE001 - a skip or a harness error belongs to the cases using it
            future.set_exception(exc)
            return
        if built is None:
            future.set_result(None)
            return
        if isinstance(built, dict):  # a hint of named exchanges (``adhoc`` names): each sent on its own
            futures = [self._declare_named(name, spec, self._priority.get(entry.key, 0))
                       for name, spec in built.items()]
            remaining = [len(futures)]

            def named_done(_: Future) -> None:
                with self._lock:
                    remaining[0] -= 1
                    done = remaining[0] == 0
                if done:
                    future.set_result(None)

            for named in futures:
                named.add_done_callback(named_done)
            if not futures:
                future.set_result(None)
            return
        priority = self._priority.get(entry.key, 0)
        if isinstance(built, Call):
            self._dispatcher.submit(priority, lambda: self._settle(
                future, lambda: self._run_call(f"spec:{entry.key}", entry.key, built)))
            return
        if isinstance(built, Spec):
            if not self._follows_same(entry, built, future):
                self._dispatcher.submit(priority, lambda: self._settle(
                    future, lambda: self._send(f"spec:{entry.key}", entry.key, built)))
            return
        specs = list(built)
        if entry.sequential or len(specs) < 2:
            self._dispatcher.submit(priority, lambda: self._settle(future, lambda: self._send_in_order(entry, specs)))
            return
        parts = [Future() for _ in specs]
        for i, (spec, part) in enumerate(zip(specs, parts, strict=True)):
            if not self._follows_same(entry, spec, part):
                self._dispatcher.submit(priority, functools.partial(self._settle, part, functools.partial(
                    self._send, f"spec:{entry.key}#{i}", entry.key, spec)))
        remaining = [len(parts)]

        def part_done(_: Future) -> None:
            with self._lock:
                remaining[0] -= 1
                done = remaining[0] == 0
            if done:
                self._settle(future, lambda: [p.result() for p in parts])

        for part in parts:
            part.add_done_callback(part_done)

    def _declare_named(self, name: str, spec: Spec, priority: int) -> Future:
        """Plan the exchange a case will ask for as ``adhoc(name, spec)`` (with the priority of the hint naming it)."""
        with self._lock:
            entry = self._adhoc.get(name)
            if entry is None:
                entry = self._adhoc[name] = Entry(f"adhoc.{name}", lambda _plan: spec, (), False, None,
                                                  indexed=False)
                entry.spec = spec
                self._priority.setdefault(entry.key, priority)
            self._submit(entry)
            return self._futures[entry.key]

    def _follows_same(self, entry: Entry, spec: Spec, future: Future) -> bool:
        """Index ``spec`` (``shared`` finds it by content), or, when a planned exchange with exactly this content is
        already on its way, make ``future`` its recording instead of sending it again (True). Only between entries
        without dependencies (launched in plan order, so the same one sends in a recording and in its replay), never
        for a scripted spec (its nonce makes it another request) or between a spec that wants its 429 and one that
        does not."""
        if not entry.indexed:
            return False
        key = self.content_key(spec)
        with self._lock:
            self._content.setdefault(key, future)
            if entry.needs or spec.script is not None:
                return False
            same = self._planned_content.setdefault((key, spec.wants_429), future)
        if same is future:
            return False
        name = entry.key

        def copy(done: Future) -> None:
            if done.exception() is not None:
                future.set_exception(done.exception())
            else:
                future.set_result(dataclasses.replace(done.result(), name=name))

        same.add_done_callback(copy)
        return True

    def _send_in_order(self, entry: Entry, specs: list[Spec]) -> list[Recorded]:
        out = []
        for i, spec in enumerate(specs):
            out.append(self._send(f"spec:{entry.key}#{i}", entry.key, spec))
            if out[-1].error is not None or (entry.until is not None and entry.until(out[-1])):
                break
        return out

    @staticmethod
    def _settle(future: Future, work: Callable[[], Any]) -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # noqa: BLE001
            future.set_exception(exc)

    def _send(self, scope: str, name: str, spec: Spec) -> Recorded:
        """One spec, with the 429 back-off; a harness error is recorded, not raised. A spec with a script goes
        through the sandwich (rule upstream first, the upstream's journal after)."""
        if spec.script is None:
            return self._send_direct(scope, name, spec)
        if self.sandwich is None:
            return Recorded(name, spec, [], HarnessError("suite bug: a scripted exchange outside sandwich mode"))
        try:
            spec = self.sandwich.bind(scope, spec)
            return self.sandwich.exchange(scope, spec.script, lambda: self._send_direct(scope, name, spec))
        except HarnessError as exc:
            return Recorded(name, spec, [], exc, self._read_limits)
        finally:
            self.wire.scope = None

    def _send_direct(self, scope: str, name: str, spec: Spec) -> Recorded:
        client = self._client(spec.key)
        self.wire.scope = scope
        attempts: list[Exchange] = []
        try:
            for attempt in range(MAX_429_RETRIES + 1):
                try:
                    attempts.append(client.send_and_read(
                        spec.method, client.url(spec.path) if spec.root else spec.path, json_body=spec.body,
                        content=spec.content, headers=spec.headers, auth=spec.auth, stream=spec.streamed))
                except HarnessError as exc:
                    attempts += [exc.exchange] if getattr(exc, "exchange", None) is not None else []
                    return Recorded(name, spec, attempts, exc, self._read_limits)
                refused = attempts[-1].status == 429 and not spec.wants_429
                wait = retry_after(attempts[-1]) if refused else None
                if self._dispatcher is not None:
                    (self._dispatcher.congested if refused else self._dispatcher.answered)()
                if wait is None or attempt == MAX_429_RETRIES or self.wire.replaying:
                    break
                time.sleep(wait)
        finally:
            self.wire.scope = None
        return Recorded(name, spec, attempts, None, self._read_limits)

    def _run_call(self, scope: str, name: str, call: Call) -> CallResult:
        """One interaction; with a script, through the sandwich like a scripted spec (rule upstream first, the
        upstream's journal after), ``run`` getting the bound nonce's marker."""
        if call.script is None:
            return self._run_call_direct(scope, name, call, ())
        if self.sandwich is None:
            return CallResult(name, [], raised=HarnessError("suite bug: a scripted call outside sandwich mode"))
        try:
            script = self.sandwich.bind_script(scope, call.script)
            return self.sandwich.exchange(scope, script,
                                          lambda: self._run_call_direct(scope, name, call, (script.marker,)))
        except HarnessError as exc:
            return CallResult(name, [], raised=exc)
        finally:
            self.wire.scope = None

    def _run_call_direct(self, scope: str, name: str, call: Call, args: tuple[str, ...]) -> CallResult:
        transport = self._make_transport(call.key)
        self.wire.scope = scope
        value, raised = None, None
        try:
            value = call.run(transport, *args)
        except Exception as exc:  # noqa: BLE001 - what the interaction raised is its result
            raised = exc
        finally:
            self.wire.scope = None
        transport.close()
        return CallResult(name, transport.take_transcript(), value, raised)

    def _client(self, key: str | None) -> GatewayClient:
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make_client(key)
            return self._clients[key]

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()
        for client in self._clients.values():
            client.close()


def retry_after(exchange: Exchange) -> float | None:
    """Seconds a 429 asks to wait (Retry-After, or retry-after-ms), bounded by ``MAX_RETRY_AFTER_S``; 1 s when it
    names none; None when it asks for longer than the bound (then the 429 stands as the answer)."""
    headers = httpx.Headers(exchange.response_headers)
    seconds: float | None = None
    try:
        if headers.get("retry-after-ms") is not None:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif headers.get("retry-after") is not None:
            seconds = float(headers["retry-after"])
    except ValueError:
        seconds = None
    if seconds is None or math.isnan(seconds):
        return 1.0
    return max(0.0, seconds) if seconds <= MAX_RETRY_AFTER_S else None
