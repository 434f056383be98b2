"""Faults that act on a generated answer (one choice), before it is rendered as JSON or as stream chunks: the
``GENERATION`` seam (faults/seams.py), each transform ``(gen, req, index, provider) -> gen``.

Kept apart from ``providers.py`` so the mock providers read as the correct behaviour only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.seams import GENERATION
from reference_server.mock.providers import Generation, text_answer, tool_calls

if TYPE_CHECKING:
    from reference_server.surfaces.chat_request import ChatRequest

F = faults.declare
FAULT_LENGTH_AS_STOP = F("PARAMS-001", 'A completion cut by max_tokens ends with finish_reason "stop".')
FAULT_STOP_KEPT = F("PARAMS-003", "Content cut at a stop sequence keeps the stop sequence.",
                    collateral=("PARAMS-004", "PARAMS-022"))
FAULT_SEED_IGNORED = F("PARAMS-007", "Seeded sampling (temperature not 0) ends content with a random word, so equal "
                       "seeded requests differ.")
FAULT_ALWAYS_LENGTH = F("PARAMS-023", 'Non-streamed plain text answers end with finish_reason "length" whenever '
                        "max_tokens is set.")
FAULT_NOT_JSON = F("STRUCTURED-OUTPUT-001", "json_object answers (non-streamed) are prose, not JSON.")
FAULT_SCHEMA_VIOLATED = F("STRUCTURED-OUTPUT-003", "Non-strict json_schema answers drop every required property.")
FAULT_STRICT_EXTRA = F("STRUCTURED-OUTPUT-004", "Strict json_schema answers carry an extra property.",
                       collateral=("STRUCTURED-OUTPUT-003",))
FAULT_JSON_LENGTH = F("STRUCTURED-OUTPUT-006", 'json_object answers end with finish_reason "length" despite room.')
# SDK-004: with tool_calls [] the SDK has no call whose arguments it could hand over.
FAULT_EMPTY_CALLS = F("TOOLS-001", "Non-streamed tool-calling answers carry tool_calls [] (finish_reason still "
                      "tool_calls).", collateral=("TOOLS-011", "TOOLS-013", "TOOLS-014", "SDK-004"))
FAULT_WRONG_NAME = F("TOOLS-004", "Tool calls name an undeclared function (name + \"_v2\").",
                     collateral=("TOOLS-014", "TOOLS-016"))
FAULT_SAME_IDS = F("TOOLS-011", "Parallel tool calls share one id.")
FAULT_NONE_IGNORED = F("TOOLS-012", 'tool_choice "none" still calls the first tool.')
FAULT_REQUIRED_IGNORED = F("TOOLS-013", 'tool_choice "required" answers in text with no tool call.')
FAULT_NAMED_IGNORED = F("TOOLS-014", "A named tool_choice calls another declared tool (or none when it is the only one).")
FAULT_ARGS_OFF_SCHEMA = F("TOOLS-016", 'Tool call arguments are {"unexpected": true}, ignoring the schema.')
FAULT_PARALLEL_IGNORED = F("TOOLS-017", "parallel_tool_calls false still calls every named tool.")


at = GENERATION.transform


# ---------------------------------------------------------------- parameters


@at(FAULT_LENGTH_AS_STOP, lambda gen, req, *_: gen.finish_reason == "length" and req.max_tokens_param == "max_tokens")
def _length_as_stop(gen: Generation, req: ChatRequest, *_: Any) -> Generation:
    return replace(gen, finish_reason="stop")


@at(FAULT_STOP_KEPT, lambda gen, req, *_: bool(gen.content and req.stop and gen.finish_reason == "stop"))
def _stop_kept(gen: Generation, req: ChatRequest, *_: Any) -> Generation:
    return replace(gen, content=gen.content + req.stop[0])


def _seeded(gen: Generation, req: ChatRequest, *_: Any) -> bool:
    """Seeded sampling only: a seed cannot change greedy (temperature 0) text, and unseeded checks (max_tokens
    bounds, streamed vs not) must keep their exact token counts."""
    return bool(gen.content) and req.seed is not None and req.temperature != 0 and not req.response_format


@at(FAULT_SEED_IGNORED, _seeded)
def _seed_ignored(gen: Generation, *_: Any) -> Generation:
    return replace(gen, content=f"{gen.content} {uuid.uuid4().hex}")


def _plain_capped(gen: Generation, req: ChatRequest, *_: Any) -> bool:
    """Non-streamed plain text with max_tokens (the SDK's stream helper raises on "length", SDK-003's to judge)."""
    return not req.response_format and not gen.tool_calls and not req.stream and req.max_tokens is not None


@at(FAULT_ALWAYS_LENGTH, _plain_capped)
def _always_length(gen: Generation, *_: Any) -> Generation:
    return replace(gen, finish_reason="length")


# ---------------------------------------------------------------- structured output


def _format_answer(kind: str) -> Any:
    """Predicate: a complete (finish "stop") non-empty answer to a ``response_format`` of this type."""
    def applies(gen: Generation, req: ChatRequest, *_: Any) -> bool:
        return bool(gen.content) and gen.finish_reason == "stop" and (req.response_format or {}).get("type") == kind
    return applies


_json_object = _format_answer("json_object")
_json_schema = _format_answer("json_schema")


@at(FAULT_NOT_JSON, lambda gen, req, *_: not req.stream and _json_object(gen, req))
def _not_json(gen: Generation, *_: Any) -> Generation:
    return replace(gen, content="Sure! Here is the JSON you asked for.")


@at(FAULT_JSON_LENGTH, _json_object)
def _json_length(gen: Generation, *_: Any) -> Generation:
    return replace(gen, finish_reason="length")


def _schema(req: ChatRequest) -> dict[str, Any]:
    return (req.response_format or {}).get("json_schema") or {}


def _strict_object(gen: Generation, req: ChatRequest, *_: Any) -> bool:
    return _json_schema(gen, req) and bool(_schema(req).get("strict")) and isinstance(json.loads(gen.content), dict)


def _required(req: ChatRequest) -> list[str]:
    return (_schema(req).get("schema") or {}).get("required") or []


def _loose_object(gen: Generation, req: ChatRequest, *_: Any) -> bool:
    return _json_schema(gen, req) and not _schema(req).get("strict") and bool(_required(req)) \
        and isinstance(json.loads(gen.content), dict)


@at(FAULT_STRICT_EXTRA, _strict_object)
def _strict_extra(gen: Generation, *_: Any) -> Generation:
    return replace(gen, content=json.dumps({**json.loads(gen.content), "unexpected_property": True}))


@at(FAULT_SCHEMA_VIOLATED, _loose_object)
def _schema_violated(gen: Generation, req: ChatRequest, *_: Any) -> Generation:
    required = _required(req)
    return replace(gen, content=json.dumps({k: v for k, v in json.loads(gen.content).items() if k not in required}))


# ---------------------------------------------------------------- tools


@at(FAULT_NONE_IGNORED, lambda gen, req, *_: req.tool_choice == "none" and bool(req.tools))
def _none_ignored(gen: Generation, req: ChatRequest, index: int, provider: str) -> Generation:
    return replace(gen, content=None, finish_reason="tool_calls", tool_calls=tool_calls(req, index, req.tool_names[:1]))


@at(FAULT_REQUIRED_IGNORED, lambda gen, req, *_: req.tool_choice == "required")
def _required_ignored(gen: Generation, req: ChatRequest, index: int, provider: str) -> Generation:
    return replace(gen, content=text_answer(req, index, provider), finish_reason="stop", tool_calls=())


@at(FAULT_NAMED_IGNORED, lambda gen, req, *_: isinstance(req.tool_choice, dict))
def _named_ignored(gen: Generation, req: ChatRequest, index: int, provider: str) -> Generation:
    others = [n for n in req.tool_names if n != req.tool_choice["name"]][:1]
    if not others:
        return replace(gen, content=text_answer(req, index, provider), finish_reason="stop", tool_calls=())
    return replace(gen, tool_calls=tool_calls(req, index, others))


def _calls(gen: Generation, *_: Any) -> bool:
    return bool(gen.tool_calls)


@at(FAULT_PARALLEL_IGNORED, lambda gen, req, *_: _calls(gen) and req.parallel_tool_calls is False and len(req.tools) > 1)
def _parallel_ignored(gen: Generation, req: ChatRequest, index: int, provider: str) -> Generation:
    names = [n for n in req.tool_names if n in str(req.messages[-1].get("content"))] or req.tool_names
    return replace(gen, tool_calls=tool_calls(req, index, names))


@at(FAULT_EMPTY_CALLS, lambda gen, req, *_: _calls(gen) and not req.stream)
def _empty_calls(gen: Generation, *_: Any) -> Generation:
    return replace(gen, tool_calls=())


@at(FAULT_WRONG_NAME, _calls)
def _wrong_name(gen: Generation, *_: Any) -> Generation:
    return replace(gen, tool_calls=tuple(replace(c, name=c.name + "_v2") for c in gen.tool_calls))


@at(FAULT_SAME_IDS, _calls)
def _same_ids(gen: Generation, *_: Any) -> Generation:
    return replace(gen, tool_calls=tuple(replace(c, id=gen.tool_calls[0].id) for c in gen.tool_calls))


@at(FAULT_ARGS_OFF_SCHEMA, _calls)
def _args_off_schema(gen: Generation, *_: Any) -> Generation:
    return replace(gen, tool_calls=tuple(replace(c, arguments='{"unexpected": true}') for c in gen.tool_calls))
