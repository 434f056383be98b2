"""Faults that act on a generated answer (one choice), before it is rendered as JSON or as stream chunks.

Kept apart from ``providers.py`` so the mock providers read as the correct behaviour only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

from reference_server import faults
from reference_server.context import fault as _fault
from reference_server.context import server_config
from reference_server.mock.providers import Generation, text_answer, tool_calls
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


def distort(gen: Generation, req: ChatRequest, index: int, provider: str) -> Generation:
    """Apply the active answer faults to one finalized choice (no-op when none is on)."""
    if not server_config().fault_questions_matter():
        return gen
    gen = _params(gen, req)
    gen = _structured(gen, req)
    return _tools(gen, req, index, provider)


def _params(gen: Generation, req: ChatRequest) -> Generation:
    if gen.finish_reason == "length" and req.max_tokens_param == "max_tokens" and _fault(FAULT_LENGTH_AS_STOP):
        gen = replace(gen, finish_reason="stop")
    if gen.content and req.stop and gen.finish_reason == "stop" and _fault(FAULT_STOP_KEPT):
        gen = replace(gen, content=gen.content + req.stop[0])
    # Scoped to seeded sampling: a seed cannot change greedy (temperature 0) text, and unseeded checks
    # (max_tokens bounds, streamed vs not) must keep their exact token counts.
    seeded = req.seed is not None and req.temperature != 0
    if gen.content and seeded and not req.response_format and _fault(FAULT_SEED_IGNORED):
        gen = replace(gen, content=f"{gen.content} {uuid.uuid4().hex}")
    # Non-streamed only: the SDK's stream helper raises on "length", which is SDK-003's to judge.
    plain = not req.response_format and not gen.tool_calls and not req.stream
    if plain and req.max_tokens is not None and _fault(FAULT_ALWAYS_LENGTH):
        gen = replace(gen, finish_reason="length")
    return gen


def _structured(gen: Generation, req: ChatRequest) -> Generation:
    fmt = req.response_format or {}
    if not gen.content or gen.finish_reason != "stop":
        return gen
    if fmt.get("type") == "json_object":
        if not req.stream and _fault(FAULT_NOT_JSON):
            return replace(gen, content="Sure! Here is the JSON you asked for.")
        if _fault(FAULT_JSON_LENGTH):
            return replace(gen, finish_reason="length")
    if fmt.get("type") == "json_schema":
        strict = bool((fmt.get("json_schema") or {}).get("strict"))
        value = json.loads(gen.content)
        if strict and isinstance(value, dict) and _fault(FAULT_STRICT_EXTRA):
            return replace(gen, content=json.dumps({**value, "unexpected_property": True}))
        required = ((fmt.get("json_schema") or {}).get("schema") or {}).get("required") or []
        if not strict and isinstance(value, dict) and required and _fault(FAULT_SCHEMA_VIOLATED):
            return replace(gen, content=json.dumps({k: v for k, v in value.items() if k not in required}))
    return gen


def _tools(gen: Generation, req: ChatRequest, index: int, provider: str) -> Generation:
    choice = req.tool_choice
    if choice == "none" and req.tools and _fault(FAULT_NONE_IGNORED):
        calls = tool_calls(req, index, req.tool_names[:1])
        return replace(gen, content=None, finish_reason="tool_calls", tool_calls=calls)
    if choice == "required" and _fault(FAULT_REQUIRED_IGNORED):
        return replace(gen, content=text_answer(req, index, provider), finish_reason="stop", tool_calls=())
    if isinstance(choice, dict) and _fault(FAULT_NAMED_IGNORED):
        others = [n for n in req.tool_names if n != choice["name"]][:1]
        if not others:
            return replace(gen, content=text_answer(req, index, provider), finish_reason="stop", tool_calls=())
        return replace(gen, tool_calls=tool_calls(req, index, others))
    if not gen.tool_calls:
        return gen
    if req.parallel_tool_calls is False and len(req.tools) > 1 and _fault(FAULT_PARALLEL_IGNORED):
        names = [n for n in req.tool_names if n in str(req.messages[-1].get("content"))] or req.tool_names
        gen = replace(gen, tool_calls=tool_calls(req, index, names))
    calls = list(gen.tool_calls)
    if not req.stream and _fault(FAULT_EMPTY_CALLS):
        calls = []
    if _fault(FAULT_WRONG_NAME):
        calls = [replace(c, name=c.name + "_v2") for c in calls]
    if _fault(FAULT_SAME_IDS):
        calls = [replace(c, id=calls[0].id) for c in calls]
    if _fault(FAULT_ARGS_OFF_SCHEMA):
        calls = [replace(c, arguments='{"unexpected": true}') for c in calls]
    return replace(gen, tool_calls=tuple(calls))
