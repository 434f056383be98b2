"""The seams of the request path where faults act, so the correct path reads without fault branches.

A seam is a point where one value of the request path is complete: the parsed request, one generated choice, the
usage object, the rendered answer body, the chunk sequence of a stream. The surface builds the correct value and
passes it through its seam; each fault module registers, at import time, a transform for the fault it implements::

    @seams.COMPLETION.transform(FAULT_EMPTY_ID)
    def _empty_id(body, req, generations):
        body["id"] = ""
        return body

A transform may give an ``applies`` predicate: a cheap, pure test of whether the fault could change this value at
all. The fault is asked about (``config.fault``) only where the predicate holds, so fault tracing (faults/trace.py)
ties a fault to exactly the requests it can change. Transforms run in registration order.

A valid variant (faults/variants.py) may act at a seam too: ``seam.variant("name")`` registers a transform that
is bound only where the config switches that variant on, and acts without asking about any fault.

Which transforms can act is fixed per app: ``bind(config)`` (called by ``create_app`` once every fault module has
registered) keeps, per seam, the transforms of the faults the config turns on (all of them when faults are traced,
so every question lands in the trace). A seam with none bound returns its value after one dict look-up: the correct
path pays nothing for the faults it does not serve.

This module imports nothing of the server: surfaces and fault modules both import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from reference_server.config import ServerConfig
    from reference_server.faults import Fault

T = TypeVar("T")
SEAMS: list[Seam] = []  # every seam, in definition order (``bind`` walks them)


@dataclass(frozen=True, slots=True)
class Transform:
    """One fault's (or one variant's) change at one seam; ``applies`` (None: always) says whether it could change
    this value."""

    fault: Fault | None
    apply: Callable[..., Any]
    applies: Callable[..., bool] | None = None
    variant: str | None = None  # set for a variant's transform (``fault`` None): bound where the variant is on


class Seam(Generic[T]):
    """A value of the request path that faults may transform; call it with the config, the value and its context.

    ``prepare`` runs once before the first transform that applies (e.g. a deep copy, so transforms may edit the
    value in place while the correct value stays as it was built).
    """

    def __init__(self, name: str, prepare: Callable[[T], T] | None = None) -> None:
        self.name = name
        self.prepare = prepare
        self.transforms: list[Transform] = []
        SEAMS.append(self)

    def transform(self, fault: Fault, applies: Callable[..., bool] | None = None) -> Callable:
        """Decorator: register ``fn(value, *context) -> value`` for ``fault`` at this seam."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.transforms.append(Transform(fault, fn, applies))
            return fn

        return register

    def variant(self, name: str, applies: Callable[..., bool] | None = None) -> Callable:
        """Decorator: register ``fn(value, *context) -> value`` for the valid variant ``name`` at this seam."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.transforms.append(Transform(None, fn, applies, variant=name))
            return fn

        return register

    def active(self, config: ServerConfig) -> tuple[Transform, ...]:
        """The transforms that can act for ``config``: those of its variants, and of its faults (every fault's when
        faults are traced)."""
        traced = config.fault_trace is not None
        return tuple(t for t in self.transforms if (t.variant in config.variants if t.fault is None
                                                    else traced or t.fault.requirement in config.faults))

    def __call__(self, config: ServerConfig, value: T, *context: Any) -> T:
        transforms = config.seam_transforms.get(self)
        if not transforms:
            return value
        fault = config.fault
        prepared = self.prepare is None
        for t in transforms:
            if (t.applies is None or t.applies(value, *context)) and (t.fault is None or fault(t.fault)):
                if not prepared:
                    value, prepared = self.prepare(value), True
                value = t.apply(value, *context)
        return value

    def __repr__(self) -> str:
        return f"<Seam {self.name}: {len(self.transforms)} transforms>"


def bind(config: ServerConfig) -> None:
    """Fix, for every seam, the transforms that can act for ``config`` (``create_app``, after every fault module
    registered its transforms). A config never bound serves no fault at any seam."""
    config.seam_transforms = {seam: active for seam in SEAMS if (active := seam.active(config))}


# request -> parsed request: ChatRequest, context ()
CHAT_REQUEST: Seam = Seam("chat request")
# answer -> answer: one generated choice (mock/providers.Generation), context (req, index, provider)
GENERATION: Seam = Seam("generation")
# answer -> answer: the usage object, context (req, generations, streamed)
USAGE: Seam = Seam("usage")
# answer -> answer: the chat.completion body, context (req, generations)
COMPLETION: Seam = Seam("completion")
# chunk sequence -> chunk sequence: faults/stream.ChunkStream, context (req,)
CHUNKS: Seam = Seam("chunks")
# headers: the JSON chat answer's Response, context (req,)
CHAT_RESPONSE: Seam = Seam("chat response")
# frames -> bytes: the SSE frames of a chat stream (one per chunk, then [DONE]), lazily; context (req, encoder,
# chunks). A transform wraps the iterator and changes bytes within frames, never their number (X-Mock-* pacing
# counts frames).
SSE_FRAMES: Seam = Seam("sse frames")
# frames -> bytes: the mid-stream error event X-Mock-Error-After sends, context ()
MID_STREAM_ERROR: Seam = Seam("mid-stream error")


@dataclass(slots=True)
class StreamBody:
    """An event stream as it leaves: the paced body and the response headers (Content-Type included)."""

    frames: Iterator[bytes]
    headers: dict[str, str]


# frames -> bytes, headers: the paced body of an event stream and its headers, context ()
STREAM_BODY: Seam = Seam("stream body")
# headers: the x-request-id an answer carries (None: left out), context (resp,)
REQUEST_ID: Seam = Seam("request id")
# error -> error: an ApiError about to be rendered as the envelope (wire/errors.error_response), context ()
ERROR: Seam = Seam("error")
# error -> response: the rendered error envelope with its headers, context (err,)
ERROR_RESPONSE: Seam = Seam("error response")
# error -> response: the envelope answering a routing or protocol error werkzeug raised (404, 405, 413), context
# (exc,)
HTTP_ERROR: Seam = Seam("http error")
# headers: the 204 answer to a CORS preflight (wire/cors.py), context ()
CORS_PREFLIGHT: Seam = Seam("cors preflight")
# headers: the CORS header pairs of an actual response, context (resp,)
CORS_HEADERS: Seam = Seam("cors headers")

# models / embeddings / ollama surfaces
# request -> parsed request: how a model name matched (surfaces/models.Lookup), context ()
MODEL_LOOKUP: Seam = Seam("model lookup")
# request -> parsed request: the entry synthesised for a routed provider-model name (None: refused), context (name,)
ROUTED_MODEL: Seam = Seam("routed model")
# decision: whether a requested model is served (surfaces/models.Resolution), context ()
MODEL_RESOLUTION: Seam = Seam("model resolution")
# answer -> answer: the profile entries GET /models lists, context (profile,)
MODEL_ENTRIES: Seam = Seam("model entries")
# answer -> answer: one Model object (before a variant renames fields), context (entry,)
MODEL_OBJECT: Seam = Seam("model object")
# answer -> answer: the GET /models body, context ()
MODELS_LIST: Seam = Seam("models list")
# answer -> answer: GET /models/{id}'s Model, or the ApiError for an unknown id, context (entry or None,)
MODEL_RETRIEVED: Seam = Seam("model retrieved")
# request -> parsed request: the POST /embeddings JSON body, context ()
EMBEDDINGS_REQUEST: Seam = Seam("embeddings request")
# decision: the refusal one check of an embeddings request gives (None: accepted), context (check, subject) with the
# check names of surfaces/embeddings.py (CHECK_*)
EMBEDDINGS_CHECK: Seam = Seam("embeddings check")
# request -> parsed request: the inputs to embed (texts or token arrays), context (the request's input,)
EMBEDDINGS_INPUTS: Seam = Seam("embeddings inputs")
# answer -> answer: the embeddings data items, context (surfaces/embeddings.EmbeddingJob,)
EMBEDDING_DATA: Seam = Seam("embedding data")
# answer -> answer: the embeddings body (object, data, model, usage), context ()
EMBEDDINGS_BODY: Seam = Seam("embeddings body")
# headers: the embeddings Response, context ()
EMBEDDINGS_RESPONSE: Seam = Seam("embeddings response")
# decision: the refusal of a native Ollama request before its route (None: admitted), context (its Authorization
# header or None,)
OLLAMA_ACCESS: Seam = Seam("ollama access")
# decision: which served model a native request names (surfaces/ollama.NativeModel), context (profile,)
OLLAMA_MODEL: Seam = Seam("ollama model")
# answer -> answer: a native JSON body, context (route,): "version", "embed", or "error" ({"error": message})
OLLAMA_BODY: Seam = Seam("ollama body")
# answer -> answer: the served model entries /api/tags lists, context ()
OLLAMA_TAGS: Seam = Seam("ollama tags")
# answer -> answer: one /api/tags item (also in /api/ps and /api/show), context ()
OLLAMA_TAG: Seam = Seam("ollama tag")
# answer -> answer: an RFC 3339 created_at / modified_at / expires_at, context (unix seconds,)
OLLAMA_TIME: Seam = Seam("ollama time")
# answer -> answer: the final object's durations and counts, context ()
OLLAMA_METRICS: Seam = Seam("ollama metrics")
# answer -> answer: the native tool calls of an answer, context ()
OLLAMA_TOOL_CALLS: Seam = Seam("ollama tool calls")
# chunk sequence -> chunk sequence: the streamed objects of a generated answer, context (route,): "chat"/"generate"
OLLAMA_STREAM: Seam = Seam("ollama stream")
# decision: whether the answer streams NDJSON, context (route,)
OLLAMA_STREAMS: Seam = Seam("ollama streams")
# headers: the answer of /api/chat or /api/generate, context (route, streamed)
OLLAMA_RESPONSE: Seam = Seam("ollama response")
# frames -> bytes: one NDJSON line as it is sent, context (its object, whether it is the last)
OLLAMA_LINE: Seam = Seam("ollama line")
# headers: the answer to GET or HEAD /, context (method,)
OLLAMA_ROOT: Seam = Seam("ollama root")

# chat request / policy
# error -> decision: a problem validation found in a chat request body (surfaces/chat_request.Problem), context ();
# a transform reshapes its error or accepts the input (``problem.accept(value)``: validation goes on with value)
CHAT_PROBLEM: Seam = Seam("chat problem")
# error -> response: the answer to a chat request refused before generation (its body unreadable or invalid), the
# rendered envelope; context (err, body) with body None when it could not be read
CHAT_REJECTION: Seam = Seam("chat rejection")
# decision -> decision: one check of policy/auth.py, its refusal (ApiError) or None when it passes; context (check,
# subject, settings): the check's name, what it judged (header, scheme or token), the key's settings where known
AUTH: Seam = Seam("auth")
# decision -> decision: a refusal of a model call policy/limits.Limits.admit makes (ApiError), None: the call is
# admitted; context (reason, policy): allowlist, suspended, balance, daily, quota or tokens, the key's KeyPolicy
ADMISSION: Seam = Seam("admission")
# error -> error: a 429 of the limits with its Retry-After (policy/limits.rate_limit_error), context (snapshot,)
RATE_LIMIT_ERROR: Seam = Seam("rate limit error")
# headers: the rate-limit header pairs of an answer in the profile's style, context (resp, snapshot)
RATE_LIMIT_HEADERS: Seam = Seam("rate limit headers")
