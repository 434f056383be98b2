"""One probe per transit requirement: send through a relay, look at both ends, return the problems found.

Each ``check_*`` takes a ``Probe`` and returns a list of problems (empty: the requirement held). The judging itself is
``conformance.transit``'s, shared with the suite's sandwich checks; what is here is how the harness provokes each
case (upstream failures through ``X-Mock-*``, what the upstream received through its capturing wrapper). The suite's
own checks, proven through the same relay, are in tests/relay/test_suite_matrix.py.

Over 400 lines on purpose: 32 probes, one per requirement of five areas, read best as one table in registry order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from conformance.transit import (
    answer_view,
    attempt_bound,
    buffering_problems,
    clean_finish_problems,
    envelope_problems,
    failure_problems,
    forwarded_problems,
    leaked,
    placeholder_token,
    rate_limit_problems,
    relayed_problems,
    retry_gap_problems,
)
from tests.relay.harness import CLIENT_KEY, MODEL, UPSTREAM_KEY, Probe, Result

CHECKS: dict[str, Callable[[Probe], list[str]]] = {}


def check(requirement: str):
    def register(fn):
        CHECKS[requirement] = fn
        return fn
    return register


def user(text: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def _forwarded(probe: Probe, body: dict, names: tuple[str, ...], headers: dict | None = None) -> list[str]:
    """Problems when an attempt's body differs from what the client sent in one of ``names``."""
    nonce = _nonce_of(body)
    result = probe.chat(body, headers)
    attempts = probe.upstream.attempts(nonce)
    if not attempts:
        return [] if result.status == 400 else [f"no upstream attempt and no 400 (status {result.status})"]
    return forwarded_problems(body, [a.body or {} for a in attempts], names)


def _nonce_of(body: dict) -> str:
    match = re.search(r"n[0-9a-f]{16}", json.dumps(body))
    assert match, "a check's body must carry a nonce"
    return match.group(0)


# -- request relay --------------------------------------------------------------------------------------------------
@check("RELAY-REQUEST-001")
def messages_unchanged(probe: Probe) -> list[str]:
    nonce = probe.nonce()
    body = {"model": MODEL, "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": f"first {nonce}", "name": "alice"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": [{"type": "text", "text": "second  "}]},
    ]}
    return _forwarded(probe, body, ("messages",))


@check("RELAY-REQUEST-002")
def parameters_unchanged(probe: Probe) -> list[str]:
    names = ("temperature", "top_p", "max_tokens", "seed", "n", "response_format", "logprobs", "top_logprobs", "user")
    body = {**user(f"params {probe.nonce()}"), "temperature": 0.3, "top_p": 0.9, "max_tokens": 12, "seed": 7, "n": 2,
            "response_format": {"type": "text"}, "logprobs": True, "top_logprobs": 2, "user": "user-1"}
    other = {**user(f"params {probe.nonce()}"), "max_completion_tokens": 9, "seed": 11}
    return _forwarded(probe, body, names) + _forwarded(probe, other, ("max_completion_tokens", "seed"))


TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}


@check("RELAY-REQUEST-003")
def tools_unchanged(probe: Probe) -> list[str]:
    body = {**user(f"weather in Paris {probe.nonce()}"), "tools": [TOOL], "parallel_tool_calls": False,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    return _forwarded(probe, body, ("tools", "tool_choice", "parallel_tool_calls"))


@check("RELAY-REQUEST-004")
def every_stop_entry(probe: Probe) -> list[str]:
    body = {**user(f"stops {probe.nonce()}"), "stop": ["alpha", "beta", "gamma", "delta", "epsilon"]}
    return _forwarded(probe, body, ("stop",))


@check("RELAY-REQUEST-005")
def no_clamping(probe: Probe) -> list[str]:
    body = {**user(f"ranges {probe.nonce()}"), "temperature": 2.5, "top_p": 1.5}
    return _forwarded(probe, body, ("temperature", "top_p"))


@check("RELAY-REQUEST-006")
def unknown_fields(probe: Probe) -> list[str]:
    body = {**user(f"vendor {probe.nonce()}"), "enable_thinking": True, "vendor_options": {"depth": 2}}
    return _forwarded(probe, body, ("enable_thinking", "vendor_options"))


@check("RELAY-REQUEST-007")
def no_default_model(probe: Probe) -> list[str]:
    body = {"messages": [{"role": "user", "content": f"no model {probe.nonce()}"}]}
    return _forwarded(probe, body, ("model",))


def _credentials(probe: Probe, headers: dict | None = None) -> tuple[Result, list]:
    nonce = probe.nonce()
    return probe.chat(user(f"key {nonce}"), headers), probe.upstream.attempts(nonce)


@check("RELAY-REQUEST-008")
def client_key_stays(probe: Probe) -> list[str]:
    result, attempts = _credentials(probe)
    if probe.config.profile.get("upstream.key_passthrough"):
        return []
    return [f"the client's key reached the upstream in {name}" for a in attempts
            for name, value in a.headers.items() if CLIENT_KEY in value]


@check("RELAY-REQUEST-009")
def authorization_well_formed(probe: Probe) -> list[str]:
    _, attempts = _credentials(probe)
    return [f"malformed Authorization upstream: {token[:10]!r}" for a in attempts
            for token in [placeholder_token(a.headers.get("Authorization"))] if token is not None]


# -- response relay: the client's answer against the upstream's own answer to the same attempt ----------------------
def _view(result: Result) -> dict[str, Any]:
    """Per choice index: content, refusal, finish_reason, tool calls, logprobs; plus usage (streamed or not)."""
    return answer_view(chunks=result.chunks()) if result.streamed else answer_view(result.json)


def _relayed(probe: Probe, body: dict, fields: tuple[str, ...], stream: bool) -> list[str]:
    nonce = _nonce_of(body)
    sent = {**body, "stream": True} if stream else body
    result = probe.chat(sent)
    attempts = probe.upstream.attempts(nonce)
    if result.status != 200 or not attempts:
        return [f"no answer to compare (status {result.status}, {len(attempts)} attempts)"]
    problems = relayed_problems(_view(result), _view(probe.upstream.replay(attempts[-1])), fields)
    mode = "stream" if stream else "json"
    return [f"{mode}: {p}" for p in problems]


def _both(probe: Probe, make: Callable[[], dict], fields: tuple[str, ...]) -> list[str]:
    return _relayed(probe, make(), fields, False) + _relayed(probe, make(), fields, True)


@check("RELAY-RESPONSE-001")
def content_and_finish(probe: Probe) -> list[str]:
    return (_both(probe, lambda: {**user(f"short {probe.nonce()}"), "max_tokens": 3}, ("content", "finish_reason"))
            + _both(probe, lambda: user(f"full {probe.nonce()}"), ("content", "finish_reason")))


@check("RELAY-RESPONSE-002")
def tool_calls(probe: Probe) -> list[str]:
    return _both(probe, lambda: {**user(f"weather in Paris {probe.nonce()}"), "tools": [TOOL],
                                 "tool_choice": "required"}, ("tool_calls", "finish_reason"))


@check("RELAY-RESPONSE-003")
def refusal(probe: Probe) -> list[str]:
    return _both(probe, lambda: user(f"REFUSE {probe.nonce()}"), ("refusal", "content"))


@check("RELAY-RESPONSE-004")
def logprobs(probe: Probe) -> list[str]:
    return _both(probe, lambda: {**user(f"lp {probe.nonce()}"), "logprobs": True, "top_logprobs": 2}, ("logprobs",))


@check("RELAY-RESPONSE-005")
def every_choice(probe: Probe) -> list[str]:
    return _both(probe, lambda: {**user(f"three {probe.nonce()}"), "n": 3}, ("content", "finish_reason"))


@check("RELAY-RESPONSE-006")
def usage(probe: Probe) -> list[str]:
    return (_relayed(probe, user(f"usage {probe.nonce()}"), ("usage",), False)
            + _relayed(probe, {**user(f"usage {probe.nonce()}"), "stream_options": {"include_usage": True}},
                       ("usage",), True))


@check("RELAY-RESPONSE-007")
def request_id(probe: Probe) -> list[str]:
    result = probe.chat(user(f"rid {probe.nonce()}"))
    return [] if result.headers.get("x-request-id") else ["no x-request-id"]


@check("RELAY-RESPONSE-008")
def rate_limit_headers(probe: Probe) -> list[str]:
    nonce = probe.nonce()
    result = probe.chat(user(f"rl {nonce}"))
    attempts = probe.upstream.attempts(nonce)
    theirs = probe.upstream.replay(attempts[-1]).headers if attempts else {}
    return rate_limit_problems(list(theirs), result.headers)


# -- stream relay -------------------------------------------------------------------------------------------------
PACE_TPS = 10  # the upstream sends a chunk every 100 ms


@check("RELAY-STREAM-001")
def no_buffering(probe: Probe) -> list[str]:
    result = probe.chat({**user(f"paced {probe.nonce()}"), "max_tokens": 8, "stream": True},
                        {"X-Mock-Tokens-Per-Second": str(PACE_TPS)})
    times = [e.received_s for e in result.events if e.received_s is not None]
    if len(times) < 5:
        return [f"only {len(times)} events arrived"]
    # tolerance: half the upstream's own spread; a buffered stream arrives in one burst (spread near 0)
    return buffering_problems(times, (len(times) - 2) / PACE_TPS)


@check("RELAY-STREAM-002")
def cut_is_not_finished(probe: Probe) -> list[str]:
    result = probe.chat({**user(f"cut {probe.nonce()}"), "stream": True}, {"X-Mock-Stream-Cut-After": "3"})
    return clean_finish_problems(result.done, result.chunks())


@check("RELAY-STREAM-003")
def error_event_relayed(probe: Probe) -> list[str]:
    result = probe.chat({**user(f"err {probe.nonce()}"), "stream": True}, {"X-Mock-Error-After": "3"})
    return [] if result.errors() else ["the upstream's error event did not reach the client"]


@check("RELAY-STREAM-004")
def no_unrequested_usage(probe: Probe) -> list[str]:
    if probe.config.profile.get("stream.auto_include_usage"):
        return []
    result = probe.chat({**user(f"nousage {probe.nonce()}"), "stream": True})
    return [f"unrequested usage chunk {c.get('usage')}" for c in result.chunks() if c.get("usage")]


# -- upstream failures ------------------------------------------------------------------------------------------
FAST_429 = {"X-Mock-Status": "429", "X-Mock-Retry-After-Ms": "10"}


def _envelope(result: Result) -> list[str]:
    return envelope_problems(result.json, result.raw)


@check("UPSTREAM-FAILURES-001")
def rate_limit_status(probe: Probe) -> list[str]:
    result = probe.chat(user(f"429 {probe.nonce()}"), FAST_429)
    return ([] if result.status == 429 else [f"status {result.status} for an upstream 429"]) + _envelope(result)


@check("UPSTREAM-FAILURES-002")
def retry_after_kept(probe: Probe) -> list[str]:
    result = probe.chat(user(f"429 {probe.nonce()}"), FAST_429)
    if result.status != 429:
        return []
    return [] if result.headers.get("retry-after") else ["the 429 has no Retry-After"]


@check("UPSTREAM-FAILURES-003")
def retry_budget(probe: Probe) -> list[str]:
    nonce = probe.nonce()
    probe.chat(user(f"429 {nonce}"), FAST_429)
    count = len(probe.upstream.attempts(nonce))
    bound = attempt_bound(probe.config.profile)
    return [] if count <= bound else [f"{count} upstream attempts, budget {bound}"]


@check("UPSTREAM-FAILURES-004")
def retry_after_honoured(probe: Probe) -> list[str]:
    nonce = probe.nonce()  # the first attempt gets 503 with Retry-After: 1 (no retry-after-ms); the second succeeds
    probe.chat(user(f"503 {nonce}"), {"X-Mock-Status": "503", "X-Mock-Fail-Times": "1", "X-Mock-Fail-Key": nonce})
    attempts = probe.upstream.attempts(nonce)
    return retry_gap_problems([a.at for a in attempts], 1.0)


def _failure(result: Result, probe: Probe, kind: str) -> list[str]:
    return failure_problems(result.status, result.json, result.raw, probe.config.profile, kind)


@check("UPSTREAM-FAILURES-005")
def server_error(probe: Probe) -> list[str]:
    return _failure(probe.chat(user(f"500 {probe.nonce()}"), {"X-Mock-Status": "500"}), probe, "server_error")


STALL_MS = 3000  # well beyond RELAY_TIMEOUT plus the check's margin


@check("UPSTREAM-FAILURES-006")
def stall_times_out(probe: Probe) -> list[str]:
    result = probe.chat(user(f"stall {probe.nonce()}"), {"X-Mock-Latency-Ms": str(STALL_MS)})
    problems = _failure(result, probe, "timeout")
    bound = probe.config.upstream_timeout + 0.5  # the documented timeout (the relay's) and a scheduling margin
    return problems + ([f"answered after {result.elapsed:.2f}s, timeout {probe.config.upstream_timeout}s"]
                       if result.elapsed > bound else [])


@check("UPSTREAM-FAILURES-007")
def unreachable(probe: Probe) -> list[str]:
    return _failure(probe.chat(user(f"down {probe.nonce()}")), probe, "unreachable")


@check("UPSTREAM-FAILURES-008")
def upstream_401(probe: Probe) -> list[str]:
    result = probe.chat(user(f"401 {probe.nonce()}"), {"X-Mock-Status": "401"})
    return [f"status {result.status}: the upstream's 401 for the relay's key reached the client"] \
        if result.status == 401 else []


# -- disclosure -------------------------------------------------------------------------------------------------
def _exchanges(probe: Probe) -> list[Result]:
    """A success, a stream, and the failures whose messages are the likeliest to name the upstream."""
    return [probe.chat(user(f"ok {probe.nonce()}")), probe.chat({**user(f"s {probe.nonce()}"), "stream": True}),
            probe.chat(user(f"503 {probe.nonce()}"), {"X-Mock-Status": "503", "X-Mock-Retry-After-Ms": "10"}),
            probe.chat(user(f"401 {probe.nonce()}"), {"X-Mock-Status": "401"}),
            probe.chat(user(f"429 {probe.nonce()}"), FAST_429), probe.get("/v1/models")]


def _leaks(probe: Probe, needles: dict[str, str]) -> list[str]:
    return [f"{what} visible to the client (status {r.status})" for r in _exchanges(probe)
            for what in leaked(r.visible(), needles)]


@check("DISCLOSURE-001")
def no_upstream_url(probe: Probe) -> list[str]:
    address = probe.config.upstream.split("://", 1)[-1]
    return _leaks(probe, {"the upstream address": address})


@check("DISCLOSURE-002")
def no_upstream_key(probe: Probe) -> list[str]:
    return _leaks(probe, {"the upstream key": UPSTREAM_KEY})


@check("DISCLOSURE-003")
def no_upstream_banner(probe: Probe) -> list[str]:
    return _leaks(probe, {"the upstream's Server banner": probe.upstream.banner})
