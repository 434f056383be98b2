"""Scripted answers as data: parse and validate rules (``POST /_mock/scripts``, ``--script FILE``, the fixture).

A rule is ``{"id"?, "match": {...}, "times"?, "respond": RESPONSE | [RESPONSE, ...]}`` (docs/scripts.md). Parsing
checks every field and raises :class:`RuleError` naming the rule's index and the field (``rules[2].respond.status``),
so a bad script fails where it is loaded, never at request time. A parsed :class:`Rule` keeps the normalised JSON
it came from (``Rule.raw``): that is what the state store shares between workers and hosts.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from reference_server.mock.tokenizer import count_tokens
from reference_server.scripting.nonce import NONCE_VALUE

# Routes a rule may name: the OpenAI surface under the profile's base path, and the Ollama surface.
ROUTES = ("chat", "embeddings", "models", "ollama-chat", "ollama-generate", "ollama-embed", "ollama-embeddings")
# Routes whose answer is a chat completion that content, tool calls, refusal, n, logprobs and streams can shape.
CHAT_ROUTES = ("chat",)
MAX_STALL_MS = 600_000
MAX_DELAY_MS = 120_000
MATCH_KEYS = ("nonce", "route", "model", "prompt_contains", "prompt_regex", "tools", "nth")
ANSWER_KEYS = ("content", "finish_reason", "usage", "n", "logprobs", "refusal", "tool_calls", "stream")
RESPONSE_KEYS = ("status", "headers", "body", "stall_ms", *ANSWER_KEYS)
STREAM_KEYS = ("first_byte_ms", "interval_ms", "chunks", "cut_after", "error_after", "error")
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
RULE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_UNSET: Any = object()


class RuleError(ValueError):
    """A rule that cannot be used; ``path`` names the rule index and field (``rules[1].match.nth``)."""

    def __init__(self, index: int | None, path: str, message: str) -> None:
        self.index, self.field = index, path
        where = f"rules[{index}]" if index is not None else "rules"
        self.path = f"{where}.{path}" if path else where
        super().__init__(f"{self.path}: {message}")


@dataclass(frozen=True)
class Match:
    """What a request must show for the rule to apply (every given condition must hold)."""

    nonce: str | None = None
    route: str | None = None
    model: str | None = None
    prompt_contains: str | None = None
    prompt_regex: re.Pattern[str] | None = None
    tools: bool | None = None
    nth: int | None = None


@dataclass(frozen=True)
class StreamPlan:
    """The chunk schedule of a streamed answer (all optional)."""

    first_byte_ms: int = 0
    interval_ms: int = 0
    chunks: int | None = None
    cut_after: int | None = None
    error_after: int | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolCallSpec:
    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer. ``status``/``headers``/``body`` answer raw; the other fields shape the normal mock answer.

    ``refusal`` is ``_UNSET`` when the rule does not mention it (``null`` is a value: no refusal).
    """

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = _UNSET
    stall_ms: int = 0
    content: Any = _UNSET
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    n: int | None = None
    logprobs: bool | None = None
    refusal: Any = _UNSET
    tool_calls: tuple[ToolCallSpec, ...] | None = None
    stream: StreamPlan | None = None

    @property
    def raw_answer(self) -> bool:
        """True when the rule answers with a status and/or a body of its own instead of a generated answer."""
        return self.body is not _UNSET or (self.status is not None and self.status != 200)

    @property
    def shapes_answer(self) -> bool:
        """True when the rule changes what the mock model generates (content, tools, usage, stream, ...)."""
        return self.has("content") or self.has("refusal") or any(
            getattr(self, name) is not None for name in ANSWER_KEYS if name not in ("content", "refusal"))

    def has(self, name: str) -> bool:
        return getattr(self, name) is not _UNSET


@dataclass(frozen=True)
class Rule:
    id: str
    match: Match
    times: int | None
    respond: tuple[ScriptedResponse, ...]
    raw: dict[str, Any] = field(compare=False)

    def response_for(self, served: int) -> ScriptedResponse:
        """The answer of the ``served``-th request (1-based) this rule answers; the last item repeats."""
        return self.respond[min(served, len(self.respond)) - 1]


def _int(value: Any, index: int, path: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(index, path, f"must be an integer, got {json.dumps(value)}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise RuleError(index, path, f"must be {bounds}, got {value}")
    return value


def _str(value: Any, index: int, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise RuleError(index, path, f"must be a{'' if empty else ' non-empty'} string, got {json.dumps(value)}")
    return value


def _object(value: Any, index: int, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RuleError(index, path, f"must be an object, got {json.dumps(value)}")
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise RuleError(index, where, f"unknown field (expected one of: {', '.join(allowed)})")
    return value


def parse_match(raw: Any, index: int) -> Match:
    raw = _object(raw if raw is not None else {}, index, "match", MATCH_KEYS)
    nonce = raw.get("nonce")
    if nonce is not None and not NONCE_VALUE.fullmatch(_str(nonce, index, "match.nonce")):
        raise RuleError(index, "match.nonce", "must be 6-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    route = raw.get("route")
    if route is not None and route not in ROUTES:
        raise RuleError(index, "match.route", f"unknown route {json.dumps(route)} (expected one of: {', '.join(ROUTES)})")
    regex = raw.get("prompt_regex")
    compiled = None
    if regex is not None:
        try:
            compiled = re.compile(_str(regex, index, "match.prompt_regex"))
        except re.error as exc:
            raise RuleError(index, "match.prompt_regex", f"invalid regular expression: {exc}") from None
    tools = raw.get("tools")
    if tools is not None and not isinstance(tools, bool):
        raise RuleError(index, "match.tools", f"must be true or false, got {json.dumps(tools)}")
    return Match(
        nonce=nonce, route=route,
        model=_str(raw["model"], index, "match.model") if raw.get("model") is not None else None,
        prompt_contains=(_str(raw["prompt_contains"], index, "match.prompt_contains")
                         if raw.get("prompt_contains") is not None else None),
        prompt_regex=compiled, tools=tools,
        nth=_int(raw["nth"], index, "match.nth", 1) if raw.get("nth") is not None else None,
    )


def parse_stream(raw: Any, index: int, path: str) -> StreamPlan:
    raw = _object(raw, index, path, STREAM_KEYS)

    def number(name: str, low: int, high: int | None = None) -> int | None:
        value = raw.get(name)
        return None if value is None else _int(value, index, f"{path}.{name}", low, high)

    error = raw.get("error")
    if error is not None:
        error = _object(error, index, f"{path}.error", ("message", "type", "param", "code"))
        _str(error.get("message"), index, f"{path}.error.message")
        error = {"message": error["message"], "type": error.get("type") or "server_error",
                 "param": error.get("param"), "code": error.get("code")}
    plan = StreamPlan(first_byte_ms=number("first_byte_ms", 0, MAX_DELAY_MS) or 0,
                      interval_ms=number("interval_ms", 0, MAX_DELAY_MS) or 0,
                      chunks=number("chunks", 1, 100_000), cut_after=number("cut_after", 0),
                      error_after=number("error_after", 0), error=error)
    if plan.cut_after is not None and plan.error_after is not None:
        raise RuleError(index, f"{path}.error_after", "cannot be combined with cut_after")
    if error is not None and plan.error_after is None:
        raise RuleError(index, f"{path}.error", "needs error_after (the number of chunks before the error event)")
    return plan


def parse_tool_calls(raw: Any, index: int, path: str) -> tuple[ToolCallSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise RuleError(index, path, "must be a non-empty array of {name, arguments}")
    calls = []
    for number, call in enumerate(raw):
        where = f"{path}[{number}]"
        call = _object(call, index, where, ("name", "arguments", "id"))
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            if not isinstance(arguments, dict):
                raise RuleError(index, f"{where}.arguments", "must be a JSON string or an object")
            arguments = json.dumps(arguments)
        calls.append(ToolCallSpec(name=_str(call.get("name"), index, f"{where}.name"), arguments=arguments,
                                  id=_str(call["id"], index, f"{where}.id") if call.get("id") is not None else None))
    return tuple(calls)


def parse_usage(raw: Any, index: int, path: str) -> dict[str, Any]:
    raw = _object(raw, index, path, ("prompt_tokens", "completion_tokens", "total_tokens",
                                     "prompt_tokens_details", "completion_tokens_details"))
    usage: dict[str, Any] = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        if name in raw:
            usage[name] = _int(raw[name], index, f"{path}.{name}", 0)
    if "total_tokens" not in usage and {"prompt_tokens", "completion_tokens"} <= usage.keys():
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    for name in ("prompt_tokens_details", "completion_tokens_details"):
        if name in raw:
            details = _object(raw[name], index, f"{path}.{name}", tuple(raw[name]) if isinstance(raw[name], dict) else ())
            usage[name] = {k: _int(v, index, f"{path}.{name}.{k}", 0) for k, v in details.items()}
    return usage


def parse_response(raw: Any, index: int, path: str, route: str | None) -> ScriptedResponse:
    raw = _object(raw, index, path, RESPONSE_KEYS)
    status = raw.get("status")
    if status is not None:
        status = _int(status, index, f"{path}.status", 200, 599)
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and k and isinstance(v, (str, int, float))
                                                and not isinstance(v, bool) for k, v in headers.items()):
        raise RuleError(index, f"{path}.headers", "must be an object of header name to string value")
    if any("\n" in k + str(v) or "\r" in k + str(v) for k, v in headers.items()):
        raise RuleError(index, f"{path}.headers", "header names and values cannot contain line breaks")
    answer_fields = [name for name in ANSWER_KEYS if name in raw]
    if answer_fields and route is not None and route not in CHAT_ROUTES:
        raise RuleError(index, f"{path}.{answer_fields[0]}",
                        f"shapes a chat completion; match.route {json.dumps(route)} does not answer one")
    if answer_fields and ("body" in raw or (status is not None and status != 200)):
        raise RuleError(index, f"{path}.{answer_fields[0]}", "cannot be combined with a raw status/body answer")
    content = raw.get("content", _UNSET)
    if content is not _UNSET and content is not None:
        _str(content, index, f"{path}.content", empty=True)
    refusal = raw.get("refusal", _UNSET)
    if refusal is not _UNSET and refusal is not None:
        _str(refusal, index, f"{path}.refusal")
    finish = raw.get("finish_reason")
    if finish is not None and finish not in FINISH_REASONS:
        raise RuleError(index, f"{path}.finish_reason", f"must be one of: {', '.join(FINISH_REASONS)}")
    logprobs = raw.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise RuleError(index, f"{path}.logprobs", "must be true or false")
    stream = parse_stream(raw["stream"], index, f"{path}.stream") if raw.get("stream") is not None else None
    if stream is not None and stream.chunks is not None and isinstance(content, str) \
            and count_tokens(content) != stream.chunks:
        raise RuleError(index, f"{path}.stream.chunks",
                        f"the content has {count_tokens(content)} tokens (one chunk each): omit chunks or match it")
    return ScriptedResponse(
        status=status, headers=tuple((k, str(v)) for k, v in headers.items()), body=raw.get("body", _UNSET),
        stall_ms=_int(raw.get("stall_ms", 0), index, f"{path}.stall_ms", 0, MAX_STALL_MS),
        content=content, finish_reason=finish,
        usage=parse_usage(raw["usage"], index, f"{path}.usage") if raw.get("usage") is not None else None,
        n=_int(raw["n"], index, f"{path}.n", 1, 128) if raw.get("n") is not None else None,
        logprobs=logprobs, refusal=refusal,
        tool_calls=parse_tool_calls(raw["tool_calls"], index, f"{path}.tool_calls")
        if raw.get("tool_calls") is not None else None,
        stream=stream,
    )


def parse_rule(raw: Any, index: int) -> Rule:
    """One rule; ``index`` is its position in the list being registered (named by errors)."""
    raw = _object(raw, index, "", ("id", "match", "times", "respond"))
    rule_id = raw.get("id")
    if rule_id is None:
        rule_id = f"rule-{uuid.uuid4().hex[:12]}"
    elif not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
        raise RuleError(index, "id", "must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'")
    match = parse_match(raw.get("match"), index)
    times = raw.get("times")
    if times is not None:
        times = _int(times, index, "times", 1)
    if "respond" not in raw:
        raise RuleError(index, "respond", "is required")
    respond = raw["respond"]
    items = respond if isinstance(respond, list) else [respond]
    if not items:
        raise RuleError(index, "respond", "must not be an empty list")
    path = "respond" if not isinstance(respond, list) else "respond[{}]"
    answers = tuple(parse_response(item, index, path.format(k), match.route) for k, item in enumerate(items))
    normalised = {**raw, "id": rule_id}
    return Rule(id=rule_id, match=match, times=times, respond=answers, raw=normalised)


def parse_rules(data: Any) -> list[Rule]:
    """``{"rules": [...]}`` or a bare list of rules; raises :class:`RuleError` on the first bad field."""
    if isinstance(data, dict):
        if set(data) - {"rules"}:
            extra = sorted(set(data) - {"rules"})[0]
            raise RuleError(None, extra, "unknown field (expected {\"rules\": [...]})")
        data = data.get("rules")
    if not isinstance(data, list):
        raise RuleError(None, "", "must be a list of rules (or {\"rules\": [...]})")
    rules = [parse_rule(raw, index) for index, raw in enumerate(data)]
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.id in seen:
            raise RuleError(index, "id", f"duplicate id {json.dumps(rule.id)}")
        seen.add(rule.id)
    return rules
