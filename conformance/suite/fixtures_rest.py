"""Shared exchanges for the rest checks (models, embeddings, Ollama, rate limits, CORS).

Requests go through one session-scoped client and are memoised by (method, URL, body, headers), so a request that
serves several checks is sent once per run. Each test reaches them through the ``rest`` fixture, which also copies
the exchanges it used into the test's own transcript: a failing test points at the bytes it judged, even when an
earlier test sent them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.client import Exchange, GatewayClient, Response
from conformance.ndjson import NdjsonTranscript, read_ndjson
from gateway_spec.openapi import schema_errors

__all__ = ["rest_shared", "rest", "RestExchange", "RestSession", "envelope_problems",
           "ollama_error_problems", "json_or_none", "browser_headers", "CHAT_PROMPT", "EMBEDDING_TEXTS", "ORIGIN"]

CHAT_PROMPT = [{"role": "user", "content": "Say OK."}]
# The batch most embeddings checks share (one request for the shape, index, base64 and same-vector checks).
EMBEDDING_TEXTS = ["The quick brown fox.", "Conformance checks."]
# A browser page's origin; no gateway knows it, so an echo proves the gateway reflects rather than allow-lists.
ORIGIN = "https://conformance-suite.example"


def browser_headers(profile) -> dict[str, str]:
    """``Origin`` for a profile claiming CORS (a browser sends it on every cross-origin call), else nothing.

    The shared one-token completion, the keyless 401 and the plain stream carry it, so the CORS checks of actual
    responses judge exchanges that other checks need anyway instead of spending requests of their own.
    """
    return {"Origin": ORIGIN} if profile.claims("cors") else {}


def json_or_none(response: Response) -> Any:
    """The parsed JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def envelope_problems(response: Response) -> list[str]:
    """Why the body is not the OpenAI error envelope (``ErrorResponse`` of the spec); empty when it is."""
    body = json_or_none(response)
    if body is None:
        return [f"body is not JSON: {response.text[:200]!r}"]
    return schema_errors("ErrorResponse", body)


def ollama_error_problems(response: Response) -> list[str]:
    """Why the body is not Ollama's ``{"error": "<string>"}``; empty when it is."""
    body = json_or_none(response)
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return [f'expected {{"error": "<string>"}}, got {response.text[:200]!r}']
    return schema_errors("OllamaErrorResponse", body)


@dataclass
class RestExchange:
    """A response as the checks see it, the exchanges that produced it and, for NDJSON streams, the read stream."""

    response: Response
    exchanges: list[Exchange]
    ndjson: NdjsonTranscript | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def headers(self):
        return self.response.headers

    def json(self) -> Any:
        return json_or_none(self.response)


class RestShared:
    """The session's memo of exchanges, keyed by what was sent."""

    def __init__(self, client: GatewayClient, stream_timeout: float) -> None:
        self.client = client
        self.stream_timeout = stream_timeout
        self._memo: dict[str, RestExchange] = {}

    def fetch(self, method: str, url: str, body: Any, headers: dict | None, auth: bool, fresh: bool,
              stream: bool = False) -> RestExchange:
        """The memoised exchange for this request (``fresh``: always send, and remember the newest)."""
        key = json.dumps([method, url, body, headers, auth, stream], sort_keys=True, default=str)
        if fresh or key not in self._memo:
            start = len(self.client.transcript)
            if stream:
                exchange = self._stream(url, body, headers, auth)
            else:
                response = self.client.request(method, url, json_body=body, headers=headers, auth=auth)
                exchange = RestExchange(response, [])
            exchange.exchanges = self.client.transcript[start:]
            del self.client.transcript[:]  # the memo keeps what is needed; the client need not keep it all
            self._memo[key] = exchange
        return self._memo[key]

    def _stream(self, url: str, body: Any, headers: dict | None, auth: bool) -> RestExchange:
        with self.client.stream(url, body, headers=headers, auth=auth) as stream:
            transcript = read_ndjson(stream.chunks(), deadline_s=self.stream_timeout)
            response = Response(stream.status_code, stream.headers, transcript.raw, stream.exchange)
        return RestExchange(response, [], transcript)


class RestSession:
    """What a test uses: memoised requests whose exchanges join the test's transcript."""

    def __init__(self, shared: RestShared, sink: GatewayClient, profile) -> None:
        self._shared, self._sink, self.profile = shared, sink, profile
        self.client = shared.client

    def request(self, method: str, path: str, body: Any = None, *, headers: dict | None = None,
                auth: bool = True, fresh: bool = False) -> RestExchange:
        """An OpenAI-surface request (``path`` under the profile's base path) or any absolute URL."""
        exchange = self._shared.fetch(method, self.client.api(path), body, headers, auth, fresh)
        return self.attach(exchange)

    def attach(self, exchange: RestExchange) -> RestExchange:
        """Copy an exchange into this test's transcript (once) and return it."""
        for item in exchange.exchanges:
            if not any(item is seen for seen in self._sink.transcript):
                self._sink.transcript.append(item)
        return exchange

    def get(self, path: str, **kw) -> RestExchange:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw) -> RestExchange:
        return self.request("POST", path, body, **kw)

    def chat(self, model: str, *, max_tokens: int = 1, headers: dict | None = None, fresh: bool = False,
             **extra) -> RestExchange:
        """A minimal chat completion (one short prompt, ``max_tokens`` tokens). Without ``headers`` it carries
        ``browser_headers``: the one-token completion of the run's model then serves the model, rate-limit and
        CORS checks as one exchange."""
        body = {"model": model, "messages": CHAT_PROMPT, "max_tokens": max_tokens, **extra}
        headers = browser_headers(self.profile) if headers is None else headers
        return self.post("/chat/completions", body, headers=headers or None, fresh=fresh)

    def keyless_chat(self, model: str) -> RestExchange:
        """The one-token completion without Authorization (with ``browser_headers``): the 401 that AUTH-001 and
        the CORS check of error responses (CORS-007) both judge."""
        body = {"model": model, "messages": CHAT_PROMPT, "max_tokens": 1}
        return self.post("/chat/completions", body, headers=browser_headers(self.profile) or None, auth=False)

    # -- the Ollama surface: paths under ``ollama.base_path``, auth only where the profile requires it -----------
    def ollama_url(self, route: str) -> str:
        """``/tags`` -> ``{target}{ollama.base_path}/tags``; ``/`` stays the server root."""
        base = (self.profile.get("ollama.base_path") or "/api").rstrip("/")
        return self.client.url(route if route == "/" else base + route)

    @property
    def ollama_auth(self) -> bool:
        return bool(self.profile.get("ollama.auth_required"))

    def ollama(self, method: str, route: str, body: Any = None, *, fresh: bool = False,
               headers: dict | None = None) -> RestExchange:
        """A buffered request to the Ollama surface."""
        exchange = self._shared.fetch(method, self.ollama_url(route), body, headers, self.ollama_auth, fresh)
        return self.attach(exchange)

    def ollama_stream(self, route: str, body: Any, *, headers: dict | None = None,
                      fresh: bool = False) -> RestExchange:
        """A POST whose body is read as NDJSON (``.ndjson`` holds the objects and findings)."""
        exchange = self._shared.fetch("POST", self.ollama_url(route), body, headers, self.ollama_auth, fresh,
                                      stream=True)
        return self.attach(exchange)


@pytest.fixture(scope="session")
def rest_shared(conformance, target, api_key):
    """The session's memo of rest exchanges and the client that sends them."""
    settings = conformance.client_settings(target, api_key)
    settings["redactor"] = conformance.redactor_with(api_key)
    client = GatewayClient(**settings)
    yield RestShared(client, conformance.options.stream_timeout)
    client.close()


@pytest.fixture
def rest(rest_shared, make_client, profile) -> RestSession:
    """Memoised requests for one test; what it uses appears in its transcript."""
    return RestSession(rest_shared, make_client(), profile)


def listed_models(rest: RestSession, expect, req_id: str) -> list[dict]:
    """The models list's items for a check that needs them; ``req_id`` is Not testable when there is no list."""
    # A bare array still shows its items: only MODELS-001 judges the wrapper, so its break does not cascade.
    exchange = rest.get("/models")
    body = exchange.json()
    data = body.get("data") if isinstance(body, dict) else body
    if exchange.status != 200 or not isinstance(data, list):
        expect.untestable(req_id, f"GET /models gave no list of models (HTTP {exchange.status})")
        return []
    return [m for m in data if isinstance(m, dict)]
