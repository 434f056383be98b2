"""Shared exchanges for the chat checks (session-cached so the run spends few requests).

One request serves many checks: ``chat_calls.post(name, body)`` sends a body once per session (per xdist worker)
and hands every later test the same parsed answer, while attaching that exchange's transcript to each test that
uses it, so a failing check still points at the wire it judged. Bodies are small on purpose (tiny ``max_tokens``,
short prompts): the whole black-box run has a budget of requests and tokens.

The judging helpers that several check modules share (error envelope, feature skips) live here too; they are not
fixtures, so ``__all__`` keeps them out of conftest's wildcard import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conformance.client import GatewayClient, HarnessError
from conformance.sse import read_stream

__all__ = ["chat_cache", "chat_calls", "chat_basic", "chat_basic_body"]

# The envelope requirements every provoked client error is judged against (ERRORS-001/002/003 shape, content type;
# ERRORS-015 no 5xx; ERRORS-022 type name; ERRORS-024 no traces). Tests that provoke an error list these in their
# marker and call ``check_error_envelope``; the requirement the test is about checks only its status (and param).
ENVELOPE = ("ERRORS-001", "ERRORS-002", "ERRORS-003", "ERRORS-015", "ERRORS-022", "ERRORS-024")
ENVELOPE_KEYS = ("message", "type", "param", "code")
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', '.py", line ', "\n    at ")


@dataclass
class ChatExchange:
    """One cached request and its answer: status, headers, raw text, parsed JSON (or None), transcript."""

    name: str
    request: Any
    status: int
    headers: httpx.Headers
    text: str
    body: Any
    transcript: list = field(default_factory=list)
    chunks: list | None = None      # streamed exchanges: the JSON chunks before [DONE]
    stream: Any = None              # streamed exchanges: the SseTranscript

    @property
    def status_code(self) -> int:
        """Alias of ``status``, so error helpers judge cached and direct responses alike."""
        return self.status

    @property
    def ok(self) -> bool:
        """HTTP 200 with a JSON object body (or, streamed, with chunks)."""
        return self.status == 200 and (isinstance(self.body, dict) or self.chunks is not None)

    @property
    def choices(self) -> list:
        value = self.body.get("choices") if isinstance(self.body, dict) else None
        return value if isinstance(value, list) else []

    def choice(self, index: int = 0) -> dict:
        """``choices[index]`` as a dict ({} when missing)."""
        choices = self.choices
        return choices[index] if len(choices) > index and isinstance(choices[index], dict) else {}

    def message(self, index: int = 0) -> dict:
        msg = self.choice(index).get("message")
        return msg if isinstance(msg, dict) else {}

    @property
    def content(self) -> Any:
        return self.message().get("content")

    @property
    def usage(self) -> Any:
        return self.body.get("usage") if isinstance(self.body, dict) else None

    def summary(self) -> str:
        """Status and a body excerpt, for Received."""
        return f"HTTP {self.status}: {self.text[:300]}"


class ExchangeCache:
    """Session cache of named exchanges, sent through one session-wide client."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self._done: dict[str, ChatExchange | HarnessError] = {}

    def get(self, name: str, body: Any, *, headers: dict | None = None, path: str = "/chat/completions",
            stream: bool = False) -> ChatExchange:
        """The exchange called ``name``; sent on first use. A harness failure is cached and re-raised (ERROR)."""
        if name not in self._done:
            try:
                self._done[name] = self._stream(name, body, headers, path) if stream else \
                    self._send(name, body, headers, path)
            except HarnessError as exc:
                self.client.take_transcript()
                self._done[name] = exc
        found = self._done[name]
        if isinstance(found, HarnessError):
            raise found
        return found

    def _send(self, name, body, headers, path) -> ChatExchange:
        response = self.client.post_json(path, body, headers=headers)
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return ChatExchange(name, body, response.status_code, response.headers, response.text, parsed,
                            self.client.take_transcript())

    def _stream(self, name, body, headers, path) -> ChatExchange:
        """A streamed exchange: a 200 answer that is not JSON is read as SSE, whatever its Content-Type.

        Judging the type is CHAT-STREAM-003's job; the checks that read this exchange judge the events, so a wrong
        type must not hide them (it would move every such check along with CHAT-STREAM-003)."""
        with self.client.stream(path, body, headers=headers) as response:
            if response.status_code != 200:
                return self._buffered(name, body, response, response.read())
            sse = read_stream(response.chunks())
        if _is_json(sse.raw):  # a stream request answered with one JSON object (CHAT-STREAM-* judge that)
            return self._buffered(name, body, response, sse.raw)
        return ChatExchange(name, body, response.status_code, response.headers,
                            sse.raw.decode("utf-8", errors="replace"), None, self.client.take_transcript(),
                            chunks=sse.chunks(), stream=sse)

    def _buffered(self, name, body, response, raw: bytes) -> ChatExchange:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return ChatExchange(name, body, response.status_code, response.headers, raw.decode("utf-8", errors="replace"),
                            parsed, self.client.take_transcript())


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


class ChatCalls:
    """One test's view of the cache: every exchange it uses joins the test's transcript (once)."""

    def __init__(self, cache: ExchangeCache, sink: GatewayClient) -> None:
        self.cache, self.sink = cache, sink
        self._attached: set[str] = set()

    def post(self, name: str, body: Any, **kwargs) -> ChatExchange:
        """Cached ``POST`` of ``body`` (see ``ExchangeCache.get``)."""
        exchange = self.cache.get(name, body, **kwargs)
        if name not in self._attached:
            self._attached.add(name)
            self.sink.transcript.extend(exchange.transcript)
        return exchange


@pytest.fixture(scope="session")
def chat_cache(conformance, target, api_key):
    """The session's exchange cache (one client with the run's key and headers)."""
    settings = conformance.client_settings(target, api_key)
    settings["redactor"] = conformance.redactor
    client = GatewayClient(**settings)
    yield ExchangeCache(client)
    client.close()


def _never_sent(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the transcript sink must not send requests ({request.method} {request.url})")


@pytest.fixture
def chat_calls(chat_cache, make_client) -> ChatCalls:
    """Cached exchanges for this test, with their transcripts attached to it.

    The sink is a client of the test (so the plugin collects its transcript) that never sends anything; its mock
    transport also spares the ~0.5 s an httpx client spends building a TLS context.
    """
    return ChatCalls(chat_cache, make_client(transport=httpx.MockTransport(_never_sent)))


def chat_basic_body(model: str) -> dict:
    """The plain request many checks share: system + user, room to finish (PARAMS-023) but still cheap."""
    return {"model": model, "max_tokens": 24,
            "messages": [{"role": "system", "content": "You are a terse assistant."},
                         {"role": "user", "content": "Say hello in three words."}]}


@pytest.fixture
def chat_basic(chat_calls, chat_model) -> ChatExchange:
    """The shared plain non-streamed completion (``chat_basic_body``)."""
    return chat_calls.post("basic", chat_basic_body(chat_model))


# -- judging helpers shared by the check modules ---------------------------------------------------------------
def skip_unless_claimed(profile, feature: str) -> None:
    """Skip a case that also lists core envelope IDs (so the plugin cannot skip it by feature)."""
    if not profile.claims(feature):
        pytest.skip(f"feature {feature} not claimed by profile {profile.name}")


def error_object(response) -> dict | None:
    """``body["error"]`` when the body is a JSON object holding an object there, else None."""
    try:
        body = json.loads(response.text)
    except (ValueError, TypeError):
        return None
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else None


def expected_error_types(profile, status: int) -> list[str] | None:
    """Error ``type`` values acceptable for ``status``: OpenAI's (invalid_request_error for 400/401/404) plus what
    the profile documents for it (e.g. Ollama's not_found_error); None when neither names one."""
    types = profile.get("errors.types") or {}
    documented = types.get(status, types.get(str(status))) or []
    wanted = list(documented) if isinstance(documented, list) else [documented]
    if status in (400, 401, 404):
        wanted.append("invalid_request_error")
    return wanted or None


def check_error_envelope(expect, response, profile) -> dict | None:
    """Judge an error answer against ``ENVELOPE``; returns the error object (None when there is none)."""
    status = response.status_code
    received = f"HTTP {status}: {response.text[:300]}"
    expect("ERRORS-015", status < 500, expected="a 4xx status for client input", received=received)
    ctype = response.headers.get("content-type", "")
    expect("ERRORS-003", ctype.split(";")[0].strip().lower() == "application/json",
           expected="Content-Type application/json", received=ctype or "(none)")
    err = error_object(response)
    has_keys = err is not None and all(k in err for k in ENVELOPE_KEYS)
    expect("ERRORS-001", has_keys, expected='{"error": {"message", "type", "param", "code"}}', received=received)
    if err is None:
        return None
    types_ok = isinstance(err.get("message"), str) and err["message"].strip() != "" \
        and isinstance(err.get("type"), str) and all(isinstance(err.get(k), (str, type(None))) for k in ("param", "code"))
    expect("ERRORS-002", types_ok, expected="message non-empty string, type string, param/code string or null",
           received=err)
    wanted = expected_error_types(profile, status)
    if wanted is not None:
        expect("ERRORS-022", err.get("type") in wanted, expected=f"type in {wanted} for HTTP {status}",
               received=err.get("type"))
    message = str(err.get("message"))
    expect("ERRORS-024", not any(marker in message for marker in TRACE_MARKERS),
           expected="a message without stack traces or file paths", received=message[:300])
    return err
