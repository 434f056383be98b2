"""Mock providers: what the "model" answers, deterministically, for one choice of a chat request.

Which answer a request gets (first rule that applies):

1. ``REFUSE`` (upper case) in the last user message: a refusal (``refusal`` text, ``content`` null).
2. Tools offered and ``tool_choice`` is not ``none``: tool calls, unless ``tool_choice`` is ``auto`` and the last
   message is a tool result (then the model answers in text). Called tools: a named ``tool_choice``; else every
   offered tool whose name appears in the last user message (just the first one when ``parallel_tool_calls`` is
   false), or the first tool when none is named. Arguments come from ``schema_values`` and satisfy the tool's
   ``parameters`` schema.
3. ``response_format`` ``json_object``: a JSON object; ``json_schema``: JSON valid against the given schema.
4. Text, by the text provider: ``seeded`` (default) draws words from a hash of the text-shaping request fields and
   ``seed`` (ignored at temperature 0), and of the choice index, so choices differ; ``echo`` answers the last user
   message. The ``X-Mock-Provider: echo|seeded`` header picks the text provider (a header, not a model suffix,
   so model names stay exactly what the profile documents).

Reasoning models (the profile's ``reasoning`` of the model entry) add reasoning text: in ``reasoning_content`` /
``reasoning`` beside the answer, or as a ``<think>...</think>`` prefix of text content for ``think-tag`` models.
``finalize`` then applies ``stop`` and ``max_tokens`` / ``max_completion_tokens`` to the answer.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from reference_server.context import server_config
from reference_server.mock import schema_values
from reference_server.mock.tokenizer import count_tokens, tokenize
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from reference_server.surfaces.chat_request import ChatRequest

REFUSAL_TRIGGER = "REFUSE"
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
# Long-answer mode: a prompt asking for at least 3000 words gets that long an answer (seeded sentences), so a
# documented max_tokens default (PARAMS-027) has something to cut, as a real model's essay would.
LONG_ANSWER_TRIGGER = "at least 3000 words"
LONG_ANSWER_SENTENCE_PAIRS = 300  # ~3600 tokens: well past every documented default
TEXT_PROVIDERS = ("seeded", "echo")
VOCABULARY = (
    "the", "a", "gateway", "model", "answer", "stream", "token", "request", "quiet", "river", "bright", "signal",
    "carries", "every", "small", "message", "through", "open", "network", "clear", "steady", "light", "reads",
    "writes", "careful", "simple", "test", "result", "moves", "along", "path", "over", "under", "between", "warm",
    "field", "stone", "cloud", "echo", "number", "seven", "green", "blue", "fast", "slow", "well", "here", "today",
)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Generation:
    """One choice's answer. ``reasoning_field`` names where ``reasoning`` goes (``reasoning_content`` or
    ``reasoning``); ``reasoning_tokens`` counts it in usage.

    Never changed once built (faults and scripts derive a new one with ``dataclasses.replace``); not ``frozen``
    because a frozen dataclass sets each field through ``object.__setattr__``, and every choice builds one.
    """

    content: str | None
    finish_reason: str = "stop"
    refusal: str | None = None
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)

    @property
    def completion_tokens(self) -> int:
        # Only the parts a choice has are counted (most have content alone): a call per absent part is the cost.
        tokens = count_tokens(self.content)
        if self.refusal is not None:
            tokens += count_tokens(self.refusal)
        if self.reasoning is not None:
            tokens += count_tokens(self.reasoning)
        for call in self.tool_calls:
            tokens += count_tokens(call.name) + count_tokens(call.arguments)
        return tokens

    @property
    def reasoning_tokens(self) -> int:
        return count_tokens(self.reasoning)


def rng_for(req: ChatRequest, *salt: object) -> random.Random:
    """A PRNG seeded from the text-shaping fields of the request plus ``salt`` (choice index, call index...)."""
    digest = hashlib.sha256(json.dumps([req.content_key, *salt], default=str).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def derived_id(prefix: str, *parts: object) -> str:
    """``prefix`` + 24 hex characters of a hash of ``parts``: stable ids for the same request."""
    return prefix + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def seeded_text(rng: random.Random) -> str:
    """Two sentences of 3-5 vocabulary words: 13-21 tokens, so a short request with room (the suite's shared
    24-token completion, PARAMS-023) really ends on its own, while 5-8 token limits still cut it."""
    sentences = []
    for _ in range(2):
        words = [rng.choice(VOCABULARY) for _ in range(rng.randint(3, 5))]
        sentences.append(" ".join(words).capitalize() + rng.choice((".", ".", "!")))
    return " ".join(sentences)


def text_provider(environ: dict) -> str:
    """The text provider the request's ``X-Mock-Provider`` header picks (``seeded`` without one)."""
    name = environ.get("HTTP_X_MOCK_PROVIDER")  # the header, read from the WSGI environ it lives in
    if name in TEXT_PROVIDERS:
        return name
    name = (name or "seeded").strip().lower()
    if name not in TEXT_PROVIDERS:
        raise ApiError(400, f"Invalid X-Mock-Provider header: {name[:32]!r}; expected one of "
                       f"{', '.join(TEXT_PROVIDERS)}.", param="X-Mock-Provider")
    return name


def text_answer(req: ChatRequest, index: int, provider: str) -> str:
    if provider == "echo":
        text = req.last_user_text or "(empty message)"
        return text if index == 0 else f"{text} ({index})"
    rng = rng_for(req, "text", index)
    if LONG_ANSWER_TRIGGER in req.last_user_text.lower():
        return " ".join(seeded_text(rng) for _ in range(LONG_ANSWER_SENTENCE_PAIRS))
    return seeded_text(rng)


def json_answer(req: ChatRequest, index: int) -> str:
    fmt = req.response_format or {}
    rng = rng_for(req, "json", index)
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        value = schema_values.generate(schema, rng)
        if (isinstance(value, dict) and len(value) > 1 and (fmt.get("json_schema") or {}).get("strict") is not True
                and server_config().variant("schema-loose")):
            value.pop(sorted(value)[-1])  # adherence is promised only with strict: true (STRUCTURED-OUTPUT-003)
        return json.dumps(value)
    return json.dumps({"answer": seeded_text(rng), "choice": index})


def called_tools(req: ChatRequest) -> list[str]:
    """Names of the tools this turn calls (empty: answer in text). See the module docstring for the rule."""
    if not req.tools or req.tool_choice == "none":
        return []
    if isinstance(req.tool_choice, dict):
        return [req.tool_choice["name"]]
    if req.tool_choice == "auto" and req.messages and req.messages[-1].get("role") == "tool":
        return []
    prompt = req.last_user_text
    names = [name for name in req.tool_names if name in prompt] or req.tool_names[:1]
    return names if req.parallel_tool_calls else names[:1]


def tool_calls(req: ChatRequest, index: int, names: list[str]) -> tuple[ToolCall, ...]:
    schemas = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in req.tools}
    strict = {t["function"]["name"] for t in req.tools if t["function"].get("strict") is True}
    calls = []
    for number, name in enumerate(names):
        args = json.dumps(schema_values.generate(schemas[name], rng_for(req, "tool", index, number)))
        if name not in strict and server_config().variant("tool-args-unparsed"):
            args = args[:-1]  # the model "does not always generate valid JSON" unless strict is on (TOOLS-005/016)
        calls.append(ToolCall(derived_id("call_", req.content_key, index, number), name, args))
    return tuple(calls)


def reasoning_text(req: ChatRequest, index: int) -> str:
    rng = rng_for(req, "reasoning", index)
    return "Let me think about this. " + " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(6, 12))) + "."


def generate(req: ChatRequest, index: int, provider: str = "seeded") -> Generation:
    """The full (not yet stopped or truncated) answer for choice ``index``."""
    style = req.model.entry.get("reasoning")
    reasoning = reasoning_text(req, index) if style else None
    if REFUSAL_TRIGGER in req.last_user_text:
        return Generation(content=None, refusal=REFUSAL_TEXT)
    names = called_tools(req)
    if names:
        return Generation(content=None, finish_reason="tool_calls", tool_calls=tool_calls(req, index, names))
    if req.response_format:
        content = json_answer(req, index)
    else:
        content = text_answer(req, index, provider)
        if style == "think-tag":
            return Generation(content=f"<think>\n{reasoning}\n</think>\n\n{content}")
    if style in ("reasoning-content", "reasoning-field"):
        field_name = "reasoning" if style == "reasoning-field" else "reasoning_content"
        return Generation(content=content, reasoning=reasoning, reasoning_field=field_name)
    return Generation(content=content)


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    positions = [text.find(s) for s in stops if s and s in text]
    return (text[: min(positions)], True) if positions else (text, False)


def _take(text: str | None, budget: int) -> tuple[str | None, int, bool]:
    """Keep at most ``budget`` tokens of ``text``: (kept text, tokens used, was cut)."""
    if text is None:
        return None, 0, False
    tokens = tokenize(text)
    return "".join(tokens[:budget]), min(len(tokens), budget), len(tokens) > budget


def finalize(gen: Generation, req: ChatRequest) -> Generation:
    """Apply ``stop`` (content cut before the first stop sequence) and the max-tokens budget (``length``)."""
    if gen.content is not None and req.stop:
        gen = replace(gen, content=_cut_at_stop(gen.content, req.stop)[0])
    if req.max_tokens is None:
        return gen
    budget = req.max_tokens
    reasoning, used, cut = _take(gen.reasoning, budget)
    budget -= used
    content, used, cut_content = _take(gen.content, budget) if not cut else ("" if gen.content else None, 0, True)
    budget -= used
    refusal, used, cut_refusal = _take(gen.refusal, budget)
    budget -= used
    calls, cut_calls = _truncate_calls(gen.tool_calls, budget)
    if cut or cut_content or cut_refusal or cut_calls:
        return replace(gen, reasoning=reasoning, content=content, refusal=refusal, tool_calls=calls,
                       finish_reason="length")
    return gen


def _truncate_calls(calls: tuple[ToolCall, ...], budget: int) -> tuple[tuple[ToolCall, ...], bool]:
    kept: list[ToolCall] = []
    for call in calls:
        need = count_tokens(call.name) + count_tokens(call.arguments)
        if need <= budget:
            kept.append(call)
            budget -= need
            continue
        if budget > count_tokens(call.name):
            args, _, _ = _take(call.arguments, budget - count_tokens(call.name))
            kept.append(replace(call, arguments=args or ""))
        return tuple(kept), True
    return tuple(kept), False
