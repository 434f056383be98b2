"""CORS for browser callers: the preflight, Allow-Origin on actual responses (streams and errors included) and
Expose-Headers (spec/requirements/cors.yaml). Every request carries an Origin no gateway allow-lists; the actual
responses judged are shared exchanges that carry it (``browser_headers``), so only the preflight is sent here."""

from __future__ import annotations

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_rest import ORIGIN, RestExchange

ALLOW_ORIGIN = "access-control-allow-origin"
EXPOSABLE = ("x-request-id", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
             "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
             "x-ratelimit-reset-tokens", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _names(value: str | None) -> set[str]:
    return {n.strip().lower() for n in (value or "").split(",") if n.strip()}


def _origin_ok(headers) -> bool:
    return headers.get(ALLOW_ORIGIN) in ("*", ORIGIN)


@exchange(view=RestExchange.of)
def cors_preflight(plan):
    return Spec("OPTIONS", "/chat/completions", auth=False, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def _preflight(rest):
    return rest.request("OPTIONS", "/chat/completions", auth=False, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


@pytest.mark.requirement("CORS-001")
def test_preflight_succeeds_without_a_key(cors_preflight, rest, expect):
    exchange = _preflight(rest)
    expect("CORS-001", exchange.status in (200, 204), expected="HTTP 200 or 204 without Authorization",
           received=f"HTTP {exchange.status}: {exchange.response.text[:200]}")


@pytest.mark.requirement("CORS-002", "CORS-003", "CORS-004")
def test_preflight_allows_origin_post_and_authorization(cors_preflight, rest, expect):
    headers = _preflight(rest).headers
    expect("CORS-002", _origin_ok(headers), expected=f'Access-Control-Allow-Origin "*" or {ORIGIN!r}',
           received=headers.get(ALLOW_ORIGIN))
    methods = _names(headers.get("access-control-allow-methods"))
    expect("CORS-003", "post" in methods or "*" in methods, expected="Access-Control-Allow-Methods with POST or *",
           received=headers.get("access-control-allow-methods"))
    allowed = _names(headers.get("access-control-allow-headers"))
    # "*" never covers Authorization (Fetch standard); it does cover Content-Type for requests without credentials.
    ok = "authorization" in allowed and ("content-type" in allowed or "*" in allowed)
    expect("CORS-004", ok, expected="Access-Control-Allow-Headers naming Authorization and Content-Type",
           received=headers.get("access-control-allow-headers"))


@pytest.mark.requirement("CORS-005", "CORS-006")
def test_actual_response_allows_origin_and_exposes_headers(one_token_chat, rest, expect, chat_model):
    exchange = rest.chat(chat_model)  # the shared one-token completion, which carries the Origin
    expect("CORS-005", _origin_ok(exchange.headers), expected=f'Access-Control-Allow-Origin "*" or {ORIGIN!r}',
           received=f"HTTP {exchange.status}, {exchange.headers.get(ALLOW_ORIGIN)}")
    exposed = _names(exchange.headers.get("access-control-expose-headers"))
    sent = [n for n in EXPOSABLE if n in exchange.headers]
    hidden = [] if "*" in exposed else [n for n in sent if n not in exposed]
    expect("CORS-006", not hidden, expected=f"Access-Control-Expose-Headers listing {sent}",
           received=f"{exchange.headers.get('access-control-expose-headers')} (not exposed: {hidden})")


@pytest.mark.requirement("CORS-005")
def test_stream_allows_origin(request, expect, profile):
    if not profile.claims("streaming"):
        pytest.skip("the profile does not claim streaming")
    stream = request.getfixturevalue("stream_exchange_plain")  # the shared plain stream carries the Origin
    expect("CORS-005", _origin_ok(stream.headers), expected=f'Access-Control-Allow-Origin "*" or {ORIGIN!r} '
           "on the stream", received=f"HTTP {stream.status}, {stream.headers.get(ALLOW_ORIGIN)}")


@pytest.mark.requirement("CORS-007")
def test_error_response_allows_origin(keyless_chat, rest, expect, chat_model):
    exchange = rest.keyless_chat(chat_model)  # the 401 that AUTH-001 judges, sent with the Origin
    if exchange.status != 401:
        expect.untestable("CORS-007", f"a request without a key was not refused 401 (HTTP {exchange.status})")
        return
    expect("CORS-007", _origin_ok(exchange.headers), expected='Access-Control-Allow-Origin on the 401',
           received=exchange.headers.get(ALLOW_ORIGIN))
