"""The generic fixtures of a conformance suite: ``conformance``, ``profile``, ``requirements``, ``target``,
``api_key``, ``make_client``, ``client``, ``expect``.

Registered as a plugin by the entry point (``conformance/entry.py``) only in a conformance run, so any suite run
with the conformance options (the bundled one, or your own) has them, and an unrelated pytest run in the same
environment never sees a ``client`` or ``target`` fixture of this package.
"""

from __future__ import annotations

import pytest

from conformance.case_trace import CaseTracer
from conformance.client import GatewayClient
from conformance.embedded import EmbeddedServer
from conformance.expect import Expect
from conformance.options import RunState
from conformance.plugin import CLIENTS, EXPECT, IDS, TRACER, _marker_ids, run_state


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
    """Base URL of the gateway; without ``--target-url`` the embedded reference server (one per process)."""
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
    """``--api-key``; the profile's test key only when the target is the embedded server."""
    return conformance.api_key


@pytest.fixture
def make_client(request: pytest.FixtureRequest, conformance: RunState, target: str, api_key):
    """Factory for extra clients (other keys, headers); each one's transcript joins the case's."""
    clients = request.node.stash.setdefault(CLIENTS, [])

    def factory(**overrides) -> GatewayClient:
        settings = conformance.client_settings(target, api_key)
        settings.update(overrides)
        settings["redactor"] = conformance.redactor_with(settings.get("api_key"))
        client = GatewayClient(**settings)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


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
