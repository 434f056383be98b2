"""Tool calls, non-streamed and streamed, tool_choice, parallel calls and the tool-result round trip
(spec/requirements/tools.yaml)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conformance.exchanges import Spec, exchange
from conformance.expect import StopCase
from conformance.suite.fixtures_stream import (
    PARALLEL_PROMPT,
    TIME_TOOL,
    TOOL_MAX_TOKENS,
    TOOL_PROMPT,
    WEATHER_TOOL,
    JsonExchange,
    chat_body,
    delta_of,
    items_by_choice,
    stream_tool_call,
    tool_arguments,
)

TOOLS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER_TOOL, TIME_TOOL)}


def first_choice_or_stop(expect, ex, ids) -> dict:
    """choices[0] of a 200 JSON answer; otherwise every id is 'not testable' and the case stops."""
    try:
        choice = ex.body["choices"][0]
        if ex.status == 200 and isinstance(choice, dict):
            return choice
    except (TypeError, KeyError, IndexError):
        pass
    for rid in ids:
        expect.untestable(rid, f"HTTP {ex.status}: no choice to judge: {ex.text[:200]}")
    raise StopCase(ids[0])


def calls_of(choice) -> list:
    calls = (choice.get("message") or {}).get("tool_calls")
    return calls if isinstance(calls, list) else []


def tool_fragments(ex, expect, ids) -> dict[int | None, list[dict]]:
    """Streamed ``delta.tool_calls`` items of choice 0 grouped per ``index`` (None when it is missing)."""
    if ex.status != 200 or not ex.chunks:
        for rid in ids:
            expect.untestable(rid, f"HTTP {ex.status}: no streamed chunks: {ex.body[:200]!r}")
        raise StopCase(ids[0])
    grouped: dict[int | None, list[dict]] = {}
    for _, item in items_by_choice(ex.chunks).get(0, []):
        for frag in delta_of(item).get("tool_calls") or []:
            index = frag.get("index") if isinstance(frag, dict) else None
            grouped.setdefault(index if isinstance(index, int) else None, []).append(frag)
    return grouped


def finish_of(ex) -> str | None:
    finishes = [i.get("finish_reason") for _, i in items_by_choice(ex.chunks).get(0, []) if i.get("finish_reason")]
    return finishes[-1] if finishes else None


@pytest.mark.requirement("TOOLS-001", "TOOLS-002", "TOOLS-003", "TOOLS-004", "TOOLS-005", "TOOLS-006")
def test_tool_call_shape(stream_tool_call, expect):
    ids = ["TOOLS-001", "TOOLS-002", "TOOLS-003", "TOOLS-004", "TOOLS-005", "TOOLS-006"]
    choice = first_choice_or_stop(expect, stream_tool_call, ids)
    calls = calls_of(choice)
    expect("TOOLS-001", calls, expected="message.tool_calls a non-empty array", received=choice.get("message"))
    for n, call in enumerate(calls):
        call = call if isinstance(call, dict) else {}
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        expect("TOOLS-002", isinstance(call.get("id"), str) and call["id"], expected="a non-empty string id",
               received=call.get("id"), note=f"tool_calls[{n}]")
        expect("TOOLS-003", call.get("type") == "function", expected='"function"', received=call.get("type"),
               note=f"tool_calls[{n}]")
        expect("TOOLS-004", fn.get("name") == "get_weather", expected='"get_weather" (the declared tool)',
               received=fn.get("name"), note=f"tool_calls[{n}]")
        # Only the type is the gateway's (TOOLS-005); whether the text parses is the model's best effort without
        # strict, judged by TOOLS-016 (SHOULD).
        expect("TOOLS-005", isinstance(fn.get("arguments"), str), expected="a string (the model's JSON text)",
               received=repr(fn.get("arguments")), note=f"tool_calls[{n}]")
    if calls:
        expect("TOOLS-006", choice.get("finish_reason") == "tool_calls", expected='"tool_calls"',
               received=choice.get("finish_reason"))


@pytest.mark.requirement("TOOLS-016")
def test_arguments_fit_the_tool_schema(stream_tool_call, expect):
    choice = first_choice_or_stop(expect, stream_tool_call, ["TOOLS-016"])
    for n, call in enumerate(calls_of(choice)):
        args, name = tool_arguments(call), (call.get("function") or {}).get("name")
        text = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
        if isinstance(text, str) and args is None and name in TOOLS:  # a string that is not JSON (TOOLS-005: type)
            expect("TOOLS-016", False, expected=f"arguments that parse as JSON valid against {name}'s parameters",
                   received=repr(text[:300]), note=f"tool_calls[{n}]")
        if isinstance(args, dict) and name in TOOLS:  # shape and name have their own checks
            errors = [e.message for e in jsonschema.Draft202012Validator(TOOLS[name]).iter_errors(args)]
            expect("TOOLS-016", not errors, expected=f"arguments valid against {name}'s parameters",
                   received=f"{args}: {errors[:3]}", note=f"tool_calls[{n}]")


@pytest.mark.requirement("TOOLS-007", "TOOLS-008", "TOOLS-009", "TOOLS-010", "TOOLS-018")
def test_streamed_tool_call_deltas(stream_tool_stream, expect):
    ids = ["TOOLS-007", "TOOLS-008", "TOOLS-009", "TOOLS-010", "TOOLS-018"]
    grouped = tool_fragments(stream_tool_stream, expect, ids)
    if not grouped:
        return  # the model made no call: nothing to judge here (TOOLS-001 judges calling, on the JSON answer)
    expect("TOOLS-007", None not in grouped, expected="an integer index on every delta.tool_calls item",
           received=grouped.get(None, [])[:2])
    for index, frags in grouped.items():
        first, later = frags[0], frags[1:]
        fn = first.get("function") or {}
        expect("TOOLS-008", isinstance(first.get("id"), str) and first["id"] and first.get("type") == "function"
               and isinstance(fn.get("name"), str) and fn["name"], expected="id, type function and function.name",
               received=first, note=f"first fragment of index {index}")
        repeats = [f for f in later if f.get("id") or (f.get("function") or {}).get("name")]
        expect("TOOLS-018", not repeats, expected="later fragments without id or function.name",
               received=repeats[:2], note=f"index {index}")
        args = "".join(a for f in frags if isinstance(a := (f.get("function") or {}).get("arguments"), str))
        try:
            json.loads(args)
            parsed = True
        except ValueError:
            parsed = False
        expect("TOOLS-009", parsed, expected="concatenated arguments that parse as JSON", received=repr(args),
               note=f"index {index}")
    expect("TOOLS-010", finish_of(stream_tool_stream) == "tool_calls", expected='finish_reason "tool_calls"',
           received=finish_of(stream_tool_stream))


@pytest.mark.requirement("TOOLS-011")
def test_parallel_calls_are_distinct(stream_tool_parallel, expect):
    grouped = tool_fragments(stream_tool_parallel, expect, ["TOOLS-011"])
    if None in grouped or not grouped:
        return  # calls without an index cannot be told apart (TOOLS-007's); no call at all is TOOLS-001's
    heads = [frags[0] for frags in grouped.values()]
    expect.fatal("TOOLS-011", len(heads) >= 2, expected="two tool calls in one turn (both tools were asked for)",
                 received=f"{len(heads)} call(s): {heads}")
    call_ids = [h.get("id") for h in heads if h.get("id")]  # a missing id is TOOLS-008's
    expect("TOOLS-011", len(set(call_ids)) == len(call_ids), expected="distinct ids", received=call_ids)
    indexes = [i for i in grouped if i is not None]
    expect("TOOLS-011", len(set(indexes)) == len(indexes), expected="distinct indexes", received=indexes)


def _chat(body) -> Spec:
    return Spec.post("/chat/completions", body)


@exchange(view=JsonExchange.of)
def tools_parallel_false(plan):
    return _chat(chat_body(plan.chat_model, stream=False, max_tokens=TOOL_MAX_TOKENS, prompt=PARALLEL_PROMPT,
                           tools=[WEATHER_TOOL, TIME_TOOL], parallel_tool_calls=False))


def _tool_choice(plan, tool_choice) -> Spec:
    return _chat(chat_body(plan.chat_model, stream=False, max_tokens=TOOL_MAX_TOKENS, prompt=TOOL_PROMPT,
                           tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice))


@exchange(view=JsonExchange.of)
def tools_choice_none(plan):
    return _tool_choice(plan, "none")


@exchange(view=JsonExchange.of)
def tools_choice_required(plan):
    # the prompt asks for no tool, so only tool_choice can make the call
    return _chat(chat_body(plan.chat_model, stream=False, max_tokens=TOOL_MAX_TOKENS, tools=[WEATHER_TOOL],
                           tool_choice="required"))


@exchange(view=JsonExchange.of)
def tools_choice_named(plan):
    return _tool_choice(plan, {"type": "function", "function": {"name": "get_time"}})  # the prompt asks for the other


@exchange(view=JsonExchange.of, needs=(stream_tool_call,))
def tools_round_trip(plan, stream_tool_call):
    """The tool's result sent back after the call ``stream_tool_call`` made (or a made-up call without one)."""
    ex = stream_tool_call
    calls = calls_of((ex.body or {}).get("choices", [{}])[0]) if ex.status == 200 and isinstance(ex.body, dict) \
        else []
    call = calls[0] if calls and tool_arguments(calls[0]) is not None else {
        "id": "call_conformance_0", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}
    messages = [{"role": "user", "content": TOOL_PROMPT},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature_c": 21, "sky": "clear"}'}]
    return _chat({"model": plan.chat_model, "messages": messages, "tools": [WEATHER_TOOL], "max_tokens": 16})


@pytest.mark.requirement("TOOLS-017")
def test_parallel_tool_calls_false(tools_parallel_false, expect):
    choice = first_choice_or_stop(expect, tools_parallel_false, ["TOOLS-017"])
    expect("TOOLS-017", len(calls_of(choice)) <= 1, expected="at most one tool call",
           received=[(c.get("function") or {}).get("name") for c in calls_of(choice)])


@pytest.mark.requirement("TOOLS-012")
def test_tool_choice_none(tools_choice_none, expect):
    choice = first_choice_or_stop(expect, tools_choice_none, ["TOOLS-012"])
    message = choice.get("message") or {}
    expect("TOOLS-012", not calls_of(choice) and isinstance(message.get("content"), str),
           expected="a text answer, no tool_calls", received=message)


@pytest.mark.requirement("TOOLS-013")
def test_tool_choice_required(tools_choice_required, expect):
    choice = first_choice_or_stop(expect, tools_choice_required, ["TOOLS-013"])
    expect("TOOLS-013", calls_of(choice), expected="at least one tool call", received=choice.get("message"))


@pytest.mark.requirement("TOOLS-014")
def test_tool_choice_named(tools_choice_named, expect):
    choice = first_choice_or_stop(expect, tools_choice_named, ["TOOLS-014"])
    names = [(c.get("function") or {}).get("name") for c in calls_of(choice)]
    expect("TOOLS-014", "get_time" in names, expected="a call to get_time", received=names or choice.get("message"))


@pytest.mark.requirement("TOOLS-015")
def test_tool_result_round_trip(stream_tool_call, tools_round_trip, expect):
    ex = tools_round_trip
    choice = first_choice_or_stop(expect, ex, ["TOOLS-015"])
    expect("TOOLS-015", isinstance(choice.get("message"), dict), expected="HTTP 200 with an answer",
           received=ex.text[:300])
