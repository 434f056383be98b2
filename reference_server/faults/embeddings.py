"""Faults of ``POST {base}/embeddings`` (``surfaces/embeddings.py``): the request body (``EMBEDDINGS_REQUEST``), the
decisions of its checks (``EMBEDDINGS_CHECK``: a refusal, or None to accept), the parsed inputs
(``EMBEDDINGS_INPUTS``), the data items (``EMBEDDING_DATA``), the body (``EMBEDDINGS_BODY``) and the response
headers (``EMBEDDINGS_RESPONSE``).

The check names are the ``CHECK_*`` strings of the surface, spelled out here so this module imports no surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.seams import (
    EMBEDDING_DATA,
    EMBEDDINGS_BODY,
    EMBEDDINGS_CHECK,
    EMBEDDINGS_INPUTS,
    EMBEDDINGS_REQUEST,
    EMBEDDINGS_RESPONSE,
)
from reference_server.mock.vectors import decode_base64, encode_base64, shorten, unit_vector
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from flask import Response

    from reference_server.surfaces.embeddings import EmbeddingJob

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

Item = dict[str, Any]


# ---------------------------------------------------------------- the request


@EMBEDDINGS_REQUEST.transform(FAULT_IGNORE_DIMENSIONS, lambda body: "dimensions" in body)
def _ignore_dimensions(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "dimensions"}


def _check(name: str, *, refused: bool) -> Any:
    """``applies`` for a check: the check is ``name`` and its decision is a refusal (``refused``) or an accept."""
    return lambda refusal, check, subject: check == name and (refusal is not None) == refused


def _accept(refusal: ApiError, check: str, subject: Any) -> None:
    return None


EMBEDDINGS_CHECK.transform(FAULT_MISSING_INPUT_OK, _check("missing-input", refused=True))(_accept)
EMBEDDINGS_CHECK.transform(FAULT_EMPTY_ARRAY_OK, _check("empty-array", refused=True))(_accept)
EMBEDDINGS_CHECK.transform(FAULT_EMPTY_STRING_OK, _check("empty-string", refused=True))(_accept)
EMBEDDINGS_CHECK.transform(FAULT_BAD_ENCODING_OK, _check("encoding", refused=True))(_accept)


@EMBEDDINGS_CHECK.transform(FAULT_NO_STRING, _check("string-input", refused=False))
def _no_string(refusal: None, check: str, subject: Any) -> ApiError:
    return ApiError(400, "'input' must be an array.", param="input")


@EMBEDDINGS_CHECK.transform(FAULT_NO_TOKENS, _check("token-input", refused=False))
def _no_tokens(refusal: None, check: str, subject: Any) -> ApiError:
    return ApiError(400, "'input' token arrays are not supported.", param="input")


@EMBEDDINGS_CHECK.transform(FAULT_STRICT_FIELDS, lambda refusal, check, subject: check == "fields" and bool(subject))
def _strict_fields(refusal: None, check: str, unknown: list[str]) -> ApiError:
    return ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}")


@EMBEDDINGS_CHECK.transform(
    FAULT_UNKNOWN_STATUS,
    lambda refusal, check, name: check == "model" and bool(name) and refusal is not None and refusal.status in (400, 404),
)
def _unknown_status(refusal: ApiError, check: str, name: Any) -> ApiError:
    refusal.status = 400 if refusal.status == 404 else 404
    return refusal


@EMBEDDINGS_INPUTS.transform(FAULT_FIRST_ONLY, lambda inputs, raw: len(inputs) > 1 and isinstance(inputs[0], str))
def _first_only(inputs: list[Any], raw: Any) -> list[Any]:
    return inputs[:1]


@EMBEDDINGS_INPUTS.transform(
    FAULT_FLATTEN, lambda inputs, raw: len(inputs) > 1 and isinstance(raw, list) and isinstance(raw[0], list)
)
def _flatten(inputs: list[list[int]], raw: Any) -> list[list[int]]:
    return [[token for array in inputs for token in array]]


# ---------------------------------------------------------------- the answer


def _numbers(embedding: list[float] | str) -> list[float]:
    return decode_base64(embedding) if isinstance(embedding, str) else embedding


def _like(embedding: list[float] | str, numbers: list[float]) -> list[float] | str:
    """``numbers`` in the encoding ``embedding`` has (floats or little-endian base64)."""
    return encode_base64(numbers) if isinstance(embedding, str) else numbers


@EMBEDDING_DATA.transform(FAULT_POSITIONAL, lambda data, job: bool(data))
def _positional(data: list[Item], job: EmbeddingJob) -> list[Item]:
    for index, item in enumerate(data):
        vector = unit_vector(job.model_id, job.inputs[index], job.native, str(index))
        if job.dimensions != job.native:
            vector = shorten(vector, job.dimensions)
        item["embedding"] = _like(item["embedding"], vector)
    return data


@EMBEDDING_DATA.transform(FAULT_RAGGED, lambda data, job: len(data) > 1)
def _ragged(data: list[Item], job: EmbeddingJob) -> list[Item]:
    last = data[-1]
    last["embedding"] = _like(last["embedding"], _numbers(last["embedding"])[:-1])
    return data


@EMBEDDING_DATA.transform(FAULT_ALWAYS_BASE64, lambda data, job: any(isinstance(i["embedding"], list) for i in data))
def _always_base64(data: list[Item], job: EmbeddingJob) -> list[Item]:
    for item in data:
        if isinstance(item["embedding"], list):
            item["embedding"] = encode_base64(item["embedding"])
    return data


@EMBEDDING_DATA.transform(FAULT_BIG_ENDIAN, lambda data, job: any(isinstance(i["embedding"], str) for i in data))
def _big_endian(data: list[Item], job: EmbeddingJob) -> list[Item]:
    for item in data:
        if isinstance(item["embedding"], str):
            item["embedding"] = encode_base64(decode_base64(item["embedding"]), big_endian=True)
    return data


@EMBEDDING_DATA.transform(FAULT_ITEM_OBJECT, lambda data, job: bool(data))
def _item_object(data: list[Item], job: EmbeddingJob) -> list[Item]:
    for item in data:
        item["object"] = "vector"
    return data


@EMBEDDING_DATA.transform(FAULT_INDEX, lambda data, job: bool(data))
def _index_from_one(data: list[Item], job: EmbeddingJob) -> list[Item]:
    for item in data:
        item["index"] += 1
    return data


@EMBEDDINGS_BODY.transform(FAULT_OBJECT)
def _object(body: dict[str, Any]) -> dict[str, Any]:
    body["object"] = "embedding_list"
    return body


@EMBEDDINGS_BODY.transform(FAULT_TOTAL_TOKENS)
def _total_tokens(body: dict[str, Any]) -> dict[str, Any]:
    body["usage"]["total_tokens"] = body["usage"]["prompt_tokens"] + 1
    return body


@EMBEDDINGS_BODY.transform(FAULT_NO_PROMPT_TOKENS)
def _no_prompt_tokens(body: dict[str, Any]) -> dict[str, Any]:
    del body["usage"]["prompt_tokens"]
    return body


@EMBEDDINGS_RESPONSE.transform(FAULT_CONTENT_TYPE)
def _content_type(resp: Response) -> Response:
    resp.mimetype = "text/plain"
    return resp
