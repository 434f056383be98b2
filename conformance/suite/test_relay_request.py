"""Request relay (sandwich mode): what reaches the upstream is what the client sent
(spec/requirements/relay-request.yaml). Each check judges the upstream's journal entries for its exchange's nonce;
``model`` is never compared (the gateway's model names may differ from the upstream's)."""

from __future__ import annotations

import pytest

from conformance.exchanges import exchange
from conformance.suite.fixtures_transit import Transit, transit_chat
from conformance.transit import client_key_problems, forwarded_problems, journal_authorization_problems

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
PARAMS = ("temperature", "top_p", "max_tokens", "seed", "n", "response_format", "logprobs", "top_logprobs", "user")
STOPS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def _problems_note(problems: list[str]) -> str:
    return "; ".join(problems[:6])


@exchange(view=Transit.of)
def relay_messages(plan):
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "first", "name": "alice"},
                {"role": "assistant", "content": "noted"},
                {"role": "user", "content": [{"type": "text", "text": "second  "}]}]
    return transit_chat(plan, "relaymessages", messages=messages)


@pytest.mark.requirement("RELAY-REQUEST-001")
def test_messages_reach_upstream_unchanged(relay_messages, expect):
    """RELAY-REQUEST-001: "The messages of a chat request MUST reach the upstream unchanged: the same messages in the
    same order, with the same roles, content, names, tool calls and tool_call_ids." """
    relay_messages.needs_attempt()
    problems = forwarded_problems(relay_messages.sent, relay_messages.bodies, ("messages",))
    expect("RELAY-REQUEST-001", not problems, expected=f"messages {relay_messages.sent['messages']}",
           received=_problems_note(problems))


@exchange(view=Transit.of)
def relay_params(plan):
    return [transit_chat(plan, "relayparams", temperature=0.3, top_p=0.9, max_tokens=12, seed=7, n=2,
                         response_format={"type": "text"}, logprobs=True, top_logprobs=2, user="user-1"),
            transit_chat(plan, "relayparams2", max_completion_tokens=9, seed=11)]


@pytest.mark.requirement("RELAY-REQUEST-002")
def test_parameters_reach_upstream_unchanged(relay_params, expect):
    """RELAY-REQUEST-002: "The sampling and output parameters temperature, top_p, max_tokens, max_completion_tokens,
    seed, n, response_format, logprobs, top_logprobs and user MUST reach the upstream with the values the client
    sent." """
    first, second = relay_params
    first.needs_attempt()
    second.needs_attempt()
    problems = (forwarded_problems(first.sent, first.bodies, PARAMS)
                + forwarded_problems(second.sent, second.bodies, ("max_completion_tokens", "seed")))
    expect("RELAY-REQUEST-002", not problems, expected="every parameter as sent", received=_problems_note(problems))


@exchange(view=Transit.of)
def relay_tools(plan):
    return transit_chat(plan, "relaytools", "What is the weather in Paris?", tools=[TOOL], parallel_tool_calls=False,
                        tool_choice={"type": "function", "function": {"name": "get_weather"}})


@pytest.mark.requirement("RELAY-REQUEST-003")
def test_tools_reach_upstream_unchanged(relay_tools, expect):
    """RELAY-REQUEST-003: "tools, tool_choice and parallel_tool_calls MUST reach the upstream with the values the
    client sent." """
    relay_tools.needs_attempt()
    problems = forwarded_problems(relay_tools.sent, relay_tools.bodies, ("tools", "tool_choice", "parallel_tool_calls"))
    expect("RELAY-REQUEST-003", not problems, expected="tools, tool_choice, parallel_tool_calls as sent",
           received=_problems_note(problems))


def _forwarded_or_refused(expect, rid: str, ex: Transit, names: tuple[str, ...], what: str) -> None:
    """Forwarded unchanged by every attempt, or refused with 400 and no attempt carrying other values."""
    ex.needs_attempt(refusal_ok=True)
    problems = forwarded_problems(ex.sent, ex.bodies, names)
    if ex.status == 400 and not ex.journal:
        return
    expect(rid, not problems, expected=f"{what} forwarded unchanged, or a 400", received=_problems_note(problems)
           or ex.summary())


@exchange(view=Transit.of)
def relay_stops(plan):
    return transit_chat(plan, "relaystops", stop=list(STOPS))


@pytest.mark.requirement("RELAY-REQUEST-004")
def test_every_stop_entry_reaches_upstream(relay_stops, expect):
    """RELAY-REQUEST-004: "Every entry of a stop list MUST reach the upstream in order, or the gateway MUST refuse the
    request with 400; silently dropping entries (such as a fifth one) is a violation." """
    _forwarded_or_refused(expect, "RELAY-REQUEST-004", relay_stops, ("stop",), f"stop {STOPS}")


@exchange(view=Transit.of)
def relay_out_of_range(plan):
    return transit_chat(plan, "relayranges", temperature=2.5, top_p=1.5)


@pytest.mark.requirement("RELAY-REQUEST-005")
def test_out_of_range_not_clamped(relay_out_of_range, expect):
    """RELAY-REQUEST-005: "An out-of-range temperature or top_p MUST be either refused with 400 or forwarded
    unchanged; it MUST NOT be silently clamped into range." """
    _forwarded_or_refused(expect, "RELAY-REQUEST-005", relay_out_of_range, ("temperature", "top_p"),
                          "temperature 2.5 and top_p 1.5")


@exchange(view=Transit.of)
def relay_vendor_fields(plan):
    return transit_chat(plan, "relayvendor", enable_thinking=True, vendor_options={"depth": 2})


@pytest.mark.requirement("RELAY-REQUEST-006")
def test_unknown_fields_forwarded_or_refused(relay_vendor_fields, expect):
    """RELAY-REQUEST-006: "A body field the gateway does not know (a vendor or newer parameter) SHOULD be forwarded
    to the upstream or refused with 400 naming it, never silently dropped." """
    ex = relay_vendor_fields
    ex.needs_attempt(refusal_ok=True)
    if ex.status == 400 and not ex.journal:
        expect("RELAY-REQUEST-006", any(n in ex.raw.decode("utf-8", "replace") for n in ("enable_thinking",
                                                                                         "vendor_options")),
               expected="a 400 naming the refused field", received=ex.summary())
        return
    problems = forwarded_problems(ex.sent, ex.bodies, ("enable_thinking", "vendor_options"))
    expect("RELAY-REQUEST-006", not problems, expected="enable_thinking and vendor_options forwarded",
           received=_problems_note(problems))


@exchange(view=Transit.of)
def relay_no_model(plan):
    return transit_chat(plan, "relaynomodel", drop=("model",))


@pytest.mark.requirement("RELAY-REQUEST-007")
def test_no_default_model_injected(relay_no_model, expect):
    """RELAY-REQUEST-007: "A request without model MUST NOT reach the upstream with a model the client did not
    name: the gateway refuses it or forwards it without one." """
    ex = relay_no_model
    ex.needs_attempt(refusal_ok=True)
    named = [b.get("model") for b in ex.bodies if isinstance(b, dict) and "model" in b]
    expect("RELAY-REQUEST-007", not named, expected="no model upstream (or a refusal)",
           received=f"upstream got model {named[0]!r}" if named else ex.summary())


@exchange(view=Transit.of)
def relay_credentials(plan):
    return transit_chat(plan, "relaykey")


@pytest.mark.requirement("RELAY-REQUEST-008")
def test_client_key_stays_at_the_gateway(relay_credentials, conformance, profile, expect):
    """RELAY-REQUEST-008: "The client's credential MUST NOT reach the upstream (in Authorization or any other header)
    unless the profile documents key passthrough." """
    if profile.get("upstream.key_passthrough"):
        pytest.skip(f"profile {profile.name} documents key passthrough (upstream.key_passthrough)")
    if not conformance.api_key:
        pytest.skip("no client key was sent (give --gw-api-key)")
    relay_credentials.needs_attempt()
    problems = client_key_problems(relay_credentials.journal, conformance.api_key)
    expect("RELAY-REQUEST-008", not problems, expected="the gateway's own upstream credential",
           received=_problems_note(problems))


@pytest.mark.requirement("RELAY-REQUEST-009")
def test_upstream_authorization_well_formed(relay_credentials, expect):
    """RELAY-REQUEST-009: "An Authorization header sent upstream MUST be well formed: a scheme and a real token,
    never "Bearer undefined", "Bearer null" or an empty token." """
    relay_credentials.needs_attempt()
    problems = journal_authorization_problems(relay_credentials.journal)
    expect("RELAY-REQUEST-009", not problems, expected="Authorization: <scheme> <real token>",
           received=_problems_note(problems))
