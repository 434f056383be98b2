"""Token usage: non-streamed arithmetic, the include_usage chunk, cache fields (spec/requirements/usage.yaml).

Streamed usage is judged on the stream group's shared exchanges (``stream_exchange_with_usage``,
``stream_exchange_plain`` in fixtures_stream.py), so no extra stream is spent here.
"""

from __future__ import annotations

import pytest

from conformance.exchanges import Spec, exchange

COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
# Provider cache fields a profile may document (usage.cache_fields); the creation field counts writes, not hits.
CACHE_READ_FIELDS = ("prompt_tokens_details.cached_tokens", "cache_read_input_tokens", "prompt_cache_hit_tokens")
PROVIDER_CACHE_FIELDS = ("cache_creation_input_tokens", "cache_read_input_tokens", "prompt_cache_hit_tokens")


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def dig(usage, dotted: str):
    node = usage
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def usage_of(expect, exchange, req_ids) -> dict | None:
    """``usage`` of a 200 answer; None (judging nothing) when the answer failed or usage is missing."""
    if not exchange.ok:
        for rid in req_ids:
            expect.untestable(rid, f"the completion it needs failed: {exchange.summary()}")
        return None
    usage = exchange.usage
    return usage if isinstance(usage, dict) else None  # missing usage is USAGE-001's violation


@pytest.mark.requirement("USAGE-001", "USAGE-004")
def test_usage_at_top_level(chat_basic, expect):
    usage = usage_of(expect, chat_basic, ("USAGE-001", "USAGE-004"))
    if chat_basic.ok:
        expect("USAGE-001", usage is not None, expected="a usage object", received=chat_basic.text[:300])
    inside = [i for i, c in enumerate(chat_basic.choices) if isinstance(c, dict) and "usage" in c]
    expect("USAGE-004", not inside, expected="no usage inside choices", received=f"usage in choices {inside}")


@pytest.mark.requirement("USAGE-002", "USAGE-003")
def test_usage_counts(chat_basic, expect):
    usage = usage_of(expect, chat_basic, ("USAGE-002", "USAGE-003"))
    if usage is None:
        return
    expect("USAGE-002", all(is_count(usage.get(k)) for k in COUNTS), expected=f"{COUNTS}: non-negative integers",
           received={k: usage.get(k) for k in COUNTS})
    if all(isinstance(usage.get(k), (int, float)) for k in COUNTS):
        expect("USAGE-003", usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"],
               expected="total_tokens = prompt_tokens + completion_tokens", received={k: usage[k] for k in COUNTS})


@pytest.mark.requirement("USAGE-010", "USAGE-011")
def test_token_details_are_subsets(chat_basic, expect):
    usage = usage_of(expect, chat_basic, ("USAGE-010", "USAGE-011"))
    if usage is None:
        return
    for req_id, detail, whole in (("USAGE-010", "prompt_tokens_details.cached_tokens", "prompt_tokens"),
                                  ("USAGE-011", "completion_tokens_details.reasoning_tokens", "completion_tokens")):
        part, total = dig(usage, detail), usage.get(whole)
        if part is None:
            continue  # optional
        bounded = is_count(part) and (not isinstance(total, (int, float)) or part <= total)
        expect(req_id, bounded, expected=f"{detail}: non-negative integer <= {whole}",
               received=f"{detail}={part!r}, {whole}={total!r}")


@pytest.mark.requirement("USAGE-012", "USAGE-015")
def test_counts_are_plausible(chat_basic, expect):
    usage = usage_of(expect, chat_basic, ("USAGE-012", "USAGE-015"))
    if usage is None:
        return
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, (int, float)):
        expect("USAGE-012", prompt > 0, expected="prompt_tokens > 0 for a non-empty prompt", received=prompt)
    content = chat_basic.content
    if isinstance(completion, (int, float)) and isinstance(content, str) and content.strip():
        expect("USAGE-015", completion > 0, expected="completion_tokens > 0 for non-empty content",
               received=f"completion_tokens {completion}, content {content[:80]!r}")


@pytest.mark.requirement("USAGE-017")
def test_provider_cache_fields(chat_basic, expect):
    usage = usage_of(expect, chat_basic, ("USAGE-017",))
    if usage is None:
        return
    for name in PROVIDER_CACHE_FIELDS:
        if usage.get(name) is not None:
            expect("USAGE-017", is_count(usage[name]), expected=f"{name}: non-negative integer", received=usage[name])


# -- prompt cache ------------------------------------------------------------------------------------------------
# OpenAI caches prefixes of 1024 tokens or more, so the cacheable system message is long (a prompt cost only).
CACHEABLE_TEXT = "You are a conformance probe. " + " ".join(
    f"Rule {i}: answer briefly and politely." for i in range(220))


def cache_request(model: str, profile) -> dict:
    """A request whose long system prompt is marked cacheable the way the profile's doc marks it
    (``usage.cache_marker``), to the documented caching model (``usage.cache_model``) when the doc names one."""
    marker = profile.get("usage.cache_marker") or "prompt_cache_key"
    system: dict = {"role": "system", "content": CACHEABLE_TEXT}
    body = {"model": profile.get("usage.cache_model") or model, "max_tokens": 4,
            "messages": [system, {"role": "user", "content": "Say hi."}]}
    if marker == "message-cache-control":  # UnifiedAI: "Add the cache_control field to messages you want to cache"
        system["cache_control"] = {"type": "ephemeral"}
    elif marker == "part-cache-control":  # Anthropic-style: a cache_control breakpoint on a content part
        system["content"] = [{"type": "text", "text": CACHEABLE_TEXT, "cache_control": {"type": "ephemeral"}}]
    else:  # OpenAI: automatic caching; the key improves routing to the same cache
        body["prompt_cache_key"] = "llm-gateway-conformance"
    return body


def _cache_view(rec):
    from conformance.suite.fixtures_chat import ChatExchange
    return ChatExchange.of(rec)


@exchange(sequential=True, view=_cache_view)
def usage_cache_pair(plan):
    """The cacheable request twice, in order (a sequential group): the second may hit the cache the first filled."""
    return [Spec.post("/chat/completions", cache_request(plan.chat_model, plan.profile))] * 2


@pytest.mark.requirement("USAGE-016", "USAGE-018")
def test_repeated_prompt_hits_the_cache(usage_cache_pair, profile, expect):
    first, second = usage_cache_pair
    documented = profile.get("usage.cache_fields") or []
    reads = [f for f in CACHE_READ_FIELDS if f in documented or f == CACHE_READ_FIELDS[0]]
    documented_reads = [f for f in reads if f in documented] or reads[:1]
    for label, rec in (("first request", first), ("second request", second)):
        usage = usage_of(expect, rec, ("USAGE-018",))
        if usage is not None:
            values = {f: dig(usage, f) for f in documented_reads}
            expect("USAGE-018", all(is_count(v) for v in values.values()),
                   expected=f"{documented_reads}: non-negative integers (0 on a miss)", received=values, note=label)
    usage = usage_of(expect, second, ("USAGE-016",))
    if usage is None:
        return
    hits = {f: dig(usage, f) for f in reads}
    expect("USAGE-016", any(is_count(v) and v > 0 for v in hits.values()),
           expected=f"a cache hit > 0 in one of {reads}", received=hits)


# -- streamed usage ------------------------------------------------------------------------------------------------
def _is_usage_chunk(chunk) -> bool:
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def _stream_chunks(expect, stream, req_ids) -> list | None:
    if stream.status != 200 or not stream.chunks:
        for rid in req_ids:
            expect.untestable(rid, f"the stream it needs failed: HTTP {stream.status}")
        return None
    return stream.chunks


@pytest.mark.requirement("USAGE-005", "USAGE-006", "USAGE-007")
def test_include_usage_chunk(stream_exchange_with_usage, expect):
    chunks = _stream_chunks(expect, stream_exchange_with_usage, ("USAGE-005", "USAGE-006", "USAGE-007"))
    if chunks is None:
        return
    usage_at = [i for i, c in enumerate(chunks) if _is_usage_chunk(c)]
    expect("USAGE-005", len(usage_at) == 1, expected="exactly one chunk with choices [] and usage",
           received=f"{len(usage_at)} such chunks at {usage_at} of {len(chunks)}")
    if usage_at:
        expect("USAGE-006", usage_at[-1] == len(chunks) - 1, expected="the usage chunk last before [DONE]",
               received=f"usage chunk at {usage_at[-1]} of {len(chunks)} chunks")
    others = [i for i, c in enumerate(chunks) if i not in usage_at and isinstance(c, dict)
              and c.get("usage") is not None]
    expect("USAGE-007", not others, expected="usage null or absent on every other chunk",
           received=f"usage on chunks {others}: {chunks[others[0]].get('usage') if others else ''}")


@pytest.mark.requirement("USAGE-008")
def test_no_usage_chunk_unasked(stream_exchange_plain, profile, expect):
    if profile.get("stream.auto_include_usage"):
        pytest.skip(f"profile {profile.name} documents injecting include_usage (USAGE-013 applies)")
    chunks = _stream_chunks(expect, stream_exchange_plain, ("USAGE-008",))
    if chunks is None:
        return
    found = [i for i, c in enumerate(chunks) if _is_usage_chunk(c)]
    expect("USAGE-008", not found, expected="no usage chunk without include_usage",
           received=f"usage chunks at {found} of {len(chunks)}")


@pytest.mark.requirement("USAGE-013")
def test_injected_usage_chunk_shape(stream_exchange_plain, profile, expect):
    if not profile.get("stream.auto_include_usage"):
        pytest.skip(f"profile {profile.name} does not document injecting include_usage")
    chunks = _stream_chunks(expect, stream_exchange_plain, ("USAGE-013",))
    if chunks is None:
        return
    found = [i for i, c in enumerate(chunks) if _is_usage_chunk(c)]
    expect("USAGE-013", found == [len(chunks) - 1], expected="one usage chunk (choices [], usage), last",
           received=f"usage chunks at {found} of {len(chunks)}")


@pytest.mark.requirement("USAGE-009")
def test_streamed_usage_equals_non_streamed(stream_exchange_with_usage, stream_twin, expect):
    chunks = _stream_chunks(expect, stream_exchange_with_usage, ("USAGE-009",))
    streamed = next((c["usage"] for c in reversed(chunks or []) if _is_usage_chunk(c)), None)
    if streamed is None:
        return  # no usage chunk: USAGE-005's violation
    plain = stream_twin  # the request without stream and stream_options: CHAT-STREAM-014 and CHAT-018 judge it too
    if not plain.ok or not isinstance(plain.usage, dict):
        return  # the non-streamed answer's own checks report it
    expect("USAGE-009", {k: streamed.get(k) for k in COUNTS} == {k: plain.usage.get(k) for k in COUNTS},
           expected={k: plain.usage.get(k) for k in COUNTS}, received={k: streamed.get(k) for k in COUNTS})
