"""Upstream failures (sandwich mode): 429, retries and their budget, Retry-After, 5xx, stall, refused connection and
the upstream's 401 (spec/requirements/upstream-failures.yaml). The upstream fails on script, per nonce; the only
real waits are one Retry-After of 1 s (UPSTREAM-FAILURES-004) and, where the profile documents its upstream
timeout, one stall that long (UPSTREAM-FAILURES-006)."""

from __future__ import annotations

import pytest

from conformance.exchanges import exchange
from conformance.suite.fixtures_transit import Transit, sandwich_of, transit_chat
from conformance.transit import (
    attempt_bound,
    envelope_problems,
    failure_problems,
    retry_gap_problems,
)

RATE_LIMITED = {"status": 429, "headers": {"Retry-After": "1", "retry-after-ms": "10"}}
STALL_MARGIN_S = 2.0  # scheduling and connection slack on top of the documented timeout


@exchange(view=Transit.of)
def failure_429(plan):
    return transit_chat(plan, "fail429", respond=RATE_LIMITED)


@pytest.mark.requirement("UPSTREAM-FAILURES-001")
def test_upstream_429_reaches_client_as_429(failure_429, expect):
    """UPSTREAM-FAILURES-001: "An upstream 429 that outlasts the gateway's retries MUST reach the client as a 429 in
    the OpenAI error envelope, not as a 5xx." """
    failure_429.needs_attempt()
    problems = ([] if failure_429.status == 429 else [f"status {failure_429.status}"])
    problems += envelope_problems(failure_429.body, failure_429.raw)
    expect("UPSTREAM-FAILURES-001", not problems, expected="429 in the OpenAI error envelope",
           received="; ".join(problems))


@pytest.mark.requirement("UPSTREAM-FAILURES-002")
def test_upstream_429_keeps_retry_after(failure_429, expect):
    """UPSTREAM-FAILURES-002: "That 429 SHOULD carry a bare Retry-After header when the upstream's did." """
    failure_429.needs_attempt()
    if failure_429.status != 429:
        pytest.skip(f"unobservable: the client got HTTP {failure_429.status}, not the 429 (UPSTREAM-FAILURES-001)")
    expect("UPSTREAM-FAILURES-002", failure_429.headers.get("retry-after") is not None,
           expected="a Retry-After header", received=f"headers {sorted(failure_429.headers.keys())}")


@pytest.mark.requirement("UPSTREAM-FAILURES-003")
def test_retries_within_budget(failure_429, profile, expect):
    """UPSTREAM-FAILURES-003: "The gateway MUST NOT make more upstream attempts for one request than the profile's
    documented budget (upstream.max_attempts), or than 3 when none is documented." """
    failure_429.needs_attempt()
    bound = attempt_bound(profile)
    expect("UPSTREAM-FAILURES-003", len(failure_429.journal) <= bound, expected=f"at most {bound} upstream attempts",
           received=f"{len(failure_429.journal)} attempts for one request answered 429 every time")


@exchange(view=Transit.of)
def failure_retry_after(plan):
    return transit_chat(plan, "failretryafter", respond=[{"status": 503, "headers": {"Retry-After": "1"}},
                                                         {"content": "recovered"}])


@pytest.mark.requirement("UPSTREAM-FAILURES-004")
def test_retry_after_honoured(failure_retry_after, expect):
    """UPSTREAM-FAILURES-004: "After an upstream answer with Retry-After (or retry-after-ms), the gateway MUST NOT
    send the next attempt before that time has passed." The first attempt gets 503 with Retry-After: 1, the next
    the normal answer; a gateway that does not retry passes."""
    failure_retry_after.needs_attempt()
    times = [float(e.get("at") or 0.0) for e in failure_retry_after.journal]
    problems = retry_gap_problems(times, 1.0)
    expect("UPSTREAM-FAILURES-004", not problems, expected="no attempt within 1 s of the 503 with Retry-After: 1",
           received="; ".join(problems))


@exchange(view=Transit.of)
def failure_5xx(plan):
    return transit_chat(plan, "fail5xx", respond=[{"status": 500}, {"status": 502}, {"status": 503}])


@pytest.mark.requirement("UPSTREAM-FAILURES-005")
def test_upstream_5xx_documented_status(failure_5xx, profile, expect):
    """UPSTREAM-FAILURES-005: "An upstream 5xx other than 504 MUST reach the client as the profile's documented
    status and error type (upstream.failures.server_error) in the OpenAI error envelope." """
    failure_5xx.needs_attempt()
    problems = failure_problems(failure_5xx.status, failure_5xx.body, failure_5xx.raw, profile, "server_error")
    expect("UPSTREAM-FAILURES-005", not problems, expected="the documented status and type, in the envelope",
           received="; ".join(problems))


def _stall_skip(plan) -> float:
    timeout = plan.profile.get("timeouts.upstream_seconds")
    if not timeout:
        pytest.skip(f"profile {plan.profile.name} documents no upstream timeout (timeouts.upstream_seconds): waiting "
                    "out an undocumented one is no check")
    if timeout + STALL_MARGIN_S + 2 >= plan.options.request_timeout:
        pytest.skip(f"the documented upstream timeout ({timeout:g} s) needs --gw-request-timeout above "
                    f"{timeout + STALL_MARGIN_S + 2:g} s to be observed")
    return float(timeout)


@exchange(view=Transit.of)
def failure_stall(plan):
    timeout = _stall_skip(plan)
    return transit_chat(plan, "failstall", respond={"stall_ms": int((timeout + STALL_MARGIN_S + 1) * 1000),
                                                    "content": "late"})


@pytest.mark.requirement("UPSTREAM-FAILURES-006")
def test_stall_times_out(failure_stall, profile, expect):
    """UPSTREAM-FAILURES-006: "An upstream that stays silent before its headers MUST give the client the profile's
    timeout status (504 unless documented otherwise, upstream.failures.timeout) within the documented upstream
    timeout; an upstream's own 504 gets the same status." The stalled attempt is still stalled (no journal entry
    yet) when the gateway gives up: the preflight showed the gateway routes to the upstream."""
    timeout = float(profile.get("timeouts.upstream_seconds"))
    problems = failure_problems(failure_stall.status, failure_stall.body, failure_stall.raw, profile, "timeout")
    if failure_stall.elapsed_s > timeout + STALL_MARGIN_S:
        problems.append(f"answered after {failure_stall.elapsed_s:.2f}s; documented timeout {timeout:g}s")
    expect("UPSTREAM-FAILURES-006", not problems, expected=f"the timeout status within {timeout:g}s",
           received="; ".join(problems))


def _unreachable_prefetch(plan) -> bool:
    return False  # sent when its case runs, after the plan: no other exchange may be in flight while it is stopped


@exchange(view=Transit.of, prefetch=_unreachable_prefetch)
def failure_unreachable(plan):
    side = sandwich_of(plan)
    if not side.stoppable:
        pytest.skip("needs --upstream-listen without xdist: the suite stops its own upstream for one request")
    return transit_chat(plan, "failunreachable", unreachable=True)


@pytest.mark.requirement("UPSTREAM-FAILURES-007")
def test_unreachable_upstream(failure_unreachable, profile, expect):
    """UPSTREAM-FAILURES-007: "An upstream that refuses connections MUST give the client the profile's status for an
    unreachable upstream (502 unless documented otherwise) in the OpenAI error envelope." The suite stops its own
    upstream (--upstream-listen) while this one request runs."""
    ex = failure_unreachable
    problems = failure_problems(ex.status, ex.body, ex.raw, profile, "unreachable")
    expect("UPSTREAM-FAILURES-007", not problems, expected="the documented unreachable status, in the envelope",
           received="; ".join(problems))


@exchange(view=Transit.of)
def failure_401(plan):
    return transit_chat(plan, "fail401", respond={"status": 401})


@pytest.mark.requirement("UPSTREAM-FAILURES-008")
def test_upstream_401_not_relayed(failure_401, expect):
    """UPSTREAM-FAILURES-008: "An upstream 401 for the gateway's own key MUST NOT reach the client as a 401: the
    client's key was fine." """
    failure_401.needs_attempt()
    expect("UPSTREAM-FAILURES-008", failure_401.status != 401, expected="not 401 (the client's key was fine)",
           received=f"HTTP {failure_401.status}")
