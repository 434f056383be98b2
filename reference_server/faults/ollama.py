"""Faults of Ollama's native API (``surfaces/ollama.py``), as transforms at the ``OLLAMA_*`` seams: admission
(``OLLAMA_ACCESS``), the model a request names (``OLLAMA_MODEL``), bodies (``OLLAMA_BODY``), /api/tags
(``OLLAMA_TAGS``, ``OLLAMA_TAG``), dates (``OLLAMA_TIME``), durations (``OLLAMA_METRICS``), tool calls
(``OLLAMA_TOOL_CALLS``), the streamed objects (``OLLAMA_STREAM``), streaming or not (``OLLAMA_STREAMS``), content
types (``OLLAMA_RESPONSE``), NDJSON lines (``OLLAMA_LINE``) and ``GET /`` (``OLLAMA_ROOT``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.seams import (
    OLLAMA_ACCESS,
    OLLAMA_BODY,
    OLLAMA_LINE,
    OLLAMA_METRICS,
    OLLAMA_MODEL,
    OLLAMA_RESPONSE,
    OLLAMA_ROOT,
    OLLAMA_STREAM,
    OLLAMA_STREAMS,
    OLLAMA_TAG,
    OLLAMA_TAGS,
    OLLAMA_TIME,
    OLLAMA_TOOL_CALLS,
)
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from flask import Response

    from gateway_spec import Profile
    from reference_server.surfaces.ollama import NativeModel

NDJSON = "application/x-ndjson"
Obj = dict[str, Any]

F = faults.declare
FAULT_ROOT_TEXT = F("OLLAMA-001", 'GET / answers "Ollama is ready".')
FAULT_VERSION_NUMBER = F("OLLAMA-002", "GET /api/version answers the version as a number.")
FAULT_TAGS_NO_DIGEST = F("OLLAMA-003", "/api/tags items lack digest.")
FAULT_TAGS_NO_FAMILIES = F("OLLAMA-004", "/api/tags details lack families.")
FAULT_STREAM_JSON_TYPE = F("OLLAMA-005", "/api/chat streams are labelled application/json.")
FAULT_NO_FINAL_NEWLINE = F("OLLAMA-006", "The last NDJSON line has no terminating newline.")
FAULT_NO_CREATED_AT = F("OLLAMA-007", "Streamed /api/chat objects before the last lack created_at.")
FAULT_NO_DONE_REASON = F("OLLAMA-008", "The final streamed object lacks done_reason.")
# The final objects of stream false and /api/generate no longer match their response schemas, which the checks of
# OLLAMA-011 and OLLAMA-016 validate (as CHAT-019 carries every field fault of a chat completion).
FAULT_SECONDS = F("OLLAMA-009", "Durations are float seconds instead of integer nanoseconds.",
                  collateral=("OLLAMA-011", "OLLAMA-016"))
FAULT_FINAL_CONTENT = F("OLLAMA-010", "The final streamed /api/chat object repeats the whole answer.")
# /api/chat only: /api/generate's stream false is OLLAMA-024's (its own fault streams NDJSON there).
FAULT_SINGLE_AS_NDJSON = F("OLLAMA-011", "/api/chat with stream false answers with Content-Type application/x-ndjson.")
FAULT_STRING_ARGUMENTS = F("OLLAMA-012", "Native tool-call arguments are JSON strings.")
FAULT_ENVELOPE = F("OLLAMA-013", "Native errors use the OpenAI envelope {error: {message, ...}}.",
                   collateral=("OLLAMA-015", "OLLAMA-021"))
FAULT_LATEST_DIFFERS = F("OLLAMA-014", 'A bare name and "name:latest" reach different models.')
FAULT_UNKNOWN_400 = F("OLLAMA-015", "An unknown native model answers 400.")
FAULT_GENERATE_NO_DONE = F("OLLAMA-016", "/api/generate streams end without a done object.")
FAULT_GENERATE_ALWAYS_STREAMS = F("OLLAMA-024", "/api/generate with stream false streams NDJSON anyway.")
FAULT_EMBED_SINGULAR = F("OLLAMA-017", '/api/embed answers {"embedding": [...]} with one vector.')
FAULT_AUTH_REQUIRED = F(
    "OLLAMA-018", "Native routes require an Authorization header (401).",
    # Every native check sends its request without a key: all of them meet the 401 (HEAD / and OLLAMA-019's dates,
    # judged only on answers that arrived, excepted).
    collateral=tuple(f"OLLAMA-{n:03d}" for n in (*range(2, 23), 24) if n not in (18, 19)),
)
FAULT_EPOCH_TIMES = F("OLLAMA-019", 'created_at and modified_at are unix seconds in a string ("1700000000").')
FAULT_ERROR_OBJECT_LINE = F("OLLAMA-020", "A mid-stream error line carries an object, not a string.")
# The OLLAMA-013 check provokes its error body with a request without model: served, there is no body to judge.
FAULT_MISSING_MODEL_OK = F("OLLAMA-021", "A native chat request without model is served by the default model.",
                           collateral=("OLLAMA-013",))
FAULT_PHANTOM_TAG = F("OLLAMA-022", "/api/tags lists a model that /api/chat does not serve.")
FAULT_HEAD_ROOT = F("OLLAMA-023", "HEAD / answers 405.")
PHANTOM = {"name": "phantom:latest", "family": "phantom", "parameter_size": "1B", "quantization_level": "Q4_0"}


def _is_name(name: Any) -> bool:
    return isinstance(name, str) and bool(name)


# ---------------------------------------------------------------- admission and models


@OLLAMA_ACCESS.transform(FAULT_AUTH_REQUIRED, lambda refusal, authorization: refusal is None and not authorization)
def _auth_required(refusal: None, authorization: str | None) -> ApiError:
    return ApiError(401, "unauthorized")


@OLLAMA_MODEL.transform(FAULT_MISSING_MODEL_OK, lambda choice, profile: not _is_name(choice.name))
def _missing_model_ok(choice: NativeModel, profile: Profile) -> NativeModel:
    return choice.named(profile.get("ollama.default_model"))


@OLLAMA_MODEL.transform(
    FAULT_LATEST_DIFFERS,
    lambda choice, profile: choice.position is not None and _is_name(choice.name) and ":" not in choice.name,
)
def _latest_differs(choice: NativeModel, profile: Profile) -> NativeModel:
    return replace(choice, position=(choice.position + 1) % len(choice.models))


@OLLAMA_MODEL.transform(FAULT_UNKNOWN_400, lambda choice, profile: choice.position is None and _is_name(choice.name))
def _unknown_400(choice: NativeModel, profile: Profile) -> NativeModel:
    return replace(choice, status=400)


# ---------------------------------------------------------------- bodies


@OLLAMA_BODY.transform(FAULT_ENVELOPE, lambda body, route: route == "error")
def _envelope(body: Obj, route: str) -> Obj:
    return {"error": {"message": body["error"], "type": "api_error", "param": None, "code": None}}


@OLLAMA_BODY.transform(FAULT_VERSION_NUMBER, lambda body, route: route == "version")
def _version_number(body: Obj, route: str) -> Obj:
    return {"version": float(".".join(body["version"].split(".")[:2]))}


@OLLAMA_BODY.transform(FAULT_EMBED_SINGULAR, lambda body, route: route == "embed")
def _embed_singular(body: Obj, route: str) -> Obj:
    return {"model": body["model"], "embedding": body["embeddings"][0]}


@OLLAMA_TAGS.transform(FAULT_PHANTOM_TAG)
def _phantom_tag(entries: list[Obj]) -> list[Obj]:
    return [*entries, PHANTOM]


@OLLAMA_TAG.transform(FAULT_TAGS_NO_FAMILIES)
def _no_families(item: Obj) -> Obj:
    item["details"] = {k: v for k, v in item["details"].items() if k != "families"}
    return item


@OLLAMA_TAG.transform(FAULT_TAGS_NO_DIGEST)
def _no_digest(item: Obj) -> Obj:
    del item["digest"]
    return item


@OLLAMA_TIME.transform(FAULT_EPOCH_TIMES)
def _epoch_times(text: str, seconds: float) -> str:
    # still a string: the shape MUSTs (OLLAMA-003/007/011) hold, only the format breaks
    return str(int(seconds))


@OLLAMA_METRICS.transform(FAULT_SECONDS)
def _seconds(values: Obj) -> Obj:
    return {k: (v / 1e9 if k.endswith("duration") else v) for k, v in values.items()}


@OLLAMA_TOOL_CALLS.transform(FAULT_STRING_ARGUMENTS, lambda calls: bool(calls))
def _string_arguments(calls: list[Obj]) -> list[Obj]:
    return [{"function": {**call["function"], "arguments": json.dumps(call["function"]["arguments"])}}
            for call in calls]


# ---------------------------------------------------------------- streams


@OLLAMA_STREAM.transform(FAULT_NO_CREATED_AT, lambda objs, route: route == "chat" and len(objs) > 1)
def _no_created_at(objs: list[Obj], route: str) -> list[Obj]:
    return [*({k: v for k, v in obj.items() if k != "created_at"} for obj in objs[:-1]), objs[-1]]


@OLLAMA_STREAM.transform(FAULT_FINAL_CONTENT, lambda objs, route: route == "chat" and bool(objs))
def _final_content(objs: list[Obj], route: str) -> list[Obj]:
    answer = "".join(obj["message"]["content"] for obj in objs[:-1])
    return [*objs[:-1], {**objs[-1], "message": {"role": "assistant", "content": answer}}]


@OLLAMA_STREAM.transform(FAULT_NO_DONE_REASON, lambda objs, route: route == "chat" and "done_reason" in objs[-1])
def _no_done_reason(objs: list[Obj], route: str) -> list[Obj]:
    return [*objs[:-1], {k: v for k, v in objs[-1].items() if k != "done_reason"}]


@OLLAMA_STREAM.transform(FAULT_GENERATE_NO_DONE, lambda objs, route: route == "generate" and bool(objs))
def _generate_no_done(objs: list[Obj], route: str) -> list[Obj]:
    return objs[:-1]


@OLLAMA_STREAMS.transform(FAULT_GENERATE_ALWAYS_STREAMS, lambda stream, route: route == "generate" and not stream)
def _always_streams(stream: bool, route: str) -> bool:
    return True


@OLLAMA_RESPONSE.transform(FAULT_STREAM_JSON_TYPE, lambda resp, route, streamed: route == "chat" and streamed)
def _stream_json_type(resp: Response, route: str, streamed: bool) -> Response:
    resp.content_type = "application/json"
    return resp


@OLLAMA_RESPONSE.transform(FAULT_SINGLE_AS_NDJSON, lambda resp, route, streamed: route == "chat" and not streamed)
def _single_as_ndjson(resp: Response, route: str, streamed: bool) -> Response:
    resp.mimetype = NDJSON
    return resp


@OLLAMA_LINE.transform(FAULT_NO_FINAL_NEWLINE, lambda line, obj, last: last)
def _no_final_newline(line: bytes, obj: Obj, last: bool) -> bytes:
    return line.removesuffix(b"\n")


# A mid-stream error line is OLLAMA-020's alone: the OLLAMA-013 envelope fault acts on HTTP error bodies only.
@OLLAMA_LINE.transform(FAULT_ERROR_OBJECT_LINE, lambda line, obj, last: isinstance(obj.get("error"), str))
def _error_object_line(line: bytes, obj: Obj, last: bool) -> bytes:
    return (json.dumps({"error": {"message": obj["error"]}}) + "\n").encode()


# ---------------------------------------------------------------- GET /


@OLLAMA_ROOT.transform(FAULT_HEAD_ROOT, lambda resp, method: method == "HEAD")
def _head_root(resp: Response, method: str) -> Response:
    raise ApiError(405, "Method not allowed for this URL.")


@OLLAMA_ROOT.transform(FAULT_ROOT_TEXT)
def _root_text(resp: Response, method: str) -> Response:
    resp.set_data(b"Ollama is ready")
    return resp
