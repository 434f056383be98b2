"""Shared exchanges for the chat checks, recorded by the run's exchange store (``conformance.exchanges``).

``chat_basic`` is declared, so the store sends it with the plan. ``chat_calls.post(name, body)`` asks the store
for a named exchange of this group: sent once per process on first use and handed to every later test that names
it, its transcript attached to each test that judges it. Bodies are small on purpose (tiny ``max_tokens``, short
prompts): the whole black-box run has a budget of requests and tokens.

The judging helpers that several check modules share (error envelope, feature skips) live here too; they are not
fixtures, so ``__all__`` keeps them out of conftest's wildcard import.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conformance.exchanges import Recorded, Spec, exchange

__all__ = ["chat_calls", "chat_basic", "chat_basic_body"]

# The envelope requirements every provoked client error is judged against (ERRORS-001/002/003 shape, content type;
# ERRORS-015 no 5xx; ERRORS-022 type name; ERRORS-024 no traces). Tests that provoke an error list these in their
# marker and call ``check_error_envelope``; the requirement the test is about checks only its status (and param).
ENVELOPE = ("ERRORS-001", "ERRORS-002", "ERRORS-003", "ERRORS-015", "ERRORS-022", "ERRORS-024")
ENVELOPE_KEYS = ("message", "type", "param", "code")
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', '.py", line ', "\n    at ")


@dataclass
class ChatExchange:
    """One recorded request and its answer: status, headers, raw text, parsed JSON (or None), transcript."""

    name: str
    request: Any
    status: int
    headers: httpx.Headers
    text: str
    body: Any
    transcript: list = field(default_factory=list)
    chunks: list | None = None      # streamed exchanges: the JSON chunks before [DONE]
    stream: Any = None              # streamed exchanges: the SseTranscript

    @classmethod
    def of(cls, rec: Recorded) -> ChatExchange:
        """The view of a recording. Streamed (``read="sse-or-json"``): a 200 answer that is not JSON is read as
        SSE, whatever its Content-Type. Judging the type is CHAT-STREAM-003's job; the checks that read this
        exchange judge the events, so a wrong type must not hide them (it would move every such check along with
        CHAT-STREAM-003)."""
        if rec.spec.read == "sse-or-json" and rec.status == 200 and not _is_json(rec.raw):
            sse = rec.sse()
            return cls(rec.name, rec.spec.body, rec.status, rec.headers, sse.raw.decode("utf-8", errors="replace"),
                       None, rec.exchanges, chunks=sse.chunks(), stream=sse)
        try:
            parsed = json.loads(rec.raw)
        except ValueError:
            parsed = None
        return cls(rec.name, rec.spec.body, rec.status, rec.headers, rec.raw.decode("utf-8", errors="replace"),
                   parsed, rec.exchanges)

    @property
    def status_code(self) -> int:
        """Alias of ``status``, so error helpers judge recorded and direct responses alike."""
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


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


class ChatCalls:
    """One test's access to the chat group's named exchanges (the store sends each name once per process)."""

    def __init__(self, store, node) -> None:
        self.store, self.node = store, node

    def post(self, name: str, body: Any, *, headers: dict | None = None, path: str = "/chat/completions",
             stream: bool = False) -> ChatExchange:
        """The exchange called ``name``; a harness failure is raised (ERROR) for every test that names it."""
        spec = Spec.post(path, body, headers=headers or {}, read="sse-or-json" if stream else "buffered")
        return self.store.adhoc(f"chat.{name}", spec, self.node, ChatExchange.of)


@pytest.fixture
def chat_calls(exchange_store, request) -> ChatCalls:
    """Named chat exchanges for this test, with their transcripts attached to it."""
    return ChatCalls(exchange_store, request.node)


def chat_basic_body(model: str) -> dict:
    """The plain request many checks share: system + user, room to finish (PARAMS-023) but still cheap."""
    return {"model": model, "max_tokens": 24,
            "messages": [{"role": "system", "content": "You are a terse assistant."},
                         {"role": "user", "content": "Say hello in three words."}]}


@exchange(view=ChatExchange.of)
def chat_basic(plan) -> Spec:
    """The shared plain non-streamed completion (``chat_basic_body``)."""
    return Spec.post("/chat/completions", chat_basic_body(plan.chat_model))


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


def _rotate(ch: str) -> str:
    """The next character of the same class (digit, a-f, other lower case letter, upper case letter)."""
    for alphabet in (string.digits, "abcdef", "ghijklmnopqrstuvwxyz", string.ascii_uppercase):
        if ch in alphabet:
            return alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
    return ch


def unknown_key_like(key: str, pattern: str | None) -> str:
    """A key of the same shape as ``key`` that still matches ``pattern`` but differs in every character it can.

    Changing every changeable character (not just one) keeps a real ``--gw-api-key`` out of the transcript: the
    derived key shares the key's format, not its secret part.
    """
    chars = list(key)
    for i in range(len(chars)):
        original = chars[i]
        chars[i] = _rotate(original)
        if pattern and not re.fullmatch(pattern, "".join(chars)):
            chars[i] = original
    return "".join(chars)
