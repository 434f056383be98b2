"""``POST {base}/embeddings``: deterministic unit vectors, float or base64, for every input shape OpenAI accepts.

A vector is derived from a hash of (model, input) alone, so the same input gives the same vector whatever its
position in a batch, and values are float32 so the float array and the base64 bytes decode to the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from reference_server.context import request_context, server_config
from reference_server.faults import seams
from reference_server.mock import answer_cache
from reference_server.mock.tokenizer import count_tokens
from reference_server.mock.vectors import encode_base64, shorten, unit_vector
from reference_server.surfaces.models import ResolvedModel, resolve_model
from reference_server.wire.errors import ApiError

bp = Blueprint("embeddings", __name__)

MAX_INPUTS = 2048
MAX_TOKENS_PER_INPUT = 8192
DEFAULT_DIMENSIONS = 1536
ENCODINGS = ("float", "base64")
KNOWN_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})

# The checks of a request, named for the EMBEDDINGS_CHECK seam (the decision: the refusal, or None to accept).
CHECK_FIELDS = "fields"  # subject: the unknown top-level field names (sorted)
CHECK_MODEL = "model"  # subject: the requested model name
CHECK_MISSING_INPUT = "missing-input"
CHECK_STRING_INPUT = "string-input"
CHECK_EMPTY_ARRAY = "empty-array"
CHECK_EMPTY_STRING = "empty-string"
CHECK_TOKEN_INPUT = "token-input"
CHECK_ENCODING = "encoding"  # subject: the encoding_format asked for


@dataclass(frozen=True, slots=True)
class EmbeddingJob:
    """What the data items are made from: the model, the inputs, and the vector length and encoding asked."""

    model_id: str
    inputs: list[str | list[int]]
    dimensions: int
    native: int
    encoding: str


def _decide(check: str, refusal: ApiError | None, subject: Any = None) -> None:
    """Raise the refusal the ``check`` decides (None: accepted), through the ``EMBEDDINGS_CHECK`` seam."""
    refusal = seams.EMBEDDINGS_CHECK(server_config(), refusal, check, subject)
    if refusal is not None:
        raise refusal


# ---------------------------------------------------------------- request validation


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 envelope."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. The body must be a JSON object.")
    return body


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_tokens(tokens: list[Any]) -> list[int]:
    if not tokens:
        raise ApiError(400, "'input' token arrays must not be empty.", param="input")
    if not all(_is_int(t) for t in tokens):
        raise ApiError(400, "'input' token arrays must hold non-negative integers.", param="input")
    return tokens


def _check_text(text: str) -> str:
    if text == "":
        _decide(CHECK_EMPTY_STRING, ApiError(400, "'input' cannot be an empty string.", param="input"))
    return text


def parse_inputs(value: Any) -> list[str | list[int]]:
    """Normalise the four input shapes (string, string[], int[], int[][]) to a list of texts / token arrays; the token
    shapes only where the profile claims ``embeddings-token-input``. The parsed list passes the
    ``EMBEDDINGS_INPUTS`` seam."""
    return seams.EMBEDDINGS_INPUTS(server_config(), _inputs(value), value)


def _inputs(value: Any) -> list[str | list[int]]:
    if value is None:
        _decide(CHECK_MISSING_INPUT, ApiError(400, "you must provide an input parameter", param="input"))
        return [""]  # a missing input accepted (EMBEDDINGS_CHECK decided so) is embedded as the empty string
    if isinstance(value, str):
        _decide(CHECK_STRING_INPUT, None)
        return [_check_text(value)]
    if not isinstance(value, list):
        raise ApiError(400, "'input' must be a string, an array of strings, or token arrays.", param="input")
    if not value:
        _decide(CHECK_EMPTY_ARRAY, ApiError(400, "'input' must not be an empty array.", param="input"))
        return []
    if len(value) > MAX_INPUTS:
        raise ApiError(400, f"'input' holds {len(value)} items; at most {MAX_INPUTS} are allowed.", param="input")
    if all(isinstance(v, str) for v in value):
        return [_check_text(v) for v in value]
    # Token inputs only where the profile's doc serves them (Ollama's /v1/embeddings takes strings only).
    tokens_served = server_config().profile.claims("embeddings-token-input")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        refusal = ApiError(400, "'input' token arrays are not supported.", param="input")
        _decide(CHECK_TOKEN_INPUT, None if tokens_served else refusal)
        return [_check_tokens(value)]
    if all(isinstance(v, list) for v in value):
        if not tokens_served:
            raise ApiError(400, "'input' arrays of token arrays are not supported.", param="input")
        return [_check_tokens(v) for v in value]
    raise ApiError(400, "'input' mixes strings, integers and arrays.", param="input")


def parse_dimensions(value: Any, native: int) -> int:
    if value is None:
        return native
    if not _is_int(value) or value < 1:
        raise ApiError(400, "'dimensions' must be an integer of at least 1.", param="dimensions")
    if value > native:
        raise ApiError(400, f"'dimensions' must be at most {native} for this model.", param="dimensions")
    return value


def parse_encoding(value: Any) -> str:
    if value is None:
        return "float"
    if value not in ENCODINGS:
        _decide(CHECK_ENCODING, ApiError(
            400, f"Invalid value for 'encoding_format' = {value!r}. Supported values: ['float', 'base64'].",
            param="encoding_format"), value)
        return "float"  # an unsupported encoding accepted (EMBEDDINGS_CHECK decided so) answers floats
    return value


def input_tokens(item: str | list[int]) -> int:
    """Usage of one input: the shared tokenizer for texts, the array length for token arrays."""
    return len(item) if isinstance(item, list) else count_tokens(item)


def resolve_embedding_model(name: Any) -> ResolvedModel:
    """resolve_model for embedding models; its refusal passes the ``EMBEDDINGS_CHECK`` seam."""
    try:
        return resolve_model(name, kind="embedding")
    except ApiError as err:
        _decide(CHECK_MODEL, err, name)
        raise


# ---------------------------------------------------------------- the route


def embedding_items(job: EmbeddingJob) -> list[dict[str, Any]]:
    """One data item per input, through the ``EMBEDDING_DATA`` seam."""
    data = []
    for index, item in enumerate(job.inputs):
        vector = unit_vector(job.model_id, item, job.native)
        if job.dimensions != job.native:
            vector = shorten(vector, job.dimensions)
        embedding = encode_base64(vector) if job.encoding == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return seams.EMBEDDING_DATA(server_config(), data, job)


@bp.post("/embeddings")
def create_embeddings():
    """Create embeddings for one or many inputs (OpenAI ``CreateEmbeddingRequest``)."""
    config = server_config()
    if not config.profile.claims("embeddings"):
        abort(404)
    ctx = request_context()
    key = answer_cache.request_key(ctx, "embeddings")
    cached = answer_cache.lookup(ctx, key)
    if cached is not None:  # the same bytes were validated and answered before: only the token charge is left
        ctx.server.limits.admit(ctx, cached.model_id, tokens=cached.prompt_tokens)
        return Response(cached.body, mimetype="application/json")
    body = seams.EMBEDDINGS_REQUEST(config, json_body())
    unknown = set(body) - KNOWN_FIELDS
    if unknown:
        _decide(CHECK_FIELDS, None, sorted(unknown))
    model = resolve_embedding_model(body.get("model"))
    inputs = parse_inputs(body.get("input"))
    encoding = parse_encoding(body.get("encoding_format"))
    native = int(model.entry.get("dimensions") or DEFAULT_DIMENSIONS)
    dims = parse_dimensions(body.get("dimensions"), native)
    for item in inputs:
        if input_tokens(item) > MAX_TOKENS_PER_INPUT:
            raise ApiError(400, f"This model's maximum context length is {MAX_TOKENS_PER_INPUT} tokens per input.",
                           param="input")
    prompt_tokens = sum(input_tokens(item) for item in inputs)
    ctx.server.limits.admit(ctx, model.id, tokens=prompt_tokens)
    payload = {
        "object": "list",
        "data": embedding_items(EmbeddingJob(model.id, inputs, dims, native, encoding)),
        "model": model.response_model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    resp: Response = seams.EMBEDDINGS_RESPONSE(config, jsonify(seams.EMBEDDINGS_BODY(config, payload)))
    answer_cache.store(ctx, key, answer_cache.CachedAnswer(model.id, prompt_tokens, body=resp.get_data()))
    return resp
