"""Faults of chat request validation: the problems a body's checks find (``CHAT_PROBLEM`` seam) and the answer a
refused chat request gets (``CHAT_REJECTION``: ``(resp, err, body) -> resp``, ``resp`` the rendered envelope,
``body`` the parsed body, None when it could not be read).

``surfaces/chat_request.py`` describes each problem as a ``Problem`` (``field``, ``rule``, the error, the ``value``
found) and raises its error unless the seam returns it accepted. A transform ``(problem) -> problem`` here either
reshapes the error (status, message, param) or accepts the input with ``problem.accept(value)``: validation goes
on with that value, as if the check had not been made. The reshaping transforms come first, so an accepted
problem is never reshaped.

The valid variant ``params-clamped`` acts here too (``CHAT_PROBLEM.variant``): it accepts an out-of-range
temperature, top_p or n clamped into its bounds, as gateways that clamp do (PARAMS-008/009/010 are SHOULDs).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flask import Response

from reference_server import faults
from reference_server.context import current_request, server_config
from reference_server.faults.seams import CHAT_PROBLEM, CHAT_REJECTION
from reference_server.wire import sse

if TYPE_CHECKING:
    from reference_server.surfaces.chat_request import Problem
    from reference_server.wire.errors import ApiError

F = faults.declare
FAULT_BARE_ERROR = F("ERRORS-001", "Invalid JSON bodies answer 400 with a bare string instead of the envelope.",
                     collateral=("ERRORS-002", "ERRORS-004"))
FAULT_EMPTY_MESSAGE = F("ERRORS-002", "Chat parameter validation errors carry an empty message.")
FAULT_INVALID_JSON_422 = F("ERRORS-004", "Invalid JSON answers 422 instead of 400.")
FAULT_TEXT_PLAIN = F("ERRORS-005", "Bodies sent as text/plain are answered 404 (as if the route did not exist).")
FAULT_NO_MODEL = F("ERRORS-006", "A chat request without model is served by the default model.",
                   collateral=("ERRORS-007",))
FAULT_NO_MODEL_PARAM = F("ERRORS-007", "The 400 for a missing model carries param null.")
FAULT_NO_MESSAGES_422 = F("ERRORS-008", "A chat request without messages answers 422.")
FAULT_MESSAGES_PARAM = F("ERRORS-009", "The 400 for missing or empty messages carries param null.")
# SDK-008's check provokes its 400 with an empty messages array: served, there is no BadRequestError to read.
FAULT_EMPTY_MESSAGES = F("ERRORS-010", "An empty messages array is served (200).", collateral=("SDK-008",))
FAULT_CRASH = F("ERRORS-015", "A message whose content is a number crashes the server (500).")
FAULT_UNKNOWN_ROLE = F("ERRORS-020", "Messages with an unknown role are served.")
FAULT_NO_CONTENT = F("ERRORS-021", "A user message without content is served.")
FAULT_ARRAY_BODY = F("ERRORS-023", "A JSON array body is served as the messages list.")
FAULT_TRACEBACK = F("ERRORS-024", "The invalid-JSON error message carries a Python traceback with file paths.")
FAULT_STOP_MANY = F("PARAMS-005", "stop with more than 4 sequences is accepted.")
FAULT_TEMPERATURE = F("PARAMS-008", "temperature outside 0..2 is accepted.")
FAULT_TOP_P = F("PARAMS-009", "top_p outside 0..1 is accepted.")
FAULT_N = F("PARAMS-010", "n outside 1..128 is accepted (clamped).")
FAULT_PARAM_NULL = F("PARAMS-011", "Out-of-range and mistyped sampling-parameter errors carry param null.")
FAULT_WRONG_TYPE = F("PARAMS-016", 'A mistyped temperature (e.g. "hot") is ignored and served.')
FAULT_PENALTY_RANGE = F("PARAMS-025", "presence_penalty / frequency_penalty outside -2..2 are served.")
FAULT_TOP_LOGPROBS = F("PARAMS-021", "top_logprobs outside 0..20 is accepted.")
FAULT_FORMAT_TYPE = F("STRUCTURED-OUTPUT-007", "An unknown response_format type is accepted as text.")
FAULT_SCHEMA_NAME = F("STRUCTURED-OUTPUT-008", "A json_schema name breaking ^[a-zA-Z0-9_-]{1,64}$ is accepted.")
FAULT_STREAM_200 = F("SSE-013", "Streaming requests for an unknown model get 200 and an in-stream error.")

at = CHAT_PROBLEM.transform


def _is(field: str, rule: str) -> Any:
    """``applies``: the problem is ``rule`` broken at ``field``."""
    return lambda p: p.field == field and p.rule == rule


# ---------------------------------------------------------------- the error a problem gets

# The presence errors of model and messages have faults of their own (ERRORS-006 to ERRORS-010).
_PRESENCE = {("model", "missing"), ("messages", "missing"), ("messages", "empty")}


@at(FAULT_INVALID_JSON_422, _is("body", "json"))
def _invalid_json_422(p: Problem) -> Problem:
    return replace(p, status=422)


@at(FAULT_TRACEBACK, _is("body", "json"))
def _traceback(p: Problem) -> Problem:
    return replace(p, message=p.message + f'\nTraceback (most recent call last):\n  File "{__file__}", line 120, '
                   "in read_json_body")


@at(FAULT_TEXT_PLAIN, _is("body", "media-type"))
def _text_plain(p: Problem) -> Problem:
    return replace(p, status=404, message=f"Unknown request URL: POST {current_request().path}.")


@at(FAULT_NO_MODEL_PARAM, _is("model", "missing"))
def _no_model_param(p: Problem) -> Problem:
    return replace(p, param=None)


@at(FAULT_NO_MESSAGES_422, _is("messages", "missing"))
def _no_messages_422(p: Problem) -> Problem:
    return replace(p, status=422)


@at(FAULT_MESSAGES_PARAM, lambda p: p.field == "messages" and p.rule in ("missing", "empty"))
def _messages_param(p: Problem) -> Problem:
    return replace(p, param=None)


@at(FAULT_EMPTY_MESSAGE, lambda p: (p.field, p.rule) not in _PRESENCE)
def _empty_message(p: Problem) -> Problem:
    return replace(p, message="")


def _sampling_param(p: Problem) -> bool:
    """The parameters PARAMS-011 names (ranges, types, stop); model, messages and response_format errors have
    their own param requirements (ERRORS-007/009, STRUCTURED-OUTPUT-007)."""
    return p.param not in ("model", "messages") and not (p.param or "").startswith("response_format")


@at(FAULT_PARAM_NULL, _sampling_param)
def _param_null(p: Problem) -> Problem:
    return replace(p, param=None)


@at(FAULT_CRASH, _is("messages[].content", "type"))
def _crash(p: Problem) -> Problem:
    raise RuntimeError("content is neither a string nor a list")  # the fault: a client reaches a 500


# ---------------------------------------------------------------- invalid input accepted


def _accept_as_is(p: Problem) -> Problem:
    return p.accept(p.value)


for _accepted, _field, _rule in (
    (FAULT_TEMPERATURE, "temperature", "range"),
    (FAULT_TOP_P, "top_p", "range"),
    (FAULT_PENALTY_RANGE, "presence_penalty", "range"),
    (FAULT_PENALTY_RANGE, "frequency_penalty", "range"),
    (FAULT_N, "n", "range"),
    (FAULT_TOP_LOGPROBS, "top_logprobs", "range"),
    (FAULT_STOP_MANY, "stop", "length"),
    (FAULT_SCHEMA_NAME, "response_format.json_schema.name", "pattern"),
    (FAULT_EMPTY_MESSAGES, "messages", "empty"),
):
    at(_accepted, _is(_field, _rule))(_accept_as_is)


# The schema bounds the level rule made SHOULDs because a gateway may clamp them (docs/requirements.md).
CLAMPED = ("temperature", "top_p", "n")


@CHAT_PROBLEM.variant("params-clamped", lambda p: p.rule == "range" and p.field in CLAMPED and p.bounds is not None)
def _clamped(p: Problem) -> Problem:
    low, high = p.bounds
    value = max(p.value, low)
    return p.accept(value if high is None else min(value, high))


@at(FAULT_WRONG_TYPE, _is("temperature", "type"))
def _wrong_type(p: Problem) -> Problem:
    return p.accept(None)  # ignored: as if no temperature was sent


@at(FAULT_FORMAT_TYPE, _is("response_format.type", "value"))
def _format_type(p: Problem) -> Problem:
    return p.accept(None)  # as text


@at(FAULT_UNKNOWN_ROLE, lambda p: p.field == "messages[].role" and p.rule == "value" and isinstance(p.value, str))
def _unknown_role(p: Problem) -> Problem:
    return p.accept(p.value)


# ``value`` of a missing field is the object lacking it: here the message.
@at(FAULT_NO_CONTENT, lambda p: p.field == "messages[].content" and p.rule == "missing"
    and p.value.get("role") == "user")
def _no_content(p: Problem) -> Problem:
    return p.accept(None)


@at(FAULT_NO_MODEL, _is("model", "missing"))
def _no_model(p: Problem) -> Problem:
    return p.accept(server_config().profile.get("models.default_chat"))


@at(FAULT_ARRAY_BODY, lambda p: p.field == "body" and p.rule == "type" and isinstance(p.value, list))
def _array_body(p: Problem) -> Problem:
    return p.accept({"model": server_config().profile.get("models.default_chat"), "messages": p.value})


# ---------------------------------------------------------------- the answer a refused chat request gets


def _invalid_json(resp: Response, err: ApiError, body: Any) -> bool:
    problem = getattr(err, "problem", None)
    return problem is not None and problem.field == "body" and problem.rule == "json"


@CHAT_REJECTION.transform(FAULT_BARE_ERROR, _invalid_json)
def _bare_error(resp: Response, err: ApiError, body: Any) -> Response:
    resp.set_data(json.dumps("Invalid JSON body"))  # a bare string where the envelope belongs
    resp.status_code = 400
    return resp


def _invalid_stream(resp: Response, err: ApiError, body: Any) -> bool:
    """A streaming request its body's validation refused (an unknown model included)."""
    return isinstance(body, dict) and body.get("stream") is True


@CHAT_REJECTION.transform(FAULT_STREAM_200, _invalid_stream)
def _stream_200(resp: Response, err: ApiError, body: Any) -> Response:
    config = server_config()
    encoder = sse.SseEncoder(config)
    return Response(encoder.error(err.body()["error"]) + encoder.done(), content_type=sse.content_type(config))
