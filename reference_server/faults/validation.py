"""Faults on a valid chat request: the ``CHAT_REQUEST`` seam (request -> parsed request). Most refuse it, each
transform ``(req) -> req`` raising the 400 the fault answers; one ignores a valid field (PARAMS-022). They act on a
request that passed validation, so an invalid request keeps the error its first problem deserves (the faults on
invalid requests are faults/problems.py's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.seams import CHAT_REQUEST
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from reference_server.surfaces.chat_request import ChatRequest

F = faults.declare
FAULT_ASSISTANT_REJECTED = F("CHAT-015", "Conversations holding an assistant message answer 400.",
                             collateral=("TOOLS-015",))
FAULT_DEVELOPER_REJECTED = F("CHAT-016", 'Messages with role "developer" answer 400.')
FAULT_PARTS_REJECTED = F("CHAT-017", "User content given as an array of text parts answers 400.")
FAULT_STOP_ARRAY = F("PARAMS-004", "stop given as an array answers 400.")
FAULT_SEED_REJECTED = F("PARAMS-024", "An integer seed on a sampled request (temperature not 0) answers 400.")
FAULT_EXTRA_FIELDS = F("PARAMS-015", "Unknown top-level request fields answer 400.")
FAULT_BOUNDS = F("PARAMS-017", "The inclusive bounds temperature 2 and top_p 1 are rejected.")
FAULT_PENALTIES = F("PARAMS-018", "Non-zero presence_penalty / frequency_penalty answer 400.")
FAULT_LOGIT_BIAS = F("PARAMS-026", "Requests with logit_bias answer 400.")
FAULT_NULLS = F("PARAMS-019", "An explicit null temperature answers 400.")
FAULT_TEXT_FORMAT = F("STRUCTURED-OUTPUT-005", 'response_format {"type": "text"} answers 400.')
FAULT_TOOL_FOLLOWUP = F("TOOLS-015", "A follow-up holding tool results answers 400.")
FAULT_STOP_STRING = F("PARAMS-022", "stop given as a single string is ignored.")

at = CHAT_REQUEST.transform


def _refuse(message: str, param: str | None) -> ApiError:
    return ApiError(400, message, param=param)


@at(FAULT_EXTRA_FIELDS, lambda req: bool(req.unknown_fields))
def _extra_fields(req: ChatRequest) -> ChatRequest:
    raise _refuse(f"Unrecognized request argument supplied: {req.unknown_fields[0]}", None)


def _roles(req: ChatRequest, role: str) -> Iterator[int]:
    """Indexes of the messages with ``role``."""
    return (i for i, m in enumerate(req.messages) if m.get("role") == role)


def _refuse_role(role: str, message: str) -> Any:
    def transform(req: ChatRequest) -> ChatRequest:
        raise _refuse(message, f"messages[{next(_roles(req, role))}].role")
    return transform


at(FAULT_DEVELOPER_REJECTED, lambda req: any(True for _ in _roles(req, "developer")))(
    _refuse_role("developer", "Unsupported role 'developer'."))
at(FAULT_ASSISTANT_REJECTED, lambda req: any(True for _ in _roles(req, "assistant")))(
    _refuse_role("assistant", "Assistant messages are not supported."))
at(FAULT_TOOL_FOLLOWUP, lambda req: any(True for _ in _roles(req, "tool")))(
    _refuse_role("tool", "Tool messages are not supported."))


def _parts(req: ChatRequest) -> list[int]:
    return [i for i, m in enumerate(req.messages) if m.get("role") == "user" and isinstance(m.get("content"), list)]


@at(FAULT_PARTS_REJECTED, lambda req: bool(_parts(req)))
def _parts_rejected(req: ChatRequest) -> ChatRequest:
    raise _refuse("Content parts are not supported.", f"messages[{_parts(req)[0]}].content")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@at(FAULT_NULLS, lambda req: "temperature" in req.body and req.body["temperature"] is None)
def _nulls(req: ChatRequest) -> ChatRequest:
    raise _refuse("temperature must not be null.", "temperature")


def _penalised(req: ChatRequest) -> list[str]:
    return [n for n in ("presence_penalty", "frequency_penalty") if _is_number(req.body.get(n)) and req.body[n] != 0]


@at(FAULT_PENALTIES, lambda req: bool(_penalised(req)))
def _penalties(req: ChatRequest) -> ChatRequest:
    name = _penalised(req)[0]
    raise _refuse(f"'{name}' is not supported.", name)


def _at_bound(req: ChatRequest) -> list[tuple[str, int]]:
    return [(n, high) for n, high in (("temperature", 2), ("top_p", 1))
            if _is_number(req.body.get(n)) and req.body[n] == high]


@at(FAULT_BOUNDS, lambda req: bool(_at_bound(req)))
def _bounds(req: ChatRequest) -> ChatRequest:
    name, high = _at_bound(req)[0]
    raise _refuse(f"'{name}' must be lower than {high}.", name)


@at(FAULT_TEXT_FORMAT, lambda req: (req.body.get("response_format") or {}).get("type") == "text")
def _text_format(req: ChatRequest) -> ChatRequest:
    raise _refuse("response_format text is not supported.", "response_format")


@at(FAULT_STOP_ARRAY, lambda req: isinstance(req.body.get("stop"), list))
def _stop_array(req: ChatRequest) -> ChatRequest:
    raise _refuse("'stop' must be a string.", "stop")


# Scoped to sampling: greedy requests (CHAT-STREAM-014's streamed-vs-not pair) send a seed too.
@at(FAULT_SEED_REJECTED, lambda req: req.seed is not None and req.body.get("temperature") != 0)
def _seed_rejected(req: ChatRequest) -> ChatRequest:
    raise _refuse("'seed' is not supported by this model.", "seed")


@at(FAULT_LOGIT_BIAS, lambda req: req.body.get("logit_bias") is not None)
def _logit_bias(req: ChatRequest) -> ChatRequest:
    raise _refuse("'logit_bias' is not supported.", "logit_bias")


@at(FAULT_STOP_STRING, lambda req: isinstance(req.body.get("stop"), str))
def _stop_string(req: ChatRequest) -> ChatRequest:
    req.stop = []
    return req
