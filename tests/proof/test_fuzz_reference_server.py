"""Schemathesis against the reference server, in every profile, with zero findings.

The same engine as the suite's ``--gw-fuzz`` mode (``conformance.fuzz``): positive and negative requests for every
operation the profile serves, sent in process (``httpx.WSGITransport``) through ``GatewayClient``, judged by
schemathesis' checks: no 5xx, documented status and content type, bodies, SSE events and NDJSON lines matching the
spec, OpenAI errors in the envelope and native errors as ``{"error": "<string>"}``, and (the reference server
being strict) every invalid request rejected with a 4xx. Generation is seeded and
shared by all profiles, so the whole proof costs one generation plus cheap in-process requests.
"""

from __future__ import annotations

import functools
import time

import httpx
import pytest

from conformance import fuzz
from conformance.client import GatewayClient
from gateway_spec import load_profile, profile_names
from reference_server import ServerConfig, create_app
from tests.proof.fuzz_summary import tally_for

EXAMPLES = 15  # per operation and mode: ~2000 requests over all profiles, well under a minute of CPU
SEED = 0


def _cases():
    for name in profile_names():
        profile = load_profile(name)
        for op in fuzz.OPERATIONS.values():
            if fuzz.serves(profile, op) is None:
                for mode in fuzz.modes(op):
                    yield pytest.param(name, op.operation_id, mode, id=f"{name}-{op.operation_id}-{mode}")


@functools.cache
def _app(profile: str):
    return create_app(ServerConfig.for_profile(profile))


def _describe(finding: fuzz.Finding) -> str:
    return (f"{finding.operation_id} {finding.mode}: {finding.check} on HTTP {finding.status} "
            f"({finding.content_type})\n  {finding.title}: {finding.detail[:600]}\n  request: {finding.request}")


@pytest.mark.parametrize(("profile_name", "operation_id", "mode"), list(_cases()))  # pytest 10 refuses a generator
def test_reference_server_survives_fuzzing(profile_name, operation_id, mode, request):
    profile, op = load_profile(profile_name), fuzz.OPERATIONS[operation_id]
    client = GatewayClient("http://reference.test", base_path=profile.base_path, api_key=profile.test_key,
                           transport=httpx.WSGITransport(app=_app(profile_name)))
    models = fuzz.FuzzModels.for_profile(profile)
    cases = fuzz.generate(operation_id, mode, EXAMPLES, SEED)
    streaming = profile.claims("streaming")
    started, statuses, findings = time.monotonic(), [], []
    for index, case in enumerate(cases):
        exchange = fuzz.send(client, op, case, mode, profile, models, stream=streaming and index % 2 == 1)
        statuses.append(exchange.response.status_code)
        findings += fuzz.judge(op, mode, exchange, reject_invalid=True)
        client.take_transcript()
    row = tally_for(request.config).add(profile_name, operation_id, mode, statuses, time.monotonic() - started)
    request.node.user_properties.append(("fuzz_requests", len(cases)))
    print(f"{profile_name} {operation_id} {mode}: {row.line()}")
    assert cases, "schemathesis generated no request"
    assert not findings, "\n".join(_describe(f) for f in findings[:10])
