"""``POST {base}/embeddings``: deterministic unit vectors, float or base64, for every input shape OpenAI accepts.

A vector is derived from a hash of (model, input) alone, so the same input gives the same vector whatever its
position in a batch, and values are float32 so the float array and the base64 bytes decode to the same numbers.
"""

from __future__ import annotations

import array
import base64
import hashlib
import json
import math
import sys
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from reference_server import faults
from reference_server.context import fault as _fault
from reference_server.context import request_context, server_config
from reference_server.mock import answer_cache
from reference_server.mock.tokenizer import count_tokens
from reference_server.surfaces.models import resolve_model
from reference_server.wire.errors import ApiError

bp = Blueprint("embeddings", __name__)

MAX_INPUTS = 2048
MAX_TOKENS_PER_INPUT = 8192
DEFAULT_DIMENSIONS = 1536
ENCODINGS = ("float", "base64")

F = faults.declare
FAULT_OBJECT = F("EMBEDDINGS-001", 'The response carries object "embedding_list" instead of "list".')
FAULT_ITEM_OBJECT = F("EMBEDDINGS-002", 'Data items carry object "vector" instead of "embedding".')
FAULT_INDEX = F("EMBEDDINGS-003", "Data item indexes start at 1 instead of 0.")
FAULT_BIG_ENDIAN = F("EMBEDDINGS-004", "base64 embeddings are big-endian float32.")
FAULT_NO_STRING = F("EMBEDDINGS-005", "A single string input is answered 400.")
FAULT_FIRST_ONLY = F("EMBEDDINGS-006", "An array of strings gets one embedding (of the first string).",
                     collateral=("EMBEDDINGS-003",))
FAULT_NO_TOKENS = F("EMBEDDINGS-007", "A token-integer array input is answered 400.")
FAULT_FLATTEN = F("EMBEDDINGS-008", "An array of token arrays is flattened into one embedding.",
                  collateral=("EMBEDDINGS-003",))
FAULT_IGNORE_DIMENSIONS = F("EMBEDDINGS-009", "dimensions is ignored (full-length vectors).")
FAULT_NO_PROMPT_TOKENS = F("EMBEDDINGS-010", "usage lacks prompt_tokens.", collateral=("EMBEDDINGS-019",))
FAULT_EMPTY_ARRAY_OK = F("EMBEDDINGS-011", "An empty input array is answered 200 with no data.")
FAULT_EMPTY_STRING_OK = F("EMBEDDINGS-012", "An empty string input is answered 200.")
FAULT_STRICT_FIELDS = F("EMBEDDINGS-013", "Unknown top-level fields are answered 400.")
FAULT_UNKNOWN_STATUS = F("EMBEDDINGS-014", "An unknown embedding model gets the other of 400/404 than the profile says.")
FAULT_MISSING_INPUT_OK = F("EMBEDDINGS-015", "A request without input is embedded as an empty string (200).")
FAULT_RAGGED = F("EMBEDDINGS-016", "In a batch, the last embedding is one number shorter than the others.")
FAULT_ALWAYS_BASE64 = F("EMBEDDINGS-017", 'Embeddings are base64 strings even for encoding_format "float" or none.')
FAULT_BAD_ENCODING_OK = F("EMBEDDINGS-018", "An unsupported encoding_format is answered 200 with floats.")
FAULT_TOTAL_TOKENS = F("EMBEDDINGS-019", "usage.total_tokens is prompt_tokens + 1.")
FAULT_CONTENT_TYPE = F("EMBEDDINGS-020", "Embedding responses are sent as text/plain.")
FAULT_POSITIONAL = F("EMBEDDINGS-021", "The vector of an input depends on its position in the batch.",
                     collateral=("EMBEDDINGS-003",))
KNOWN_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


# ---------------------------------------------------------------- vectors


def unit_vector(model_id: str, item: str | list[int], dimensions: int, salt: str = "") -> list[float]:
    """The deterministic float32 unit vector of one input (a text or a token array) for ``model_id``."""
    key = json.dumps([model_id, item, salt], separators=(",", ":")).encode()
    raw = array.array("I", hashlib.shake_256(key).digest(4 * dimensions))
    centred = [(v / 4294967295.0) * 2.0 - 1.0 for v in raw]
    return normalise(centred)


def normalise(values: list[float]) -> list[float]:
    """Scale to length 1, then round to float32 (what the base64 encoding carries)."""
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array.array("f", [v / norm for v in values]).tolist()


def shorten(vector: list[float], dimensions: int) -> list[float]:
    """OpenAI's ``dimensions``: keep the first k numbers and renormalise."""
    return normalise(vector[:dimensions])


def encode_base64(vector: list[float], big_endian: bool = False) -> str:
    """Little-endian float32 bytes, base64: exactly what openai-python and openai-node decode."""
    packed = array.array("f", vector)
    if (sys.byteorder == "little") == big_endian:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


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
    if text == "" and not _fault(FAULT_EMPTY_STRING_OK):
        raise ApiError(400, "'input' cannot be an empty string.", param="input")
    return text


def parse_inputs(value: Any) -> list[str | list[int]]:
    """Normalise the four input shapes (string, string[], int[], int[][]) to a list of texts / token arrays; the token
    shapes only where the profile claims ``embeddings-token-input``."""
    if value is None:
        if _fault(FAULT_MISSING_INPUT_OK):
            return [""]
        raise ApiError(400, "you must provide an input parameter", param="input")
    if isinstance(value, str):
        if _fault(FAULT_NO_STRING):
            raise ApiError(400, "'input' must be an array.", param="input")
        return [_check_text(value)]
    if not isinstance(value, list):
        raise ApiError(400, "'input' must be a string, an array of strings, or token arrays.", param="input")
    if not value:
        if _fault(FAULT_EMPTY_ARRAY_OK):
            return []
        raise ApiError(400, "'input' must not be an empty array.", param="input")
    if len(value) > MAX_INPUTS:
        raise ApiError(400, f"'input' holds {len(value)} items; at most {MAX_INPUTS} are allowed.", param="input")
    if all(isinstance(v, str) for v in value):
        texts = [_check_text(v) for v in value]
        return texts[:1] if _fault(FAULT_FIRST_ONLY) else texts
    # Token inputs only where the profile's doc serves them (Ollama's /v1/embeddings takes strings only).
    tokens_served = server_config().profile.claims("embeddings-token-input")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if not tokens_served or _fault(FAULT_NO_TOKENS):
            raise ApiError(400, "'input' token arrays are not supported.", param="input")
        return [_check_tokens(value)]
    if all(isinstance(v, list) for v in value):
        if not tokens_served:
            raise ApiError(400, "'input' arrays of token arrays are not supported.", param="input")
        arrays = [_check_tokens(v) for v in value]
        return [[t for a in arrays for t in a]] if _fault(FAULT_FLATTEN) else arrays
    raise ApiError(400, "'input' mixes strings, integers and arrays.", param="input")


def parse_dimensions(value: Any, native: int) -> int:
    if value is None or _fault(FAULT_IGNORE_DIMENSIONS):
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
        if _fault(FAULT_BAD_ENCODING_OK):
            return "float"
        raise ApiError(400, f"Invalid value for 'encoding_format' = {value!r}. Supported values: ['float', 'base64'].",
                       param="encoding_format")
    return value


def input_tokens(item: str | list[int]) -> int:
    """Usage of one input: the shared tokenizer for texts, the array length for token arrays."""
    return len(item) if isinstance(item, list) else count_tokens(item)


def resolve_embedding_model(name: Any):
    """resolve_model for embeddings, with the EMBEDDINGS-014 fault swapping the unknown-model status."""
    try:
        return resolve_model(name, kind="embedding")
    except ApiError as err:
        if name and err.status in (400, 404) and _fault(FAULT_UNKNOWN_STATUS):
            err.status = 400 if err.status == 404 else 404
        raise


# ---------------------------------------------------------------- the route


def embedding_items(model_id: str, inputs: list, dims: int, native: int, encoding: str) -> list[dict[str, Any]]:
    data = []
    for index, item in enumerate(inputs):
        salt = str(index) if _fault(FAULT_POSITIONAL) else ""
        vector = unit_vector(model_id, item, native, salt)
        if dims != native:
            vector = shorten(vector, dims)
        if len(inputs) > 1 and index == len(inputs) - 1 and _fault(FAULT_RAGGED):
            vector = vector[:-1]
        as_base64 = encoding == "base64" or _fault(FAULT_ALWAYS_BASE64)
        data.append({
            "object": "vector" if _fault(FAULT_ITEM_OBJECT) else "embedding",
            "index": index + 1 if _fault(FAULT_INDEX) else index,
            "embedding": encode_base64(vector, _fault(FAULT_BIG_ENDIAN)) if as_base64 else vector,
        })
    return data


@bp.post("/embeddings")
def create_embeddings():
    """Create embeddings for one or many inputs (OpenAI ``CreateEmbeddingRequest``)."""
    if not server_config().profile.claims("embeddings"):
        abort(404)
    ctx = request_context()
    key = answer_cache.request_key(ctx, "embeddings")
    cached = answer_cache.lookup(ctx, key)
    if cached is not None:  # the same bytes were validated and answered before: only the token charge is left
        ctx.server.limits.admit(ctx, cached.model_id, tokens=cached.prompt_tokens)
        return Response(cached.body, mimetype="application/json")
    body = json_body()
    if set(body) - KNOWN_FIELDS and _fault(FAULT_STRICT_FIELDS):
        raise ApiError(400, f"Unrecognized request argument supplied: {sorted(set(body) - KNOWN_FIELDS)[0]}")
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
    usage: dict[str, int] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    if _fault(FAULT_TOTAL_TOKENS):
        usage["total_tokens"] = prompt_tokens + 1
    if _fault(FAULT_NO_PROMPT_TOKENS):
        del usage["prompt_tokens"]
    payload = {
        "object": "embedding_list" if _fault(FAULT_OBJECT) else "list",
        "data": embedding_items(model.id, inputs, dims, native, encoding),
        "model": model.response_model,
        "usage": usage,
    }
    resp: Response = jsonify(payload)
    if _fault(FAULT_CONTENT_TYPE):
        resp.mimetype = "text/plain"
    answer_cache.store(ctx, key, answer_cache.CachedAnswer(model.id, prompt_tokens, body=resp.get_data()))
    return resp
