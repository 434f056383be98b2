"""Shared exchanges for the stream checks, declared to the run's exchange store (``conformance.exchanges``).

Each exchange is sent once per process with the plan; the fixture of its name hands it to a test and the store adds
its wire record to that test's transcript, so a failing check still points at the bytes it judged.

Public fixtures other groups use: ``stream_exchange_with_usage`` (one streamed chat with
``stream_options.include_usage``, greedy and seeded) and ``stream_exchange_plain`` (a plain stream), both
:class:`StreamExchange`; ``twin_body`` is the non-streamed request equal to the usage stream, which the checks that
compare streamed with non-streamed answers (content, usage) and need a second plain body share as one exchange.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.client import Exchange
from conformance.exchanges import Recorded, Spec, exchange
from conformance.sse import Finding, SseTranscript, validate_chat_stream
from conformance.suite.fixtures_chat import ChatExchange
from conformance.suite.fixtures_rest import browser_headers

STREAM_MAX_TOKENS = 16
TOOL_MAX_TOKENS = 60
PROMPT = "Say hello to the conformance suite in a few words."
# Greedy and seeded, so the usage stream and its non-streamed twin give the same text on a real model too
# (CHAT-STREAM-014). Temperature 0 keeps the seed faults out: they act on sampled requests only.
GREEDY = {"temperature": 0, "seed": 7}
# Room for the usage stream and its twin to end on their own (the reference server's answers are 13-21 tokens), so
# the faults that act on max_tokens cuts (PARAMS-001/002) stay out of the checks comparing the two.
TWIN_MAX_TOKENS = 24

# Shared tool exchanges use tool_choice "auto" and a prompt that names the tool, so that only the tool-choice
# checks depend on tool_choice being honoured.
# Tools the checks offer: small, with required string/enum arguments, so a real model fills them in easily.
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"], "additionalProperties": False}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Current local time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}
TOOL_PROMPT = "Use the get_weather tool to get the weather in Paris in celsius."
__all__ = ["stream_exchange_with_usage", "stream_exchange_plain", "stream_twin",
           "stream_exchange_unknown_model", "stream_tool_call", "stream_tool_stream", "stream_tool_parallel"]

PARALLEL_PROMPT = "In one turn, call get_weather for Paris in celsius and get_time for Paris, both at once."


@dataclass
class StreamExchange:
    """One streamed request as seen on the wire.

    ``transcript`` is ``None`` when the answer was not a 200 (then ``body`` holds the error body). ``chunks`` are the
    parsed JSON data events before ``[DONE]``; ``findings`` come from ``validate_chat_stream``. Times are seconds
    from sending the request: ``headers_s`` when the headers arrived, ``started_s`` when body reading started.
    """

    request: dict[str, Any]
    status: int
    headers: httpx.Headers
    content_type: str | None
    transcript: SseTranscript | None
    body: bytes
    exchange: Exchange
    headers_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def chunks(self) -> list[Any]:
        return self.transcript.chunks() if self.transcript else []

    def codes(self) -> list[str]:
        """The finding codes of ``validate_chat_stream``."""
        return [f.code for f in self.findings]

    def finding(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    @classmethod
    def of(cls, rec: Recorded) -> StreamExchange:
        """A streamed request read with the SSE reader (any status; non-200 bodies kept raw)."""
        content_type = rec.headers.get("content-type")
        if rec.status != 200:
            return cls(rec.spec.body, rec.status, rec.headers, content_type, None, rec.raw, rec.last, rec.headers_s)
        transcript = rec.sse()
        out = cls(rec.spec.body, rec.status, rec.headers, content_type, transcript, transcript.raw, rec.last,
                  rec.headers_s)
        out.findings = validate_chat_stream(transcript, content_type)
        return out


@dataclass
class JsonExchange:
    """One buffered (non-streamed) request: status, headers, parsed body (``None`` when not JSON)."""

    request: dict[str, Any]
    status: int
    headers: httpx.Headers
    body: Any
    text: str
    exchange: Exchange

    @classmethod
    def of(cls, rec: Recorded) -> JsonExchange:
        try:
            parsed = json.loads(rec.raw)
        except ValueError:
            parsed = None
        return cls(rec.spec.body, rec.status, rec.headers, parsed, rec.raw.decode("utf-8", errors="replace"),
                   rec.last)


def stream_spec(body: dict[str, Any], headers: dict[str, str] | None = None) -> Spec:
    return Spec.post("/chat/completions", body, headers=headers or {}, read="sse")


def chat_body(model: str, *, stream: bool, max_tokens: int = STREAM_MAX_TOKENS, prompt: str = PROMPT,
              **extra: Any) -> dict[str, Any]:
    """A small chat request body."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body




# -- plain streams ----------------------------------------------------------------------------------------
def twin_body(model: str) -> dict[str, Any]:
    """The non-streamed request equal to ``stream_exchange_with_usage`` without ``stream`` and ``stream_options``."""
    return chat_body(model, stream=False, max_tokens=TWIN_MAX_TOKENS, **GREEDY)


@exchange(view=StreamExchange.of)
def stream_exchange_with_usage(plan) -> Spec:
    """One streamed chat exchange with ``stream_options.include_usage`` true (greedy and seeded: ``twin_body``)."""
    return stream_spec({**twin_body(plan.chat_model), "stream": True, "stream_options": {"include_usage": True}})


@exchange(view=ChatExchange.of)
def stream_twin(plan) -> Spec:
    """The non-streamed twin of the usage stream (``twin_body``): CHAT-STREAM-014, USAGE-009 and CHAT-018 judge it."""
    return Spec.post("/chat/completions", twin_body(plan.chat_model))


@exchange(view=StreamExchange.of)
def stream_exchange_plain(plan) -> Spec:
    """One streamed chat exchange without include_usage. Where the target honours mock controls it is paced (the
    X-Mock-Tokens-Per-Second control) so that buffering (HEADERS-006) becomes visible. For a profile claiming
    CORS it carries a browser's Origin, so the CORS check of streams (CORS-005) judges it without a stream of its
    own."""
    headers = {"X-Mock-Tokens-Per-Second": "50"} if plan.capabilities.mock_controls else {}
    headers.update(browser_headers(plan.profile))
    return stream_spec(chat_body(plan.chat_model, stream=True), headers)


@exchange(view=StreamExchange.of)
def stream_exchange_unknown_model(plan) -> Spec:
    """A streaming request for a model that does not exist (rejected before generation: SSE-013)."""
    return stream_spec(chat_body("conformance-no-such-model-0", stream=True))


# -- tools ------------------------------------------------------------------------------------------------
@exchange(view=JsonExchange.of)
def stream_tool_call(plan) -> Spec:
    """A non-streamed request that asks for a get_weather call."""
    return Spec.post("/chat/completions", chat_body(plan.chat_model, stream=False, max_tokens=TOOL_MAX_TOKENS,
                                                    prompt=TOOL_PROMPT, tools=[WEATHER_TOOL], tool_choice="auto"))


@exchange(view=StreamExchange.of)
def stream_tool_stream(plan) -> Spec:
    """The same request, streamed."""
    return stream_spec(chat_body(plan.chat_model, stream=True, max_tokens=TOOL_MAX_TOKENS, prompt=TOOL_PROMPT,
                                 tools=[WEATHER_TOOL], tool_choice="auto"))


@exchange(view=StreamExchange.of)
def stream_tool_parallel(plan) -> Spec:
    """A streamed request asking for two tool calls in one turn (parallel-tool-calls)."""
    return stream_spec(chat_body(plan.chat_model, stream=True, max_tokens=2 * TOOL_MAX_TOKENS,
                                 prompt=PARALLEL_PROMPT, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="auto",
                                 parallel_tool_calls=True))


def tool_arguments(call: Any) -> Any:
    """``function.arguments`` of a tool call parsed as JSON, or ``None`` when it is not a JSON string."""
    args = call.get("function", {}).get("arguments") if isinstance(call, dict) else None
    if not isinstance(args, str):
        return None
    try:
        return json.loads(args)
    except ValueError:
        return None


def items_by_choice(chunks: list[Any]) -> dict[int, list[tuple[int, dict]]]:
    """``choices[]`` items grouped per choice index, each with the number of the chunk it came in. An item without
    an integer index is grouped under 0, as a lenient client would (CHAT-STREAM-013 judges the index itself)."""
    grouped: dict[int, list[tuple[int, dict]]] = {}
    for number, chunk in enumerate(chunks):
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for item in choices if isinstance(choices, list) else []:
            if isinstance(item, dict):
                index = item.get("index")
                index = index if isinstance(index, int) and not isinstance(index, bool) else 0
                grouped.setdefault(index, []).append((number, item))
    return grouped


def delta_of(item: dict) -> dict:
    delta = item.get("delta")
    return delta if isinstance(delta, dict) else {}


def streamed_text(items: list[tuple[int, dict]], key: str = "content") -> str:
    """The concatenated string ``delta[key]`` fragments of one choice."""
    return "".join(v for _, item in items if isinstance(v := delta_of(item).get(key), str))
