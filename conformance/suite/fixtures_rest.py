"""Shared exchanges for the rest checks (models, embeddings, Ollama, rate limits, CORS).

Requests go to the run's exchange store keyed by what is sent (method, URL, body, headers), so a request that
serves several checks is sent once per process. Each test reaches them through the ``rest`` fixture; the store
attaches the exchanges it used to the test's own transcript: a failing test points at the bytes it judged, even
when an earlier test sent them.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.client import Exchange, Response
from conformance.exchanges import Recorded, Spec, exchange
from conformance.ndjson import NdjsonTranscript
from conformance.suite.fixtures_chat import chat_basic
from gateway_spec.openapi import schema_errors

__all__ = ["rest", "one_token_chat", "keyless_chat", "models_listing", "model_retrieval", "embedding_batch", "RestExchange", "RestSession", "envelope_problems",
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

    @classmethod
    def of(cls, rec: Recorded) -> RestExchange:
        ndjson = rec.ndjson() if rec.spec.read == "ndjson" else None
        raw = ndjson.raw if ndjson is not None else rec.raw
        return cls(Response(rec.status, rec.headers, raw, rec.last), list(rec.exchanges), ndjson)


class RestSession:
    """What a test uses: requests the store sends once per process; what the test used joins its transcript."""

    def __init__(self, store, node, profile) -> None:
        self._store, self._node, self.profile = store, node, profile
        self.client = store.client()  # URLs are built the way the store's client sends them
        self._fresh = 0

    def request(self, method: str, path: str, body: Any = None, *, headers: dict | None = None,
                auth: bool = True, fresh: bool = False) -> RestExchange:
        """An OpenAI-surface request (``path`` under the profile's base path) or any absolute URL."""
        return self._fetch(Spec(method, self.client.api(path), body, headers=headers or {}, auth=auth), fresh)

    def _fetch(self, spec: Spec, fresh: bool) -> RestExchange:
        """The exchange for this request, whoever asked for it first (``fresh``: always send a new one)."""
        if fresh:
            self._fresh += 1
            return self._store.adhoc(f"rest.fresh{self._fresh}@{self._node.nodeid}", spec, self._node,
                                     RestExchange.of)
        return self._store.shared(spec, self._node, RestExchange.of)

    def attach(self, exchange: RestExchange) -> RestExchange:
        """Copy an exchange into this test's transcript (the store already does for what it hands out)."""
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
        return self._fetch(Spec(method, self.ollama_url(route), body, headers=headers or {}, auth=self.ollama_auth),
                           fresh)

    def ollama_stream(self, route: str, body: Any, *, headers: dict | None = None,
                      fresh: bool = False) -> RestExchange:
        """A POST whose body is read as NDJSON (``.ndjson`` holds the objects and findings)."""
        return self._fetch(Spec("POST", self.ollama_url(route), body, headers=headers or {}, auth=self.ollama_auth,
                                read="ndjson"), fresh)


@pytest.fixture
def rest(exchange_store, request, profile) -> RestSession:
    """Requests for one test, each sent once per process; what it uses appears in its transcript."""
    return RestSession(exchange_store, request.node, profile)


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


# -- shared exchanges the rest checks judge (``rest`` requests of the same content get these recordings) -----------
def rest_chat_spec(plan, model: str, *, auth: bool = True) -> Spec:
    """What ``RestSession.chat(model)`` (``keyless_chat`` with ``auth=False``) sends."""
    body = {"model": model, "messages": CHAT_PROMPT, "max_tokens": 1}
    return Spec.post("/chat/completions", body, headers=browser_headers(plan.profile), auth=auth)


@exchange(view=RestExchange.of, needs=(chat_basic,))
def one_token_chat(plan, chat_basic) -> Spec:
    """The one-token completion of the run's model (model, rate-limit and CORS checks judge it); sent after
    ``chat_basic``, so the two show a remaining-requests count going down (RATE-LIMITS-012)."""
    return rest_chat_spec(plan, plan.chat_model)


@exchange(view=RestExchange.of)
def keyless_chat(plan) -> Spec:
    """The one-token completion without Authorization: the 401 that AUTH-001 and CORS-007 judge."""
    return rest_chat_spec(plan, plan.chat_model, auth=False)


@exchange(view=RestExchange.of)
def models_listing(plan) -> Spec:
    """``GET {base}/models``."""
    return Spec.get("/models")


@exchange(view=RestExchange.of)
def model_retrieval(plan) -> Spec:
    """``GET {base}/models/{the run's chat model}`` (the model checks plan the same request: it goes once)."""
    return Spec.get(f"/models/{urllib.parse.quote(plan.chat_model, safe='/:')}")


def embedding_spec(plan, **fields) -> Spec:
    """What the embeddings checks' ``rest.post("/embeddings", ...)`` sends for the run's embedding model."""
    return Spec.post("/embeddings", {"model": plan.embedding_model, **fields})


@exchange(view=RestExchange.of)
def embedding_batch(plan) -> Spec | None:
    """The batch most embeddings checks share (``EMBEDDING_TEXTS``); None without an embedding model."""
    if not plan.profile.claims("embeddings") or not plan.embedding_model:
        return None
    return embedding_spec(plan, input=EMBEDDING_TEXTS)
