"""Chunk contents of streamed chat completions (spec/requirements/chat-stream.yaml).

Sequencing is judged per choice index on the two shared streams (with and without include_usage); n > 1,
seeded reproducibility and reasoning streams spend one request each.
"""

from __future__ import annotations

import pytest

from conformance.exchanges import exchange
from conformance.expect import StopCase
from conformance.suite.fixtures_stream import (
    StreamExchange,
    chat_body,
    delta_of,
    items_by_choice,
    stream_spec,
    streamed_text,
)
from gateway_spec.openapi import schema_errors

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}
REASONING_MAX_TOKENS = 96


@pytest.fixture
def judged_streams(stream_exchange_plain, stream_exchange_with_usage):
    return [("stream without include_usage", stream_exchange_plain, False),
            ("stream with include_usage", stream_exchange_with_usage, True)]


def chunks_or_stop(expect, ex, ids, label="stream") -> list:
    """The parsed chunks of a 200 event stream; otherwise every id is 'not testable' and the case stops."""
    if ex.status == 200 and ex.transcript is not None and ex.chunks:
        return ex.chunks
    for rid in ids:
        expect.untestable(rid, f"{label}: HTTP {ex.status}, no chunks to judge: {ex.body[:200]!r}")
    raise StopCase(ids[0])


def is_usage_chunk(chunk) -> bool:
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


@pytest.mark.requirement("CHAT-STREAM-003")
def test_stream_is_an_event_stream(judged_streams, expect):
    for label, ex, _ in judged_streams:
        ct = ex.finding("content-type")
        expect("CHAT-STREAM-003", ex.status == 200 and ct is None,
               expected="HTTP 200, Content-Type text/event-stream", received=f"HTTP {ex.status}, {ex.content_type}",
               note=label)


@pytest.mark.requirement("CHAT-STREAM-002", "CHAT-STREAM-004", "CHAT-STREAM-005", "CHAT-STREAM-006")
def test_chunk_identity_is_constant(judged_streams, expect):
    ids = ["CHAT-STREAM-002", "CHAT-STREAM-004", "CHAT-STREAM-005", "CHAT-STREAM-006"]
    for label, ex, _ in judged_streams:
        chunks = chunks_or_stop(expect, ex, ids, label)
        first = chunks[0]
        for n, chunk in enumerate(chunks):
            where = f"{label}, chunk {n}"
            expect("CHAT-STREAM-002", chunk.get("object") == "chat.completion.chunk",
                   expected='"chat.completion.chunk"', received=chunk.get("object"), note=where)
            expect("CHAT-STREAM-004", isinstance(chunk.get("id"), str) and chunk.get("id") == first.get("id"),
                   expected=f"id {first.get('id')!r}", received=chunk.get("id"), note=where)
            created = chunk.get("created")
            expect("CHAT-STREAM-005", isinstance(created, int) and not isinstance(created, bool)
                   and created == first.get("created"), expected=f"created {first.get('created')!r} (integer)",
                   received=created, note=where)
            model = chunk.get("model")
            expect("CHAT-STREAM-006", isinstance(model, str) and model != "" and model == first.get("model"),
                   expected=f"model {first.get('model')!r}", received=model, note=where)


@pytest.mark.requirement("CHAT-STREAM-001", "CHAT-STREAM-007", "CHAT-STREAM-008")
def test_role_once_per_choice(judged_streams, expect):
    ids = ["CHAT-STREAM-001", "CHAT-STREAM-007", "CHAT-STREAM-008"]
    for label, ex, _ in judged_streams:
        for index, items in items_by_choice(chunks_or_stop(expect, ex, ids, label)).items():
            first_no, first = items[0]
            expect("CHAT-STREAM-001", delta_of(first).get("role") == "assistant", expected='delta.role "assistant"',
                   received=first.get("delta"), note=f"{label}, choice {index}, chunk {first_no}")
            for n, item in items:
                role = delta_of(item).get("role")
                if role is not None:
                    expect("CHAT-STREAM-008", role == "assistant", expected='"assistant"', received=role,
                           note=f"{label}, choice {index}, chunk {n}")
            repeated = [n for n, item in items[1:] if delta_of(item).get("role") is not None]
            expect("CHAT-STREAM-007", not repeated, expected="role only on the first delta of the choice",
                   received=f"role repeated on chunks {repeated}", note=f"{label}, choice {index}")


@pytest.mark.requirement("CHAT-STREAM-009", "CHAT-STREAM-010", "CHAT-STREAM-011", "CHAT-STREAM-015")
def test_finish_reason_sequence(judged_streams, expect):
    ids = ["CHAT-STREAM-009", "CHAT-STREAM-010", "CHAT-STREAM-011", "CHAT-STREAM-015"]
    for label, ex, _ in judged_streams:
        for index, items in items_by_choice(chunks_or_stop(expect, ex, ids, label)).items():
            where = f"{label}, choice {index}"
            finished = [(n, item) for n, item in items if item.get("finish_reason") is not None]
            expect("CHAT-STREAM-011", len(finished) == 1, expected="exactly one non-null finish_reason",
                   received=[item.get("finish_reason") for _, item in finished], note=where)
            end = items.index(finished[0]) if finished else len(items) - 1
            for n, item in items[:end]:
                expect("CHAT-STREAM-009", "finish_reason" in item and item["finish_reason"] is None,
                       expected="finish_reason: null", received=item.get("finish_reason", "(absent)"),
                       note=f"{where}, chunk {n}")
            last_no, last = items[end]
            expect("CHAT-STREAM-010", last.get("finish_reason") in FINISH_REASONS,
                   expected=f"one of {sorted(FINISH_REASONS)}", received=repr(last.get("finish_reason")),
                   note=f"{where}, chunk {last_no}")
            later = [n for n, _ in items[end + 1:]] if finished else []
            expect("CHAT-STREAM-015", not later, expected="no chunk for the choice after its finish_reason",
                   received=f"chunks {later} carry index {index}", note=where)


@pytest.mark.requirement("CHAT-STREAM-012")
def test_no_empty_choices_except_usage(judged_streams, expect, profile):
    for label, ex, include_usage in judged_streams:
        allowed = include_usage or bool(profile.get("stream.auto_include_usage"))
        for n, chunk in enumerate(chunks_or_stop(expect, ex, ["CHAT-STREAM-012"], label)):
            if chunk.get("choices") == []:
                ok = allowed and is_usage_chunk(chunk)
                expect("CHAT-STREAM-012", ok, expected="choices non-empty (or the usage chunk)",
                       received=chunk, note=f"{label}, chunk {n}")


@pytest.mark.requirement("CHAT-STREAM-013")
def test_choice_items_have_index_and_delta(judged_streams, expect):
    for label, ex, _ in judged_streams:
        for n, chunk in enumerate(chunks_or_stop(expect, ex, ["CHAT-STREAM-013"], label)):
            for item in chunk.get("choices") or []:
                index = item.get("index") if isinstance(item, dict) else None
                ok = isinstance(index, int) and not isinstance(index, bool) and isinstance(item.get("delta"), dict)
                expect("CHAT-STREAM-013", ok, expected="integer index and a delta object", received=item,
                       note=f"{label}, chunk {n}")


@pytest.mark.requirement("CHAT-STREAM-016")
def test_text_stream_carries_content(judged_streams, expect):
    for label, ex, _ in judged_streams:
        for index, items in items_by_choice(chunks_or_stop(expect, ex, ["CHAT-STREAM-016"], label)).items():
            before = [item for _, item in items if item.get("finish_reason") is None] or items[:-1]
            text = streamed_text([(0, item) for item in before]) + str(delta_of(items[-1][1]).get("content") or "")
            expect("CHAT-STREAM-016", text != "", expected="at least one non-empty content delta",
                   received=[item.get("delta") for _, item in items][:6], note=f"{label}, choice {index}")


@pytest.mark.requirement("CHAT-STREAM-017")
def test_chunks_match_the_schema(judged_streams, expect):
    for label, ex, _ in judged_streams:
        for n, chunk in enumerate(chunks_or_stop(expect, ex, ["CHAT-STREAM-017"], label)):
            errors = schema_errors("CreateChatCompletionStreamResponse", chunk)
            expect("CHAT-STREAM-017", not errors, expected="valid CreateChatCompletionStreamResponse",
                   received=errors[:3], note=f"{label}, chunk {n}: {str(chunk)[:300]}")


@exchange(view=StreamExchange.of)
def stream_two_choices(plan):
    return stream_spec(chat_body(plan.chat_model, stream=True, max_tokens=6, n=2))


@pytest.mark.requirement("CHAT-STREAM-018")
def test_every_choice_is_streamed(stream_two_choices, expect):
    ex = stream_two_choices
    grouped = items_by_choice(chunks_or_stop(expect, ex, ["CHAT-STREAM-018"]))
    if any(not isinstance(item.get("index"), int) for items in grouped.values() for _, item in items):
        return  # choices cannot be told apart without an index: that is CHAT-STREAM-013's to report
    expect("CHAT-STREAM-018", sorted(grouped) == [0, 1], expected="chunks for index 0 and 1",
           received=f"indexes {sorted(grouped)}")
    # a role or finish_reason missing on every choice is CHAT-STREAM-001's / -011's: each must get what choice 0 gets
    role_expected = delta_of(grouped.get(0, [(0, {})])[0][1]).get("role") is not None
    finish_expected = any(i.get("finish_reason") is not None for _, i in grouped.get(0, []))
    for index, items in grouped.items():
        has_role = delta_of(items[0][1]).get("role") is not None or not role_expected
        finishes = [item.get("finish_reason") for _, item in items if item.get("finish_reason") is not None]
        expect("CHAT-STREAM-018", has_role and (len(finishes) == 1 or not finish_expected),
           expected="its own role and finish_reason",
               received=f"first delta {items[0][1].get('delta')}, finish_reasons {finishes}", note=f"choice {index}")


@pytest.mark.requirement("CHAT-STREAM-014")
def test_streamed_content_matches_non_streamed(stream_exchange_with_usage, stream_twin, expect):
    # The greedy, seeded usage stream and its non-streamed twin (which USAGE-009 compares too).
    plain = stream_twin
    try:
        expected = plain.body["choices"][0]["message"]["content"]
    except (TypeError, KeyError, IndexError):
        expect.untestable("CHAT-STREAM-014", f"the non-streamed answer has no content: HTTP {plain.status}")
        raise StopCase("CHAT-STREAM-014") from None
    ex = stream_exchange_with_usage
    streamed = streamed_text(items_by_choice(chunks_or_stop(expect, ex, ["CHAT-STREAM-014"])).get(0, []))
    expect("CHAT-STREAM-014", streamed == expected, expected=repr(expected), received=repr(streamed),
           note="same request, temperature 0 and seed 7, streamed (with include_usage) vs not")


def reasoning_model(profile, kind: str) -> str | None:
    return next((m["id"] for m in profile.get("models.chat", []) if m.get("reasoning") == kind), None)


def _reasoning_stream(plan, kind: str):
    model = reasoning_model(plan.profile, kind)
    return stream_spec(chat_body(model, stream=True, max_tokens=REASONING_MAX_TOKENS)) if model else None


@exchange(view=StreamExchange.of)
def stream_reasoning_content(plan):
    return _reasoning_stream(plan, "reasoning-content")


@exchange(view=StreamExchange.of)
def stream_think_tag(plan):
    return _reasoning_stream(plan, "think-tag")


@pytest.mark.requirement("CHAT-STREAM-019")
def test_reasoning_content_comes_first(stream_reasoning_content, profile, expect):
    model = reasoning_model(profile, "reasoning-content")
    if model is None:
        expect.untestable("CHAT-STREAM-019", "the profile documents no reasoning-content model")
        return
    ex = stream_reasoning_content
    items = items_by_choice(chunks_or_stop(expect, ex, ["CHAT-STREAM-019"])).get(0, [])
    kinds = [("reasoning" if delta_of(i).get("reasoning_content") else "content" if delta_of(i).get("content")
              else None) for _, i in items]
    kinds = [k for k in kinds if k]
    expect("CHAT-STREAM-019", "reasoning" in kinds, expected="delta.reasoning_content chunks",
           received=[i.get("delta") for _, i in items][:6], note=f"model {model}")
    if "content" in kinds:
        late = kinds[kinds.index("content"):].count("reasoning")
        expect("CHAT-STREAM-019", late == 0, expected="every reasoning chunk before the first content chunk",
               received=f"{late} reasoning chunk(s) after content began", note=f"model {model}")


@pytest.mark.requirement("CHAT-STREAM-020")
def test_think_tag_prefix(stream_think_tag, profile, expect):
    model = reasoning_model(profile, "think-tag")
    if model is None:
        expect.untestable("CHAT-STREAM-020", "the profile documents no think-tag model")
        return
    ex = stream_think_tag
    items = items_by_choice(chunks_or_stop(expect, ex, ["CHAT-STREAM-020"])).get(0, [])
    text = streamed_text(items)
    expect("CHAT-STREAM-020", text.lstrip().startswith("<think>"), expected="content starting with <think>",
           received=repr(text[:80]), note=f"model {model}")
    truncated = any(i.get("finish_reason") == "length" for _, i in items)
    if not truncated:  # a length cut may fall inside the reasoning; only a finished answer must close the tag
        expect("CHAT-STREAM-020", "</think>" in text, expected="a closing </think>", received=repr(text[-120:]),
               note=f"model {model}")
