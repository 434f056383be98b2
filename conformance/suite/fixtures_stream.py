"""Shared exchanges for the stream checks (session-cached so the run spends few requests).

Each exchange is made once per process by a session fixture on a session ``GatewayClient``; the function-scoped
fixture of the same name (without the leading underscore) hands it to a test and adds its wire record to that
test's transcript, so a failing check still points at the bytes it judged.

Public fixtures other groups use: ``stream_exchange_with_usage`` (one streamed chat with
``stream_options.include_usage``, greedy and seeded) and ``stream_exchange_plain`` (a plain stream), both
:class:`StreamExchange`; ``twin_body`` is the non-streamed request equal to the usage stream, which the checks that
compare streamed with non-streamed answers (content, usage) and need a second plain body share as one exchange.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conformance.client import Exchange, GatewayClient
from conformance.plugin import CLIENTS
from conformance.sse import Finding, SseTranscript, read_stream, validate_chat_stream
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
TWIN = "stream-twin"  # the chat_calls name of the non-streamed twin of the usage stream

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
__all__ = ["stream_session_client"]  # the fixtures; _cached() appends each pair (conftest star-imports them)

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


@dataclass
class JsonExchange:
    """One buffered (non-streamed) request: status, headers, parsed body (``None`` when not JSON)."""

    request: dict[str, Any]
    status: int
    headers: httpx.Headers
    body: Any
    text: str
    exchange: Exchange


class _Replay:
    """Stands in the test's client list so the plugin adds cached exchanges to the test's transcript."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self._exchanges = list(exchanges)

    def take_transcript(self) -> list[Exchange]:
        out, self._exchanges = self._exchanges, []
        return out

    def close(self) -> None:
        pass


def attach(request: pytest.FixtureRequest, *exchanges: Any) -> None:
    """Add the wire records of cached exchanges (``StreamExchange``/``JsonExchange``) to the running test."""
    request.node.stash.setdefault(CLIENTS, []).append(_Replay([e.exchange for e in exchanges if e is not None]))


def open_stream(client: GatewayClient, body: dict[str, Any], headers: dict[str, str] | None = None
                ) -> StreamExchange:
    """POST a streaming chat request and read it with the SSE reader (any status; non-200 bodies kept raw)."""
    started = time.monotonic()
    with client.stream("/chat/completions", body, headers=headers) as response:
        headers_s = time.monotonic() - started
        content_type = response.headers.get("content-type")
        if response.status_code != 200:
            raw = response.read()
            return StreamExchange(body, response.status_code, response.headers, content_type, None, raw,
                                  response.exchange, headers_s)
        transcript = read_stream(response.chunks(), deadline_s=client.stream_timeout,
                                 idle_timeout_s=client.request_timeout)
    out = StreamExchange(body, response.status_code, response.headers, content_type, transcript, transcript.raw,
                         response.exchange, headers_s)
    out.findings = validate_chat_stream(transcript, content_type)
    return out


def post_chat(client: GatewayClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> JsonExchange:
    """POST a non-streamed chat request; the body is parsed when it is JSON."""
    response = client.post_json("/chat/completions", body, headers=headers)
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return JsonExchange(body, response.status_code, response.headers, parsed, response.text, response.exchange)


def chat_body(model: str, *, stream: bool, max_tokens: int = STREAM_MAX_TOKENS, prompt: str = PROMPT,
              **extra: Any) -> dict[str, Any]:
    """A small chat request body."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body




def is_embedded(conformance) -> bool:
    """True when the target is the embedded reference server (its X-Mock-* control headers work)."""
    return not conformance.options.target_url


# -- the session client -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def stream_session_client(conformance, target, api_key):
    """A ``GatewayClient`` for the session-cached exchanges of the stream group."""
    settings = conformance.client_settings(target, api_key)
    settings["redactor"] = conformance.redactor
    client = GatewayClient(**settings)
    yield client
    client.close()


def _cached(name: str, make):
    """A session fixture ``name_cached`` computing the exchange and a function fixture ``name`` attaching it."""
    session = pytest.fixture(scope="session", name=f"{name}_cached")(make)

    @pytest.fixture(name=name)
    def per_test(request):
        value = request.getfixturevalue(f"{name}_cached")
        attach(request, value)
        return value

    per_test.__doc__ = make.__doc__
    __all__.extend([f"{name}_cached", name])
    return session, per_test


# -- plain streams ----------------------------------------------------------------------------------------
def twin_body(model: str) -> dict[str, Any]:
    """The non-streamed request equal to ``stream_exchange_with_usage`` without ``stream`` and ``stream_options``."""
    return chat_body(model, stream=False, max_tokens=TWIN_MAX_TOKENS, **GREEDY)


def _stream_with_usage(stream_session_client, chat_model) -> StreamExchange:
    """One streamed chat exchange with ``stream_options.include_usage`` true (greedy and seeded: ``twin_body``)."""
    return open_stream(stream_session_client, {**twin_body(chat_model), "stream": True,
                                               "stream_options": {"include_usage": True}})


def _stream_plain(stream_session_client, chat_model, conformance) -> StreamExchange:
    """One streamed chat exchange without include_usage. On the embedded server it is paced (the
    X-Mock-Tokens-Per-Second control) so that buffering (HEADERS-006) becomes visible. For a profile claiming
    CORS it carries a browser's Origin, so the CORS check of streams (CORS-005) judges it without a stream of its
    own."""
    headers = {"X-Mock-Tokens-Per-Second": "50"} if is_embedded(conformance) else {}
    headers.update(browser_headers(conformance.profile))
    return open_stream(stream_session_client, chat_body(chat_model, stream=True), headers or None)


stream_exchange_with_usage_cached, stream_exchange_with_usage = _cached("stream_exchange_with_usage", _stream_with_usage)
stream_exchange_plain_cached, stream_exchange_plain = _cached("stream_exchange_plain", _stream_plain)


def _stream_unknown_model(stream_session_client) -> StreamExchange:
    """A streaming request for a model that does not exist (rejected before generation: SSE-013)."""
    return open_stream(stream_session_client, chat_body("conformance-no-such-model-0", stream=True))


stream_exchange_unknown_model_cached, stream_exchange_unknown_model = _cached("stream_exchange_unknown_model",
                                                                        _stream_unknown_model)


# -- tools ------------------------------------------------------------------------------------------------
def _tool_call(stream_session_client, chat_model) -> JsonExchange:
    """A non-streamed request that asks for a get_weather call."""
    return post_chat(stream_session_client, chat_body(
        chat_model, stream=False, max_tokens=TOOL_MAX_TOKENS, prompt=TOOL_PROMPT, tools=[WEATHER_TOOL],
        tool_choice="auto"))


def _tool_stream(stream_session_client, chat_model) -> StreamExchange:
    """The same request, streamed."""
    return open_stream(stream_session_client, chat_body(
        chat_model, stream=True, max_tokens=TOOL_MAX_TOKENS, prompt=TOOL_PROMPT, tools=[WEATHER_TOOL],
        tool_choice="auto"))


def _tool_parallel_stream(stream_session_client, chat_model) -> StreamExchange:
    """A streamed request asking for two tool calls in one turn (parallel-tool-calls)."""
    return open_stream(stream_session_client, chat_body(
        chat_model, stream=True, max_tokens=2 * TOOL_MAX_TOKENS, prompt=PARALLEL_PROMPT,
        tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="auto", parallel_tool_calls=True))


stream_tool_call_cached, stream_tool_call = _cached("stream_tool_call", _tool_call)
stream_tool_stream_cached, stream_tool_stream = _cached("stream_tool_stream", _tool_stream)
stream_tool_parallel_cached, stream_tool_parallel = _cached("stream_tool_parallel", _tool_parallel_stream)


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
