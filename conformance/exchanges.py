"""The exchange store: collect, then judge.

Checks declare the exchanges they judge as named builders; the run's plan is every builder a selected case uses
(directly or through another fixture); the store sends the plan concurrently (``--gw-concurrency N``), each exchange
once per process, and the checks judge what it recorded.

Declaring one (in a check module or the suite's conftest)::

    @exchange(view=ChatExchange.of)
    def chat_conversation(plan):            # the fixture name; plan: PlanContext (profile, models, capabilities)
        return Spec.post("/chat/completions", {...})   # or a list of Specs, or None (nothing to send)

    def test_x(chat_conversation, expect): ...         # the recorded exchange, through the view

``needs=(other,)``: built and sent after ``other`` (its recorded exchange is passed to the builder by name), for
bodies made from an earlier answer and for probes whose order matters (a remaining-count decrement, a cache
repeat). A builder returning a list sends it concurrently, or in order with ``sequential=True`` (a burst). A
builder may ``pytest.skip``: every case using it is skipped. Transcripts of what a case judged join the case's
record (``request_ids``) through ``attach``.

Sending is ``conformance.store.ExchangeStore``'s.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.client import Exchange, HarnessError, Response, replay_chunks
from conformance.ndjson import NdjsonTranscript, read_ndjson
from conformance.options import DEFAULT_CONCURRENCY
from conformance.sse import SseTranscript, read_stream
from conformance.wire import TargetDown

READS = ("buffered", "sse", "sse-or-json", "ndjson")


# -- what to send ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Spec:
    """One request: method, path (under the profile's base path, or the target's origin with ``root``), a JSON
    ``body`` or raw ``content``, extra ``headers`` (a None value removes a default one), ``auth`` (send the key at
    all), ``key`` (another key than the run's), how to ``read`` the answer, and whether a 429 is the point."""

    method: str = "POST"
    path: str = "/chat/completions"
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str | None] = field(default_factory=dict)
    auth: bool = True
    key: str | None = None
    root: bool = False
    read: str = "buffered"
    wants_429: bool = False
    script: Any = None  # sandwich mode: a ``conformance.sandwich.Script`` (rule upstream, journal after)

    def __post_init__(self) -> None:
        if self.read not in READS:
            raise ValueError(f"read must be one of {READS}, not {self.read!r}")

    @classmethod
    def post(cls, path: str, body: Any, **kw: Any) -> Spec:
        return cls("POST", path, body, **kw)

    @classmethod
    def get(cls, path: str, **kw: Any) -> Spec:
        return cls("GET", path, **kw)

    @property
    def streamed(self) -> bool:
        return self.read != "buffered"


@dataclass(frozen=True, eq=False)
class Call:
    """An interaction that is not one request the store can send: a client the suite does not build (the openai
    SDK, with its own retries and stream parsing). ``run(transport)`` runs in the pool, its requests going through
    ``transport`` (an httpx transport on the run's wire: recorded, replayed, health-checked; ``key`` is masked);
    what it returns or raises is what the cases judge (``CallResult.result()``).

    ``script`` (sandwich mode, a ``conformance.sandwich.Script``): the rule registered upstream before the call and
    the journal read after, as for a scripted ``Spec``; ``run`` is then called as ``run(transport, marker)`` and puts
    ``marker`` (the nonce bound to the sending process) into its message content."""

    run: Callable[..., Any]
    key: str | None = None
    script: Any = None


@dataclass(eq=False)
class CallResult:
    """A ``Call`` that ran: its exchanges and its value, or the exception it raised."""

    name: str
    exchanges: list[Exchange]
    value: Any = None
    raised: BaseException | None = None
    error: None = None  # a Call's failures are its result (the case decides what a harness error is)
    journal: list[dict] | None = None  # sandwich mode: the upstream's journal entries for the script's nonce
    upstream: list[Exchange] = field(default_factory=list)  # sandwich mode: the control exchanges behind it

    @property
    def status(self) -> int:
        """The status of the last exchange the call made (0: none)."""
        return (self.exchanges[-1].status or 0) if self.exchanges else 0

    def result(self) -> Any:
        """The value, or the exception raised again (in the case's thread)."""
        if self.raised is not None:
            raise self.raised
        return self.value


@dataclass
class PlanContext:
    """What a builder may use: the profile, the options, the models to exercise and what the target can do."""

    profile: Any
    options: Any
    target: str
    chat_model: str | None
    embedding_model: str | None
    api_key: str | None
    capabilities: Any
    sandwich: Any = None  # sandwich mode (``--upstream``): a ``conformance.sandwich.Sandwich``, else None

    def role_key(self, role: str) -> str | None:
        """The key of ``role`` (no-balance, restricted, tier-<name>, expired, disabled): ``--gw-role-key``, else the
        profile's test key of that role where the target knows the profile's keys (the embedded server)."""
        given = dict(self.options.role_keys).get(role)
        if given:
            return given
        return (self.profile.get("auth.extra_test_keys") or {}).get(role) if self.capabilities.role_keys else None


# -- what was recorded --------------------------------------------------------------------------------------
class _ChunkClock:
    """The clock of a recorded body: reading it back gives each chunk the arrival time it was recorded with."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.now = (exchange.headers_ms or 0.0) / 1000

    def __call__(self) -> float:
        return self.now

    def chunks(self) -> Iterator[bytes]:
        marks = self.exchange.marks
        for n, chunk in enumerate(replay_chunks(self.exchange)):
            self.now = marks[n][0] if n < len(marks) else self.now
            yield chunk
        self.now = max(self.now, (self.exchange.elapsed_ms or 0.0) / 1000)


@dataclass(eq=False)
class Recorded:
    """A sent spec: every attempt's exchange (``exchanges``, the last one answered), or the harness error."""

    name: str
    spec: Spec
    exchanges: list[Exchange]
    error: HarnessError | None = None
    read_limits: tuple[float, float] = (60.0, 30.0)  # (stream deadline, idle timeout): the run's timeouts
    journal: list[dict] | None = None  # sandwich mode: the upstream's journal entries for the spec's nonce
    upstream: list[Exchange] = field(default_factory=list)  # sandwich mode: the control exchanges behind it

    @property
    def last(self) -> Exchange:
        if self.error is not None:
            raise self.error
        return self.exchanges[-1]

    @property
    def status(self) -> int:
        return self.last.status

    @functools.cached_property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self.last.response_headers)

    @property
    def raw(self) -> bytes:
        return bytes(self.last.raw_body)

    @property
    def headers_s(self) -> float:
        return (self.last.headers_ms or 0.0) / 1000

    @functools.cached_property
    def response(self) -> Response:
        return Response(self.status, self.headers, self.raw, self.last)

    def sse(self) -> SseTranscript:
        """The body read as SSE, each event stamped with the time its bytes arrived."""
        clock = _ChunkClock(self.last)
        deadline, idle = self.read_limits
        return read_stream(clock.chunks(), deadline_s=deadline, idle_timeout_s=idle, clock=clock)

    def ndjson(self) -> NdjsonTranscript:
        clock = _ChunkClock(self.last)
        return read_ndjson(clock.chunks(), deadline_s=self.read_limits[0], clock=clock)


# -- declaring exchanges ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class Entry:
    """A named builder: the key it is recorded under, its dependencies, how lists are sent, the view."""

    key: str
    build: Callable[..., Any]
    needs: tuple[Entry, ...]
    sequential: bool
    view: Callable[[Recorded], Any] | None
    until: Callable[[Recorded], bool] | None = None
    prefetch: Any = True  # bool, or a function of the PlanContext: False sends it when a case first asks
    indexed: bool = True  # ``ExchangeStore.shared`` requests of the same content reuse its recording(s)
    hint: bool = False  # only a plan: the fixture gives None; the cases get each recording by content (``shared``)
    spec: Spec | None = None  # named (adhoc) exchanges: what they send


def exchange(func: Callable | None = None, *, needs: Iterable[Any] = (), sequential: bool = False,
             view: Callable[[Recorded], Any] | None = None, until: Callable[[Recorded], bool] | None = None,
             prefetch: Any = True, hint: bool = False):
    """Declare a named exchange: returns a function-scoped fixture (of the builder's name) giving its recording.

    ``until`` (sequential lists): stop sending after the first recording it accepts (a burst up to its 429).
    ``prefetch`` False (or a function of the PlanContext returning False): not sent with the plan but when a case
    first asks (what spends a shared quota, e.g. a burst on the run's own key, goes last). ``hint``: the builder
    only plans requests a case then makes by content (``rest.get(...)``, through ``ExchangeStore.shared``), each
    attached to the case that asks for it; the fixture itself gives None."""

    def wrap(build: Callable) -> Any:
        entry = Entry(f"{Path(inspect.getfile(build)).stem}.{build.__name__}", build,
                      tuple(_entry_of(n) for n in needs), sequential, view, until, prefetch, hint=hint)

        def fixture(request: pytest.FixtureRequest, exchange_store: Any) -> Any:
            return exchange_store.fetch(entry, request.node)

        fixture.__doc__ = build.__doc__
        fixture.exchange_entry = entry
        defined = pytest.fixture(name=build.__name__)(fixture)
        defined.exchange_entry = entry
        return defined

    return wrap(func) if func is not None else wrap


def _entry_of(obj: Any) -> Entry:
    entry = getattr(obj, "exchange_entry", obj)
    if not isinstance(entry, Entry):
        raise TypeError(f"needs= takes exchanges declared with @exchange, not {obj!r}")
    return entry


def planned_entries(items: Iterable[pytest.Item]) -> list[Entry]:
    """Every exchange the items use (through any fixture), with their dependencies, each once, in first-use order.

    Items marked skip at collection (an unclaimed feature) plan nothing."""
    seen: dict[str, Entry] = {}

    def add(entry: Entry) -> None:
        for dep in entry.needs:
            add(dep)
        seen.setdefault(entry.key, entry)

    for item in items:
        if any(mark.name == "skip" for mark in item.iter_markers()):
            continue
        info = getattr(item, "_fixtureinfo", None)
        for name in getattr(item, "fixturenames", ()):
            defs = info.name2fixturedefs.get(name) if info is not None else None
            entry = getattr(defs[-1].func, "exchange_entry", None) if defs else None
            if entry is not None:
                add(entry)
    return list(seen.values())


__all__ = ["DEFAULT_CONCURRENCY", "Call", "CallResult", "PlanContext", "Recorded", "Spec", "TargetDown",
           "exchange", "planned_entries"]
