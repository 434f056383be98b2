"""One judge per transit requirement: send through a relay, look at both ends, return the problems found.

Each ``check_*`` takes a ``Probe`` and returns a list of problems (empty: the requirement held). They are the
sandwich checks in miniature, written against the harness (upstream failures through ``X-Mock-*``); the suite's
own versions will use the scripting API and the journal over HTTP instead.

Over 400 lines on purpose: 32 judges, one per requirement of five areas, read best as one table in registry order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

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
    problems = []
    for attempt in attempts:
        received = attempt.body or {}
        for name in names:
            if received.get(name, "<absent>") != body.get(name, "<absent>"):
                problems.append(f"{name}: sent {body.get(name, '<absent>')!r}, upstream got "
                                f"{received.get(name, '<absent>')!r}")
    return problems


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


PLACEHOLDERS = {"undefined", "null", "none", "nil", ""}


@check("RELAY-REQUEST-009")
def authorization_well_formed(probe: Probe) -> list[str]:
    _, attempts = _credentials(probe)
    problems = []
    for a in attempts:
        value = a.headers.get("Authorization")
        if value is None:
            continue
        scheme, _, token = value.partition(" ")
        if not scheme or token.strip().lower() in PLACEHOLDERS:
            problems.append(f"malformed Authorization upstream: {scheme} {token[:10]!r}")
    return problems


# -- response relay: the client's answer against the upstream's own answer to the same attempt ----------------------
def _view(result: Result) -> dict[str, Any]:
    """Per choice index: content, refusal, finish_reason, tool calls, logprobs; plus usage (streamed or not)."""
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    if result.streamed:
        for chunk in result.chunks():
            usage = chunk.get("usage") or usage
            for c in chunk.get("choices") or []:
                slot = choices.setdefault(c.get("index", 0), {"content": "", "refusal": "", "finish_reason": None,
                                                             "tool_calls": {}, "logprobs": []})
                delta = c.get("delta") or {}
                slot["content"] += delta.get("content") or ""
                slot["refusal"] += delta.get("refusal") or ""
                slot["finish_reason"] = c.get("finish_reason") or slot["finish_reason"]
                for call in delta.get("tool_calls") or []:
                    merged = slot["tool_calls"].setdefault(call.get("index", 0), {"id": "", "name": "", "args": ""})
                    fn = call.get("function") or {}
                    merged["id"] += call.get("id") or ""
                    merged["name"] += fn.get("name") or ""
                    merged["args"] += fn.get("arguments") or ""
                slot["logprobs"] += ((c.get("logprobs") or {}).get("content") or [])
    elif isinstance(result.json, dict):
        usage = result.json.get("usage")
        for c in result.json.get("choices") or []:
            message = c.get("message") or {}
            choices[c.get("index", 0)] = {
                "content": message.get("content") or "", "refusal": message.get("refusal") or "",
                "finish_reason": c.get("finish_reason"),
                "tool_calls": {i: {"id": t.get("id"), "name": t["function"]["name"], "args": t["function"]["arguments"]}
                               for i, t in enumerate(message.get("tool_calls") or [])},
                "logprobs": (c.get("logprobs") or {}).get("content") or []}
    return {"choices": choices, "usage": usage}


def _relayed(probe: Probe, body: dict, fields: tuple[str, ...], stream: bool) -> list[str]:
    nonce = _nonce_of(body)
    sent = {**body, "stream": True} if stream else body
    result = probe.chat(sent)
    attempts = probe.upstream.attempts(nonce)
    if result.status != 200 or not attempts:
        return [f"no answer to compare (status {result.status}, {len(attempts)} attempts)"]
    mine, theirs = _view(result), _view(probe.upstream.replay(attempts[-1]))
    problems = []
    if "usage" in fields and mine["usage"] != theirs["usage"]:
        problems.append(f"usage {mine['usage']} != upstream's {theirs['usage']}")
    if sorted(mine["choices"]) != sorted(theirs["choices"]):
        problems.append(f"choices {sorted(mine['choices'])} != upstream's {sorted(theirs['choices'])}")
    for index, choice in theirs["choices"].items():
        got = mine["choices"].get(index, {})
        problems += [f"choice {index} {name}: {got.get(name)!r} != upstream's {choice[name]!r}"
                     for name in fields if name != "usage" and got.get(name) != choice[name]]
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


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@check("RELAY-RESPONSE-008")
def rate_limit_headers(probe: Probe) -> list[str]:
    nonce = probe.nonce()
    result = probe.chat(user(f"rl {nonce}"))
    attempts = probe.upstream.attempts(nonce)
    theirs = probe.upstream.replay(attempts[-1]).headers if attempts else {}
    problems = []
    for name in (n.lower() for n in theirs if n.lower().startswith("x-ratelimit-")):
        if name not in result.headers:
            problems.append(f"{name} not relayed nor replaced")
    for kind in ("requests", "tokens"):
        limit = _number(result.headers.get(f"x-ratelimit-limit-{kind}"))
        remaining = _number(result.headers.get(f"x-ratelimit-remaining-{kind}"))
        if limit is not None and remaining is not None and remaining > limit:
            problems.append(f"remaining {kind} {remaining} above limit {limit}")
    return problems


# -- stream relay -------------------------------------------------------------------------------------------------
PACE_TPS = 10  # the upstream sends a chunk every 100 ms


@check("RELAY-STREAM-001")
def no_buffering(probe: Probe) -> list[str]:
    result = probe.chat({**user(f"paced {probe.nonce()}"), "max_tokens": 8, "stream": True},
                        {"X-Mock-Tokens-Per-Second": str(PACE_TPS)})
    times = [e.received_s for e in result.events if e.received_s is not None]
    if len(times) < 5:
        return [f"only {len(times)} events arrived"]
    spread, expected = times[-1] - times[0], (len(times) - 2) / PACE_TPS
    # tolerance: half the upstream's own spread; a buffered stream arrives in one burst (spread near 0)
    return [] if spread >= expected / 2 else [f"{len(times)} events arrived within {spread:.3f}s; the upstream "
                                              f"spread them over {expected:.1f}s"]


@check("RELAY-STREAM-002")
def cut_is_not_finished(probe: Probe) -> list[str]:
    result = probe.chat({**user(f"cut {probe.nonce()}"), "stream": True}, {"X-Mock-Stream-Cut-After": "3"})
    problems = ["[DONE] after a cut stream"] if result.done else []
    finished = [c["finish_reason"] for ch in result.chunks() for c in ch.get("choices") or [] if c.get("finish_reason")]
    return problems + [f"invented finish_reason {f!r}" for f in finished]


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
    err = result.json.get("error") if isinstance(result.json, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("message"), str) or not isinstance(err.get("type"), str):
        return [f"no OpenAI error envelope: {result.raw[:80]!r}"]
    return []


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
    return [] if count <= probe.attempt_bound else [f"{count} upstream attempts, budget {probe.attempt_bound}"]


@check("UPSTREAM-FAILURES-004")
def retry_after_honoured(probe: Probe) -> list[str]:
    nonce = probe.nonce()  # the first attempt gets 503 with Retry-After: 1 (no retry-after-ms); the second succeeds
    probe.chat(user(f"503 {nonce}"), {"X-Mock-Status": "503", "X-Mock-Fail-Times": "1", "X-Mock-Fail-Key": nonce})
    attempts = probe.upstream.attempts(nonce)
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:], strict=False)]
    return [f"attempt {i + 2} {gap:.3f}s after the previous, Retry-After was 1s" for i, gap in enumerate(gaps)
            if gap < 0.9]


def _documented(probe: Probe, kind: str) -> tuple[set[int], str | None]:
    entry = probe.config.profile.get(f"upstream.failures.{kind}") or {}
    status = entry.get("status") or (504 if kind == "timeout" else 502)
    return set(status if isinstance(status, list) else [status]), entry.get("type")


def _failure(result: Result, probe: Probe, kind: str) -> list[str]:
    statuses, etype = _documented(probe, kind)
    problems = [] if result.status in statuses else [f"status {result.status}, documented {sorted(statuses)}"]
    problems += _envelope(result)
    if etype and not problems and result.json["error"]["type"] != etype:
        problems.append(f"type {result.json['error']['type']!r}, documented {etype!r}")
    return problems


@check("UPSTREAM-FAILURES-005")
def server_error(probe: Probe) -> list[str]:
    return _failure(probe.chat(user(f"500 {probe.nonce()}"), {"X-Mock-Status": "500"}), probe, "server_error")


STALL_MS = 2000


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
            for what, needle in needles.items() if needle and needle in r.visible()]


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
