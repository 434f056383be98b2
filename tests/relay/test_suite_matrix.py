"""The suite's sandwich checks proven against the reference relay: the correct relay fails none of the transit
requirements, each relay fault fails exactly its own, each valid variant raises nothing. Every row is a real suite
run (``--target-url <relay> --upstream <reference server>``), not the relay tests' own judges.

Rows that must see UPSTREAM-FAILURES-007 (the correct relay, the variants, the fault of 007) run with
``--upstream-listen``: the suite stops its own upstream for that one request. The other fault rows share one
reference server per session. ~4 s a row (a Retry-After of 1 s, a paced stream, a 1 s upstream timeout).
"""

from __future__ import annotations

import httpx
import pytest

import gateway_spec
from reference_relay.faults import catalogue
from reference_relay.variants import VARIANTS
from tests.relay import suite_matrix

TRANSIT_AREAS = ("relay-request", "relay-response", "relay-stream", "upstream-failures", "disclosure")
TRANSIT = sorted(rid for rid, req in gateway_spec.load_requirements().items() if req.area in TRANSIT_AREAS)
UNREACHABLE = "UPSTREAM-FAILURES-007"


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory):
    return suite_matrix.timeout_profile(tmp_path_factory.mktemp("suite-matrix-profile"))


@pytest.fixture(scope="module")
def shared_upstream():
    server = suite_matrix.start_upstream()
    yield server
    server.stop()


def _verdicts(profile_file, tmp_path, upstream=None, **relay):
    verdicts, code = suite_matrix.run_row(profile_file, tmp_path, upstream_url=upstream.url if upstream else None,
                                          **relay)
    assert sorted(r for r in verdicts if r in TRANSIT) == TRANSIT, "a transit requirement went unjudged"
    return verdicts, code


def test_correct_relay_fails_no_transit_requirement(profile_file, tmp_path):
    verdicts, code = _verdicts(profile_file, tmp_path)
    assert suite_matrix.broken(verdicts) == {}
    assert {verdicts[r] for r in TRANSIT} == {"PASS"}, {r: verdicts[r] for r in TRANSIT if verdicts[r] != "PASS"}
    assert code == 0


SDK_UPSTREAM_FAILURES = ("SDK-010", "SDK-014", "SDK-019")  # 429, mid-stream error, 5xx through the openai SDK


def test_sdk_upstream_failure_checks_run_in_sandwich_mode(profile_file, tmp_path, shared_upstream):
    """The SDK's exception classes for an upstream 429, 5xx and mid-stream error are judged through a gateway in
    sandwich mode (the upstream scripted under a nonce in the SDK call's content), not skipped as on a bare
    --target-url; a replay of the run's recording judges the same (the control requests are recorded)."""
    live, code = suite_matrix.run_row(profile_file, tmp_path / "live", upstream_url=shared_upstream.url,
                                      requirements=("SDK-01[049]",))
    assert live == dict.fromkeys(SDK_UPSTREAM_FAILURES, "PASS") and code == 0
    replayed, code = suite_matrix.replay_row(profile_file, tmp_path / "live", tmp_path / "replay",
                                             requirements=("SDK-01[049]",))
    assert replayed == live and code == 0


@pytest.mark.parametrize(("fault", "broken"), [("UPSTREAM-FAILURES-001", "SDK-010"), ("RELAY-STREAM-003", "SDK-014")])
def test_sdk_upstream_failure_checks_fail_on_a_relay_fault(profile_file, tmp_path, shared_upstream, fault, broken):
    """Negative controls in sandwich mode: a relay answering an upstream 429 with a 5xx breaks the SDK's
    RateLimitError, one swallowing the upstream's error event breaks the SDK's mid-stream APIError."""
    verdicts, _ = suite_matrix.run_row(profile_file, tmp_path, upstream_url=shared_upstream.url, faults=(fault,),
                                       requirements=("SDK-01[049]",))
    assert suite_matrix.broken(verdicts) == {broken: "FAIL"}, verdicts


@pytest.mark.matrix
@pytest.mark.parametrize("fault", TRANSIT)
def test_relay_fault_fails_exactly_its_requirement(profile_file, tmp_path, shared_upstream, fault):
    upstream = None if fault == UNREACHABLE else shared_upstream
    if upstream is not None:  # every row starts from a fresh journal and fresh counters
        httpx.post(upstream.url + "/_mock/reset", timeout=5).raise_for_status()
    verdicts, _ = _verdicts(profile_file, tmp_path, upstream, faults=(fault,))
    assert set(suite_matrix.broken(verdicts)) == {fault}, (
        f"fault {fault} ({catalogue()[fault].description}): broken {suite_matrix.broken(verdicts)}")


@pytest.mark.matrix
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_relay_variant_raises_nothing(profile_file, tmp_path, variant):
    verdicts, _ = _verdicts(profile_file, tmp_path, variants=(variant,))
    assert suite_matrix.broken(verdicts) == {}
    assert {verdicts[r] for r in TRANSIT} == {"PASS"}, {r: verdicts[r] for r in TRANSIT if verdicts[r] != "PASS"}
