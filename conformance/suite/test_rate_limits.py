"""Rate limits: the profile's header family on successful responses, and the 429 itself
(spec/requirements/rate-limits.yaml).

The header checks judge the shared one-token chat completion (``rest.chat``, which the model and CORS checks judge
too); RATE-LIMITS-012 compares it with an earlier completion of the same key, the suite's basic exchange. The 429
burst spends a key's per-minute quota. Against the embedded server it always runs, on a key of its own that the
server limits to ``conformance.embedded.BURST_LIMIT`` requests a minute (``Capabilities.burst_key``), so it costs a
handful of requests and leaves
the run's key alone. Against a real gateway it spends the run's key's quota, so it runs only with ``--gw-allow-burst``
and then waits out Retry-After (at most MAX_BURST_WAIT) so that later checks are not starved.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_rest import envelope_problems

GO_DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$")
INTEGER = re.compile(r"^\d+$")
OPENAI_REQUEST_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
OPENAI_TOKEN_HEADERS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
X_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
# (limit header, remaining header) of the requests budget, per header family.
REQUEST_PAIR = {"openai": ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests"),
                "x-ratelimit": ("X-RateLimit-Limit", "X-RateLimit-Remaining")}
# The longest Retry-After every SDK version honours (openai-node and openai-python < 2.52: 60 s; contract.md §2.2).
MAX_SDK_RETRY_AFTER = 60
# The longest the suite waits out a real gateway's Retry-After after its burst.
MAX_BURST_WAIT = 120


def _family(profile) -> str:
    return profile.get("rate_limits.headers") or "none"


def _probe(rest, chat_model, expect, req_id):
    probe = rest.chat(chat_model)
    if probe.status != 200:
        expect.untestable(req_id, f"the chat completion failed: HTTP {probe.status}: {probe.response.text[:200]}")
    return probe


def _missing(headers, names) -> list[str]:
    return [n for n in names if n not in headers]


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _int(value) -> int | None:
    return int(value) if isinstance(value, str) and INTEGER.match(value.strip()) else None


def retry_after_seconds(value) -> float | None:
    """Retry-After read as both SDKs read it: seconds (integer or fraction), else an HTTP-date; None if neither."""
    if not isinstance(value, str):
        return None
    try:
        seconds = float(value.strip())
        return seconds if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()


@pytest.mark.requirement("RATE-LIMITS-005", "RATE-LIMITS-008")
def test_openai_headers_are_sent(one_token_chat, rest, chat_model, expect):
    first = _probe(rest, chat_model, expect, "RATE-LIMITS-005")
    expect("RATE-LIMITS-005", not _missing(first.headers, OPENAI_REQUEST_HEADERS), expected=OPENAI_REQUEST_HEADERS,
           received=f"missing {_missing(first.headers, OPENAI_REQUEST_HEADERS)}")
    expect("RATE-LIMITS-008", not _missing(first.headers, OPENAI_TOKEN_HEADERS), expected=OPENAI_TOKEN_HEADERS,
           received=f"missing {_missing(first.headers, OPENAI_TOKEN_HEADERS)}")


@pytest.mark.requirement("RATE-LIMITS-006", "RATE-LIMITS-007")
def test_openai_header_values(one_token_chat, rest, chat_model, expect):
    first = _probe(rest, chat_model, expect, "RATE-LIMITS-006")
    for budget in ("requests", "tokens"):
        limit, remaining = (first.headers.get(f"x-ratelimit-{k}-{budget}") for k in ("limit", "remaining"))
        if limit is not None or remaining is not None:
            ok = _int(limit) is not None and _int(remaining) is not None and _int(remaining) <= _int(limit)
            expect("RATE-LIMITS-006", ok, expected="non-negative integers, remaining <= limit",
                   received=f"limit {limit!r}, remaining {remaining!r}", note=budget)
        reset = first.headers.get(f"x-ratelimit-reset-{budget}")
        if reset is not None:
            expect("RATE-LIMITS-007", GO_DURATION.match(reset.strip()), expected='a Go duration ("1s", "6m0s", '
                   '"72ms")', received=reset, note=f"x-ratelimit-reset-{budget}")


def _iso_datetime(text: str) -> bool:
    try:
        return "T" in text.upper() and datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00")) is not None
    except ValueError:
        return False


@pytest.mark.requirement("RATE-LIMITS-009", "RATE-LIMITS-010", "RATE-LIMITS-011")
def test_x_ratelimit_headers(one_token_chat, rest, chat_model, expect):
    first = _probe(rest, chat_model, expect, "RATE-LIMITS-009")
    missing = _missing(first.headers, X_HEADERS)
    expect("RATE-LIMITS-009", not missing, expected=X_HEADERS, received=f"missing {missing}")
    reset = first.headers.get("X-RateLimit-Reset")
    if reset is not None:
        expect("RATE-LIMITS-010", _iso_datetime(reset), expected="an ISO 8601 date-time", received=reset)
    limit, remaining = first.headers.get("X-RateLimit-Limit"), first.headers.get("X-RateLimit-Remaining")
    if limit is not None and remaining is not None:
        ok = _int(limit) is not None and _int(remaining) is not None and _int(remaining) <= _int(limit)
        expect("RATE-LIMITS-011", ok, expected="non-negative integers, remaining <= limit",
               received=f"limit {limit!r}, remaining {remaining!r}")


def _request_headers(profile) -> tuple[str, str]:
    family = _family(profile)
    if family not in REQUEST_PAIR:
        pytest.skip(f"the profile documents no rate-limit headers (rate_limits.headers: {family})")
    return REQUEST_PAIR[family]


@pytest.mark.requirement("RATE-LIMITS-012")
def test_remaining_decreases(one_token_chat, rest, chat_basic, chat_model, expect, profile):
    _, remaining_name = _request_headers(profile)
    # Two completions of the same key, the basic one first (the suite's first requests): no request of its own.
    first, second = chat_basic, _probe(rest, chat_model, expect, "RATE-LIMITS-012")
    values = [_int(e.headers.get(remaining_name)) for e in (first, second)]
    if None in values or values[1] > values[0]:
        # unreadable values are -006/-011's; a higher second value means the window rolled over (or, in a partial
        # run, that the probe was sent before the basic exchange)
        return
    # Other clients of the same key (xdist workers on a real gateway) may take more than one in between.
    expect("RATE-LIMITS-012", values[1] < values[0], expected=f"{remaining_name} decreasing by one",
           received=f"{values[0]} then {values[1]}")


def _documented_limit(profile, tier: str | None = None) -> int | None:
    tiers = profile.get("rate_limits.tiers") or {}
    return tiers.get(tier or profile.get("rate_limits.default_tier")) or profile.get("rate_limits.requests_per_minute")


@pytest.mark.requirement("RATE-LIMITS-013")
def test_limit_matches_the_documented_tier(one_token_chat, rest, chat_model, expect, profile):
    limit_name, _ = _request_headers(profile)
    documented = _documented_limit(profile)
    if documented is None:
        pytest.skip("the profile documents no requests-per-minute limit")
    first = _probe(rest, chat_model, expect, "RATE-LIMITS-013")
    value = first.headers.get(limit_name)
    if _int(value) is not None:
        expect("RATE-LIMITS-013", _int(value) == documented, expected=f"{limit_name}: {documented}", received=value)


def _tier_keys(plan) -> dict[str, str]:
    """Each documented tier whose key is known (``--gw-role-key tier-<name>=KEY``, or the embedded server's)."""
    tiers = plan.profile.get("rate_limits.tiers") or {}
    keyed = {tier: key for tier in tiers if (key := plan.role_key(f"tier-{tier}"))}
    if not keyed:
        pytest.skip("no tier key: pass --gw-role-key tier-<name>=KEY for a documented tier" if tiers
                    else "the profile documents no tiers")
    return keyed


@exchange(view=lambda rec: rec.response)
def rate_limit_tier_keys(plan):
    """One one-token completion per documented tier whose key is known, in the tiers' order."""
    body = {"model": plan.chat_model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    return [Spec.post("/chat/completions", body, key=key) for key in _tier_keys(plan).values()]


@pytest.mark.requirement("RATE-LIMITS-013")
def test_tier_keys_get_their_documented_limit(rate_limit_tier_keys, conformance, expect, profile):
    limit_name, _ = _request_headers(profile)
    tiers = profile.get("rate_limits.tiers") or {}
    keyed = [tier for tier in tiers if conformance.role_key(f"tier-{tier}")]
    for tier, response in zip(keyed, rate_limit_tier_keys, strict=True):
        value = response.headers.get(limit_name)
        expect("RATE-LIMITS-013", _int(value) == tiers[tier], expected=f"{limit_name}: {tiers[tier]} (tier {tier})",
               received=value)


# -- the 429 burst (by default on the embedded server, opt-in against a real gateway) -------------------------
def _is_429(rec) -> bool:
    return rec.status == 429


@exchange(sequential=True, until=_is_429, prefetch=lambda plan: plan.capabilities.burst_key is not None)
def burst(plan):
    """One-token chat completions in a row until the first 429 (a sequential group), one burst per run.

    Where the target has a key of its own for it (the embedded server's, limited to ``BURST_LIMIT`` a minute; no
    check needs a documented tier's limit: they judge the 429 itself) it goes with the plan, since it spends no
    other quota. Against a real gateway it runs only with --gw-allow-burst, on the run's key up to the documented
    limit, when its first case asks (after the planned exchanges), and then waits out Retry-After.
    """
    caps = plan.capabilities
    if caps.burst_skip:
        pytest.skip(caps.burst_skip)
    limit = caps.burst_limit or _documented_limit(plan.profile)
    body = {"model": plan.chat_model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    return [Spec.post("/chat/completions", body, key=caps.burst_key, wants_429=True)] * ((limit or 100) + 5)


_WAITED: set = set()


@pytest.fixture
def burst_429(burst, capabilities, conformance):
    """The first 429 of the burst (its exchanges are in the case's transcript)."""
    hit = next((rec for rec in burst if rec.status == 429), None)
    if hit is None:
        pytest.skip(f"no 429 after {len(burst)} requests: the limit is above the burst")
    if capabilities.burst_key is None and not conformance.options.replay and id(burst) not in _WAITED:
        _WAITED.add(id(burst))  # the run's own key: later checks must not be starved
        time.sleep(min(retry_after_seconds(hit.headers.get("retry-after")) or 60, MAX_BURST_WAIT))
    return hit.response


@pytest.mark.requirement("RATE-LIMITS-001", "RATE-LIMITS-014")
def test_burst_gets_429_envelope(burst_429, expect):
    problems = envelope_problems(burst_429)
    expect("RATE-LIMITS-001", not problems, expected="429 with the error envelope", received=problems)
    if not problems:
        code = burst_429.json()["error"].get("code")
        expect("RATE-LIMITS-014", code == "rate_limit_exceeded", expected='code "rate_limit_exceeded"', received=code)


@pytest.mark.requirement("RATE-LIMITS-002", "RATE-LIMITS-003", "RATE-LIMITS-004", "RATE-LIMITS-016",
                          "RATE-LIMITS-017")
def test_burst_retry_after(burst_429, expect, profile):
    value = burst_429.headers.get("retry-after")
    expect("RATE-LIMITS-002", value is not None, expected="a Retry-After header", received="absent")
    if value is None:
        return
    read = retry_after_seconds(value)
    # An HTTP-date a second in the past by the time it is read still names "now": judge the form, not the clock.
    expect("RATE-LIMITS-003", read is not None and (read > 0 or not _is_number(value)),
           expected="a positive number of seconds or an HTTP-date", received=value)
    seconds = math.ceil(read) if read is not None else None
    if seconds is not None:
        expect("RATE-LIMITS-004", seconds <= MAX_SDK_RETRY_AFTER, expected=f"<= {MAX_SDK_RETRY_AFTER} seconds",
               received=value)
    documented = profile.get("rate_limits.retry_after")
    if documented is not None:
        expect("RATE-LIMITS-017", value.strip() == str(documented), expected=f"Retry-After: {documented} "
               "(the profile's doc)", received=value)
    ms = burst_429.headers.get("retry-after-ms")
    if ms is not None:
        try:
            ms_value = float(ms)
        except ValueError:
            ms_value = -1.0
        consistent = ms_value >= 0 and (seconds is None or abs(math.ceil(ms_value / 1000) - seconds) <= 1)
        expect("RATE-LIMITS-016", consistent, expected=f"milliseconds >= 0 consistent with Retry-After {value}",
               received=ms)


@pytest.mark.requirement("RATE-LIMITS-015")
def test_burst_429_carries_rate_limit_headers(burst_429, expect, profile):
    _, remaining_name = _request_headers(profile)
    value = burst_429.headers.get(remaining_name)
    expect("RATE-LIMITS-015", value is not None and _int(value) == 0, expected=f"{remaining_name}: 0",
           received=value if value is not None else "absent")
