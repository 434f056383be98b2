"""The generic fixtures of a conformance suite (``conformance``, ``profile``, ``requirements``, ``target``,
``api_key``, ``wire``, ``exchange_store``, ``make_client``, ``client``, ``expect``, ...) and the per-case state
they share with the plugin's hooks (stash keys, the case transcript).

Registered as a plugin by the entry point (``conformance/entry.py``) only in a conformance run, so any suite run
with the conformance options (the bundled one, or your own) has them, and an unrelated pytest run in the same
environment never sees a ``client`` or ``target`` fixture of this package.
"""

from __future__ import annotations

import pytest

from conformance.case_trace import CaseTracer
from conformance.client import Exchange, GatewayClient
from conformance.embedded import EmbeddedServer
from conformance.exchanges import PlanContext, planned_entries
from conformance.expect import Expect
from conformance.options import RunState
from conformance.store import ExchangeStore
from conformance.wire import RECORDING_DIR, Secrets, TargetHealth, Wire, WireTransport, process_name

__all__ = ["api_key", "capabilities", "client", "conformance", "exchange_store", "expect", "make_client",
           "make_transport", "plan_context", "profile", "requirements", "sandwich", "target", "transcript", "wire"]

STATE = pytest.StashKey[RunState]()
IDS = pytest.StashKey[tuple]()
TRANSCRIPT = pytest.StashKey["CaseTranscript"]()
EXPECT = pytest.StashKey[Expect]()
TRACER = pytest.StashKey[CaseTracer]()
WIRE = pytest.StashKey[Wire]()
TARGET_DOWN_EXIT = pytest.ExitCode.INTERRUPTED  # the run was cut short: the target stopped answering


class CaseTranscript:
    """The exchanges a case judged, in order: the ones it sent (its clients) and the recorded ones it read."""

    def __init__(self) -> None:
        self._sources: list = []
        self._exchanges: list[Exchange] = []

    def add(self, exchanges) -> None:
        """Exchanges recorded elsewhere (the exchange store) that this case judged; each joins once."""
        for ex in exchanges:
            if not any(ex is seen for seen in self._exchanges):
                self._exchanges.append(ex)

    def add_source(self, source) -> None:
        """Something with ``take_transcript()`` (a client) whose exchanges join when the case is graded."""
        self._sources.append(source)

    def take(self) -> list[Exchange]:
        out, self._exchanges = self._exchanges, []
        for source in self._sources:
            for ex in source.take_transcript():
                if not any(ex is seen for seen in out):
                    out.append(ex)
        return out


def case_transcript(node: pytest.Item) -> CaseTranscript:
    """The transcript of the case ``node`` (created on first use)."""
    return node.stash.setdefault(TRANSCRIPT, CaseTranscript())

def run_state(config: pytest.Config) -> RunState:
    """The conformance state of this pytest run (options, profile, registry, results)."""
    return config.stash[STATE]


def _marker_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("requirement"):
        ids.extend(i for i in mark.args if i not in ids)
    return tuple(ids)


# -- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def conformance(request: pytest.FixtureRequest) -> RunState:
    """The run state: ``.options``, ``.profile``, ``.registry``, ``.accounting``."""
    return run_state(request.config)


@pytest.fixture(scope="session")
def profile(conformance: RunState):
    """The gateway profile under test (``gateway_spec.Profile``)."""
    return conformance.profile


@pytest.fixture(scope="session")
def requirements(conformance: RunState):
    """The requirement registry: ID → ``gateway_spec.Requirement``."""
    return conformance.registry


@pytest.fixture(scope="session")
def target(conformance: RunState, request: pytest.FixtureRequest):
    """Base URL of the gateway; without ``--target-url`` the embedded reference server (one per process);
    replaying, the URL the recording was made against (nothing is sent to it)."""
    if conformance.options.replay:
        yield conformance.recording.header["target_url"]
        return
    if conformance.options.target_url:
        yield conformance.options.target_url
        return
    opts = conformance.options
    server = EmbeddedServer(opts.profile, opts.server_faults, opts.server_variants,
                            trace_faults=opts.server_trace_faults)
    url = server.start()
    if server.fault_trace is not None:
        request.config.stash[TRACER] = CaseTracer(server.fault_trace)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api_key(conformance: RunState, target: str) -> str | None:
    """``--gw-api-key``; the profile's test key only when the target is the embedded server."""
    return conformance.api_key


@pytest.fixture(scope="session")
def wire(conformance: RunState, target: str, request: pytest.FixtureRequest):
    """What every client of this process shares: the target's health, the recording of every exchange (in
    ``<report-dir>/exchanges/``), or with ``--gw-replay`` the recording the answers come from."""
    opts = conformance.options
    replay = conformance.recording if opts.replay else None
    record_to = None if replay else conformance.report_dir / RECORDING_DIR / f"{process_name()}.jsonl"
    shared = Wire(TargetHealth(None if replay else target, opts.request_timeout), Secrets(conformance.secrets),
                  record_to=record_to, replay=replay, header=conformance.recording_header(target))
    shared.case_scope = conformance.case_scope
    request.config.stash[WIRE] = shared
    yield shared
    shared.close()


@pytest.fixture
def transcript(request: pytest.FixtureRequest) -> CaseTranscript:
    """This case's transcript: ``transcript.add(exchanges)`` for exchanges it judged that it did not send itself,
    ``transcript.add_source(obj)`` for another client (anything with ``take_transcript()``)."""
    return case_transcript(request.node)


@pytest.fixture
def make_client(transcript: CaseTranscript, conformance: RunState, target: str, api_key, wire: Wire):
    """Factory for extra clients (other keys, headers); each one's transcript joins the case's. A case's own
    requests go after the exchanges planned so far (``ExchangeStore.settle``), as they did when the plan was sent
    before any case ran."""
    clients = []

    def factory(**overrides) -> GatewayClient:
        settle_plan(conformance)
        settings = conformance.client_settings(target, api_key)
        settings.update(overrides)
        settings["redactor"] = conformance.redactor_with(settings.get("api_key"))
        settings.setdefault("wire", wire)
        client = GatewayClient(**settings)
        clients.append(client)
        transcript.add_source(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def make_transport(conformance: RunState, wire: Wire):
    """An httpx transport for a client the suite does not build itself (the openai SDK): its exchanges are
    recorded (or replayed) and the target's health applies; ``redact_key`` is one more secret to mask. Like
    ``make_client``'s, it is handed out after the exchanges planned so far."""
    made = []

    def factory(redact_key: str | None = None) -> WireTransport:
        settle_plan(conformance)
        transport = WireTransport(wire, conformance.redactor_with(redact_key), conformance.accounting)
        made.append(transport)
        return transport

    yield factory
    for transport in made:
        transport.close()


@pytest.fixture(scope="session")
def sandwich(conformance: RunState, target: str, wire: Wire):
    """Sandwich mode (``--upstream``/``--upstream-listen``): a ``conformance.sandwich.Sandwich``; None otherwise."""
    url = conformance.sandwich_url
    if not url:
        yield None
        return
    from conformance.sandwich import Sandwich

    side = Sandwich(url, conformance.sandwich_token, wire, conformance.redactor, server=conformance.upstream_server,
                    stoppable=conformance.upstream_stoppable)
    yield side
    side.close()


@pytest.fixture(scope="session")
def plan_context(conformance: RunState, target: str, api_key, sandwich) -> PlanContext:
    """What exchange builders may read: profile, options, target URL, models, key, capabilities, sandwich."""
    opts, profile = conformance.options, conformance.profile
    return PlanContext(profile, opts, target, opts.model or profile.get("models.default_chat"),
                       opts.embedding_model or profile.get("models.default_embedding"), api_key,
                       conformance.capabilities, sandwich)


@pytest.fixture(scope="session")
def capabilities(conformance: RunState):
    """What the target can do beyond the contract (``conformance.options.Capabilities``)."""
    return conformance.capabilities


@pytest.fixture(scope="session")
def exchange_store(request: pytest.FixtureRequest, conformance: RunState, target: str, api_key, wire: Wire,
                   plan_context: PlanContext):
    """The run's exchange store (``conformance.exchanges``): the planned exchanges of the selected cases, sent
    concurrently on first use, each once per process."""
    opts = conformance.options

    def make(key: str | None) -> GatewayClient:
        settings = conformance.client_settings(target, key or api_key)
        settings.update(redactor=conformance.redactor_with(key), wire=wire, keep_transcript=False)
        return GatewayClient(**settings)

    items = request.session.items  # the final selection (after every plugin's collection_modifyitems)
    store = ExchangeStore(plan_context, make, wire, lambda node, exchanges: case_transcript(node).add(exchanges),
                          concurrency=opts.concurrency, plan_by_module=hasattr(request.config, "workerinput"),
                          plan=lambda unit: planned_entries([i for i in items if unit is None or i.path == unit]),
                          read_limits=(opts.stream_timeout, opts.request_timeout),
                          make_transport=lambda key: WireTransport(wire, conformance.redactor_with(key),
                                                                   conformance.accounting),
                          sandwich=plan_context.sandwich, probe_first=not conformance.target_answers)
    conformance.exchange_store = store  # a case's own clients wait for its plan (``settle_plan``)
    yield store
    conformance.exchange_store = None
    store.close()


def settle_plan(conformance: RunState) -> None:
    """Wait for the exchanges planned so far, when the run has a store (``ExchangeStore.settle``)."""
    if conformance.exchange_store is not None:
        conformance.exchange_store.settle()


@pytest.fixture
def client(make_client) -> GatewayClient:
    """``GatewayClient`` for the target with the run's key and headers."""
    return make_client()


@pytest.fixture
def expect(request: pytest.FixtureRequest, conformance: RunState) -> Expect:
    """Soft per-requirement checks: ``expect(ID, cond, expected=..., received=...)``."""
    recorder = Expect(request.node.stash.get(IDS, _marker_ids(request.node)), conformance.redactor)
    request.node.stash[EXPECT] = recorder
    return recorder
