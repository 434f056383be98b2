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
    """One fault's change at one seam; ``applies`` (None: always) says whether it could change this value."""

    fault: Fault
    apply: Callable[..., Any]
    applies: Callable[..., bool] | None = None


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

    def active(self, config: ServerConfig) -> tuple[Transform, ...]:
        """The transforms that can act for ``config``: all when faults are traced, else those of its faults."""
        if config.fault_trace is not None:
            return tuple(self.transforms)
        return tuple(t for t in self.transforms if t.fault.requirement in config.faults)

    def __call__(self, config: ServerConfig, value: T, *context: Any) -> T:
        transforms = config.seam_transforms.get(self)
        if not transforms:
            return value
        fault = config.fault
        prepared = self.prepare is None
        for t in transforms:
            if (t.applies is None or t.applies(value, *context)) and fault(t.fault):
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


# chat request / policy
# error -> decision: a problem validation found in a chat request body (surfaces/chat_request.Problem), context ();
# a transform reshapes its error or accepts the input (``problem.accept(value)``: validation goes on with value)
CHAT_PROBLEM: Seam = Seam("chat problem")
# error -> response: the answer to a chat request refused before generation (its body unreadable or invalid), the
# rendered envelope; context (err, body) with body None when it could not be read
CHAT_REJECTION: Seam = Seam("chat rejection")

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
