"""Fuzz mode (``--gw-fuzz``): schemathesis-generated requests for every operation the profile serves.

Positive cases are valid per a closed, bounded copy of the request schemas and name the profile's models; negative
cases break the request schema. Every answer goes through schemathesis' checks (no 5xx, a documented status and
content type, a body -- or each SSE event / NDJSON line -- that matches the response schema, errors in the
envelope). Each failed check is graded under the requirement ``conformance.fuzz.requirement_for`` names, once per
(requirement, check, status) with a count and the first request that showed it. Without ``--gw-fuzz`` these cases
are skipped, so a default run sends nothing extra.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from conformance.fuzz import (
    OPERATIONS,
    Finding,
    FuzzModels,
    generate,
    judge,
    judged_requirements,
    modes,
    requirement_for,
    send,
    serves,
)

# Exchanges kept in the transcript: those of the first few requests that produced findings (not all 20+).
KEPT_EXCHANGES = 5

pytestmark = pytest.mark.skipif("not config.getoption('gw_fuzz', False)", reason="fuzz mode is off (run with --gw-fuzz)")


def _cases():
    for op in OPERATIONS.values():
        for mode in modes(op):
            yield pytest.param(op.operation_id, mode, id=f"{op.operation_id}-{mode}",
                               marks=pytest.mark.requirement(*op.requirement_ids()))


@pytest.mark.parametrize(("operation_id", "mode"), list(_cases()))  # a list: pytest 10 refuses a generator
def test_fuzz(operation_id, mode, request, conformance, profile, make_client, expect):
    op = OPERATIONS[operation_id]
    reason = serves(profile, op)
    if reason:
        pytest.skip(reason)
    options = conformance.options
    models = FuzzModels.for_profile(profile, options.model, options.embedding_model)
    cases = generate(operation_id, mode, request.config.getoption("gw_fuzz_examples"),
                     request.config.getoption("gw_fuzz_seed"))
    client = make_client()
    streaming = profile.claims("streaming")
    grouped: dict[tuple[str, str, int], list[Finding]] = defaultdict(list)
    kept = []
    judged: set[str] = set()
    for index, case in enumerate(cases):
        # every other positive chat request streams: the generator alone almost never asks for a stream
        exchange = send(client, op, case, mode, profile, models, stream=streaming and index % 2 == 1)
        findings = judge(op, mode, exchange)
        judged |= judged_requirements(op, exchange)
        exchanges = client.take_transcript()
        if findings and len(kept) < KEPT_EXCHANGES:
            kept += exchanges
        for finding in findings:
            grouped[(requirement_for(op, finding), finding.check, finding.status)].append(finding)
    client.transcript.extend(kept)
    request.node.user_properties.append(("fuzz_requests", len(cases)))  # JUnit XML: how much was fuzzed
    flagged = {requirement for requirement, _, _ in grouped}
    for requirement in sorted(judged - flagged):  # the checks ran on answers they apply to and found nothing
        expect(requirement, True, expected="schemathesis checks pass", received="no finding",
               note=f"{len(cases)} {mode} requests")
    for (requirement, check, status), findings in grouped.items():
        first = findings[0]
        expect(requirement, False, expected=f"schemathesis check {check} passes",
               received=f"{first.title} (HTTP {status}): {first.detail[:800]}",
               note=f"{len(findings)} of {len(cases)} {mode} requests; first: {first.request[:500]}")
