"""Response relay (sandwich mode): what the upstream produced reaches the client, streamed and not
(spec/requirements/relay-response.yaml). The upstream is scripted to answer exactly (content, finish_reason, tool
calls, refusal, logprobs, n, usage) and the client's answer is judged against the script."""

from __future__ import annotations

import pytest

from conformance.exchanges import exchange
from conformance.suite.fixtures_transit import Transit, transit_chat
from conformance.transit import rate_limit_problems, relayed_problems

CONTENT = "The quick brown fox jumps"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CALL = {"id": "call_gwc0001", "name": "get_weather", "arguments": '{"city": "Paris"}'}
REFUSAL = "I can't help with that."
USAGE = {"prompt_tokens": 17, "completion_tokens": 5}


def _both(plan, label: str, respond: dict, **fields) -> list:
    """The same scripted answer, non-streamed and streamed (each under its own nonce)."""
    return [transit_chat(plan, label, respond=respond, **fields),
            transit_chat(plan, label, respond=respond, stream=True, **fields)]


def _slot(**values) -> dict:
    return {"content": "", "refusal": "", "finish_reason": None, "tool_calls": {}, "logprobs": [], **values}


def _judge(expect, rid: str, exchanges: list[Transit], expected: dict, fields: tuple[str, ...]) -> None:
    for ex in exchanges:
        mode = "stream" if ex.sent.get("stream") else "json"
        ex.needs_attempt()
        if ex.status != 200:
            pytest.skip(f"unobservable: the scripted answer did not reach the client as a 200 ({mode}: "
                        f"{ex.summary()})")
        problems = relayed_problems(ex.view(), {"choices": expected, "usage": None}, fields)
        expect(rid, not problems, expected=f"{mode}: " + ", ".join(f"{f} as the upstream produced" for f in fields),
               received=f"{mode}: " + "; ".join(problems[:6]))


@exchange(view=Transit.of)
def response_content(plan):
    return _both(plan, "respcontent", {"content": CONTENT, "finish_reason": "length"})


@pytest.mark.requirement("RELAY-RESPONSE-001")
def test_content_and_finish_reason_relayed(response_content, expect):
    """RELAY-RESPONSE-001: "The content and finish_reason of every choice MUST reach the client as the upstream
    produced them, streamed and not." """
    _judge(expect, "RELAY-RESPONSE-001", response_content, {0: _slot(content=CONTENT, finish_reason="length")},
           ("content", "finish_reason"))


@exchange(view=Transit.of)
def response_tool_calls(plan):
    return _both(plan, "resptools", {"tool_calls": [CALL]}, tools=[TOOL])


@pytest.mark.requirement("RELAY-RESPONSE-002")
def test_tool_calls_relayed(response_tool_calls, expect):
    """RELAY-RESPONSE-002: "Tool calls MUST reach the client as the upstream produced them: the same ids, function
    names and arguments." """
    calls = {0: {"id": CALL["id"], "name": CALL["name"], "args": CALL["arguments"]}}
    _judge(expect, "RELAY-RESPONSE-002", response_tool_calls, {0: _slot(tool_calls=calls, finish_reason="tool_calls")},
           ("tool_calls", "finish_reason"))


@exchange(view=Transit.of)
def response_refusal(plan):
    return _both(plan, "resprefusal", {"refusal": REFUSAL})


@pytest.mark.requirement("RELAY-RESPONSE-003")
def test_refusal_relayed(response_refusal, expect):
    """RELAY-RESPONSE-003: "A refusal MUST reach the client in refusal (message.refusal or delta.refusal), not moved
    into content or dropped." """
    _judge(expect, "RELAY-RESPONSE-003", response_refusal, {0: _slot(refusal=REFUSAL)}, ("refusal", "content"))


@exchange(view=Transit.of)
def response_logprobs(plan):
    return _both(plan, "resplogprobs", {"content": CONTENT, "logprobs": True}, logprobs=True, top_logprobs=2)


@pytest.mark.requirement("RELAY-RESPONSE-004")
def test_logprobs_relayed(response_logprobs, expect):
    """RELAY-RESPONSE-004: "logprobs the upstream returned MUST reach the client unchanged." Judged by the tokens:
    the upstream scripted with exact content returns one logprob entry per token of it, so the client's entries
    (streamed and not) must spell the content, each with a numeric logprob."""
    for ex in response_logprobs:
        mode = "stream" if ex.sent.get("stream") else "json"
        ex.needs_attempt()
        if ex.status != 200:
            pytest.skip(f"unobservable: the scripted answer did not reach the client as a 200 ({mode}: "
                        f"{ex.summary()})")
        entries = ex.view()["choices"].get(0, {}).get("logprobs") or []
        spelled = "".join(str(e.get("token", "")) for e in entries if isinstance(e, dict))
        numeric = all(isinstance(e, dict) and isinstance(e.get("logprob"), (int, float)) for e in entries)
        expect("RELAY-RESPONSE-004", entries and spelled == CONTENT and numeric,
               expected=f"{mode}: logprobs.content spelling {CONTENT!r}, each with a logprob",
               received=f"{mode}: {len(entries)} entries spelling {spelled!r}")


@exchange(view=Transit.of)
def response_choices(plan):
    return _both(plan, "respchoices", {"content": CONTENT, "n": 3}, n=3)


@pytest.mark.requirement("RELAY-RESPONSE-005")
def test_every_choice_relayed(response_choices, expect):
    """RELAY-RESPONSE-005: "Every choice of an answer with n > 1 MUST reach the client, with the index the upstream
    gave it." """
    _judge(expect, "RELAY-RESPONSE-005", response_choices,
           {i: _slot(content=CONTENT, finish_reason="stop") for i in range(3)}, ("content",))


@exchange(view=Transit.of)
def response_usage(plan):
    return [transit_chat(plan, "respusage", respond={"content": CONTENT, "usage": USAGE}),
            transit_chat(plan, "respusage", respond={"content": CONTENT, "usage": USAGE}, stream=True,
                         stream_options={"include_usage": True})]


@pytest.mark.requirement("RELAY-RESPONSE-006")
def test_usage_equals_upstream(response_usage, expect):
    """RELAY-RESPONSE-006: "The usage numbers the client receives MUST equal the upstream's (billing integrity),
    streamed and not." The upstream is scripted with exact numbers; the journal shows what it sent back."""
    wanted = {**USAGE, "total_tokens": USAGE["prompt_tokens"] + USAGE["completion_tokens"]}
    for ex in response_usage:
        mode = "stream" if ex.sent.get("stream") else "json"
        ex.needs_attempt()
        if ex.status != 200:
            pytest.skip(f"unobservable: the scripted answer did not reach the client as a 200 ({mode}: "
                        f"{ex.summary()})")
        usage = ex.view()["usage"]
        got = {k: usage.get(k) for k in wanted} if isinstance(usage, dict) else usage
        expect("RELAY-RESPONSE-006", got == wanted, expected=f"{mode}: usage {wanted}", received=f"{mode}: {got}")


@exchange(view=Transit.of)
def response_plain(plan):
    return transit_chat(plan, "respplain")


@pytest.mark.requirement("RELAY-RESPONSE-007")
def test_request_id_relayed(response_plain, expect):
    """RELAY-RESPONSE-007: "An answer SHOULD carry the upstream's x-request-id or the gateway's own one in its
    place." """
    response_plain.needs_attempt()
    expect("RELAY-RESPONSE-007", bool(response_plain.headers.get("x-request-id")), expected="an x-request-id header",
           received=f"headers {sorted(response_plain.headers.keys())}")


@pytest.mark.requirement("RELAY-RESPONSE-008")
def test_rate_limit_headers_relayed(response_plain, expect):
    """RELAY-RESPONSE-008: "Rate-limit headers the upstream sent SHOULD be relayed, or replaced by the gateway's own
    headers of the same family with consistent values (remaining not above limit)." """
    response_plain.needs_attempt()
    sent_back = (response_plain.journal[-1].get("response") or {}).get("headers") or {}
    problems = rate_limit_problems(sent_back, response_plain.headers)
    expect("RELAY-RESPONSE-008", not problems, expected="the upstream's x-ratelimit-* relayed or replaced",
           received="; ".join(problems))
