"""Validation of ``POST {base}/chat/completions`` bodies into a ``ChatRequest``.

Every problem a client can cause answers 400 with the envelope and the offending field in ``param``; a body sent
with a non-JSON Content-Type answers 415 (Unsupported Media Type, the status HTTP defines for it; ERRORS-005 allows
400 or 415, or serving the body as JSON: the ``text-plain-served`` variant), whatever the body holds. Unknown extra
fields are tolerated because SDKs send new fields first.

Each check that finds something wrong describes it as a :class:`Problem` (which field, which rule, the error it
answers) and passes it through the ``CHAT_PROBLEM`` seam (:func:`reject`); nothing is built for a valid body. Faults
act there (faults/problems.py): they reshape the error or accept the input, and validation goes on with the value
they give. The faults that refuse a valid request act on the validated ``ChatRequest`` at the ``CHAT_REQUEST`` seam
(faults/validation.py).

Just over 400 lines: every rule of the chat body stands here beside the ``Problem`` it raises, so a reader finds a
rule and its refusal in one place; faults and variants act at the decision seam, not in these checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from flask import Request

from reference_server.context import server_config
from reference_server.faults import seams
from reference_server.mock.tokenizer import count_prompt_tokens, message_text
from reference_server.surfaces.chat_hashes import request_hashes
from reference_server.surfaces.models import ResolvedModel, resolve_model
from reference_server.wire import body_limit
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from reference_server.config import ServerConfig

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

KNOWN_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "seed", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "stream", "stream_options", "user", "metadata",
    "store", "reasoning_effort", "service_tier", "prompt_cache_key", "safety_identifier", "modalities",
    "prediction", "audio", "verbosity", "web_search_options", "functions", "function_call",
    "prompt_cache_retention", "prompt_cache_options",
})


@dataclass
class ChatRequest:
    """A validated chat request; ``content_key`` hashes only what shapes the generated text."""

    body: dict[str, Any]
    model: ResolvedModel
    messages: list[dict[str, Any]]
    stream: bool = False
    n: int = 1
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    max_tokens_param: str | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    include_usage: bool = False
    usage_requested: bool = False
    request_hash: str = ""
    content_key: str = ""
    unknown_fields: tuple[str, ...] = ()  # top-level fields the server does not know (and ignores), sorted
    _prompt_tokens: int | None = field(default=None, init=False, repr=False, compare=False)
    _last_user_text: str | None = field(default=None, init=False, repr=False, compare=False)
    cacheable: bool | None = field(default=None, init=False, repr=False, compare=False)  # mock/usage.is_cacheable

    @property
    def prompt_tokens(self) -> int:
        """``count_prompt_tokens`` of the messages and tools, counted once (the limiter and the usage both ask)."""
        if self._prompt_tokens is None:
            self._prompt_tokens = count_prompt_tokens(self.messages, self.tools)
        return self._prompt_tokens

    @property
    def last_user_text(self) -> str:
        """The countable text of the last user message ("" without one), found once: every choice's answer asks
        (the refusal trigger, the echo provider, the tools a prompt names)."""
        text = self._last_user_text
        if text is None:
            text = ""
            for message in reversed(self.messages):
                if message.get("role") == "user":
                    text = message_text(message)
                    break
            self._last_user_text = text
        return text

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a chat request body, and the error it answers.

    ``field`` names where, without indexes (``temperature``, ``messages[].role``, ``body`` for the body as a whole),
    ``rule`` what is broken (``media-type``, ``json``, ``type``, ``missing``, ``empty``, ``range``, ``length``,
    ``value``, ``pattern``, ``requires``), ``value`` what the body holds there (for a missing field: the object that
    lacks it), ``bounds`` the allowed ``(low, high)`` of a ``range`` problem (high None: unbounded). A fault or
    variant at the ``CHAT_PROBLEM`` seam may change the error (status, message, param) or accept the input:
    ``accepted``, and validation goes on with ``value``.
    """

    field: str
    rule: str
    message: str
    param: str | None
    value: Any = None
    status: int = 400
    accepted: bool = False
    bounds: tuple[Any, Any] | None = None

    def accept(self, value: Any) -> Problem:
        """The input is served anyway; validation goes on with ``value``."""
        return replace(self, accepted=True, value=value)


class InvalidRequest(ApiError):
    """The error a chat request body's problem answers (the problem kept for the seams of refused requests)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.message, param=problem.param)
        self.problem = problem


def reject(field: str, rule: str, message: str, param: str | None, value: Any = None, status: int = 400,
           bounds: tuple[Any, Any] | None = None) -> Any:
    """Raise the error of a problem found in the body, through the ``CHAT_PROBLEM`` seam; when a fault accepts the
    input instead, return the value validation goes on with."""
    problem = seams.CHAT_PROBLEM(server_config(), Problem(field, rule, message, param, value, status, bounds=bounds))
    if problem.accepted:
        return problem.value
    raise InvalidRequest(problem)


def read_json_body(request: Request, config: ServerConfig) -> Any:
    """The parsed body, or raise 415 (not JSON content type) / 400 (not parseable); under the
    ``body-limit-after-parse`` variant, without its unknown fields and measured (wire/body_limit.py)."""
    # ``is_json`` parses the Content-Type header on every call: the usual exact value needs no parsing.
    if (request.environ.get("CONTENT_TYPE") != "application/json" and not request.is_json
            and not config.variant("text-plain-served")):
        reject("body", "media-type", "Invalid Content-Type header: expected application/json.", None,
               request.mimetype, status=415)
    raw = request.get_data(cache=True)
    try:
        body = _decode_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return reject("body", "json", f"We could not parse the JSON body of your request ({exc.__class__.__name__}).",
                      None, raw)
    if config.variant(body_limit.VARIANT):
        return body_limit.measured_after_parse(body, config.max_body_bytes, KNOWN_FIELDS)
    return body


# What ``json.loads(text)`` does for a str without options, without its per-call argument checks.
_decode_json = json.JSONDecoder().decode


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        value = reject(name, "type", f"Invalid type for '{name}': expected a number, got {type(value).__name__}.",
                       name, value)
        if value is None:
            return None
    if not low <= value <= high:
        value = reject(name, "range", f"Invalid '{name}': {value} is out of range; expected {low} to {high}.", name,
                       value, bounds=(low, high))
    return float(value)


def _integer(body: dict, name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        value = reject(name, "type", f"Invalid type for '{name}': expected an integer, got {type(value).__name__}.",
                       name, value)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        value = reject(name, "range", f"Invalid '{name}': {value}; it must be {bound}.", name, value,
                       bounds=(low, high))
    return value


def _boolean(body: dict, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        value = reject(name, "type", f"Invalid type for '{name}': expected a boolean.", name, value)
    return value


def _check_content(message: dict, index: int) -> None:
    param = f"messages[{index}].content"
    role, content = message["role"], message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if role in ("assistant", "function") and "content" in message:
            return
        reject("messages[].content", "missing", f"Missing required parameter: '{param}'.", param, message)
        return
    if isinstance(content, str):
        return
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                reject("messages[].content[]", "type",
                       f"Invalid content part: '{param}[{j}]' must be an object with a type.", f"{param}[{j}]", part)
        return
    reject("messages[].content", "type",
           f"Invalid type for '{param}': expected a string or an array of content parts.", param, content)


def _check_message(message: Any, index: int) -> None:
    if not isinstance(message, dict):
        reject("messages[]", "type", f"Invalid type for 'messages[{index}]': expected an object.",
               f"messages[{index}]", message)
        return
    role = message.get("role")
    if role not in ROLES:
        role = reject("messages[].role", "value", f"Invalid value for 'messages[{index}].role': {str(role)[:32]!r}; "
                      f"expected one of {', '.join(ROLES)}.", f"messages[{index}].role", role)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        reject("messages[].tool_call_id", "missing", f"Missing required parameter: 'messages[{index}].tool_call_id'.",
               f"messages[{index}].tool_call_id", message)
    if role in ROLES:
        _check_content(message, index)


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if messages is None:
        messages = reject("messages", "missing", "Missing required parameter: 'messages'.", "messages", body)
    if not isinstance(messages, list):
        messages = reject("messages", "type", "Invalid type for 'messages': expected an array of message objects.",
                          "messages", messages)
    if not messages:
        messages = reject("messages", "empty", "Invalid 'messages': empty array. Expected an array with minimum "
                          "length 1.", "messages", messages)
    for index, message in enumerate(messages):
        # The usual message (a known role that needs no tool_call_id, string content) passes every check below:
        # it is recognised here without the two calls that check it.
        if type(message) is dict and message.get("role") in _PLAIN_ROLES and type(message.get("content")) is str:
            continue
        _check_message(message, index)
    return messages


_PLAIN_ROLES = frozenset(ROLES) - {"tool"}


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        reject("stop", "type", "Invalid type for 'stop': expected a string or an array of strings.", "stop", stop)
        return []
    if len(stop) > 4:
        stop = reject("stop", "length", f"Invalid 'stop': array too long. Expected at most 4 sequences, got "
                      f"{len(stop)}.", "stop", stop)
    return [s for s in stop if s]


def _tools(body: dict) -> list[dict]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        reject("tools", "type", "Invalid type for 'tools': expected an array.", "tools", tools)
        return []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            reject("tools[]", "type", f"Invalid 'tools[{i}]': expected {{type: 'function', function: {{name, ...}}}}.",
                   f"tools[{i}]", tool)
            continue
        name = function.get("name")
        if not isinstance(name, str) or not SCHEMA_NAME.match(name):
            reject("tools[].function.name", "pattern",
                   f"Invalid 'tools[{i}].function.name': must match ^[a-zA-Z0-9_-]{{1,64}}$.",
                   f"tools[{i}].function.name", name)
        if "parameters" in function and not isinstance(function["parameters"], dict):
            reject("tools[].function.parameters", "type",
                   f"Invalid 'tools[{i}].function.parameters': expected a JSON Schema object.",
                   f"tools[{i}].function.parameters", function["parameters"])
    return tools


def _tool_choice(body: dict, names: list[str]) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto" if names else "none"
    if choice in ("none", "auto", "required"):
        if choice == "required" and not names:
            reject("tool_choice", "requires", "tool_choice 'required' needs at least one tool in 'tools'.",
                   "tool_choice", choice)
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(function, dict) or choice.get("type") != "function":
        return reject("tool_choice", "value", "Invalid 'tool_choice': expected none, auto, required or "
                      "{type: 'function', function: {name}}.", "tool_choice", choice)
    if function.get("name") not in names:
        reject("tool_choice", "requires",
               f"Invalid 'tool_choice': no tool named {str(function.get('name'))[:64]!r} in 'tools'.", "tool_choice",
               choice)
    return {"name": function.get("name")}


def _response_format(body: dict) -> dict | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        return reject("response_format", "type", "Invalid type for 'response_format': expected an object.",
                      "response_format", fmt)
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return fmt
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            reject("response_format.json_schema", "missing", "Missing required parameter: "
                   "'response_format.json_schema'.", "response_format.json_schema", fmt)
            return fmt
        name = spec.get("name")
        if not (isinstance(name, str) and SCHEMA_NAME.match(name)):
            reject("response_format.json_schema.name", "pattern",
                   "Invalid 'response_format.json_schema.name': must match ^[a-zA-Z0-9_-]{1,64}$.",
                   "response_format.json_schema.name", name)
        if "schema" in spec and not isinstance(spec["schema"], dict):
            reject("response_format.json_schema.schema", "type",
                   "Invalid 'response_format.json_schema.schema': expected an object.",
                   "response_format.json_schema.schema", spec["schema"])
        return fmt
    return reject("response_format.type", "value", f"Invalid 'response_format.type': {str(kind)[:32]!r}; expected "
                  "text, json_object or json_schema.", "response_format.type", kind)


def _model(body: dict) -> ResolvedModel:
    name = body.get("model")
    if name is None:
        name = reject("model", "missing", "you must provide a model parameter", "model", body)
    if not isinstance(name, str) or not name:
        name = reject("model", "type", "Invalid type for 'model': expected a non-empty string.", "model", name)
    return resolve_model(name)


def _usage_flags(body: dict, stream: bool, config: ServerConfig) -> tuple[bool, bool]:
    """(include_usage, asked): asked is what the client said; include adds the profile's auto-injection."""
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        options = reject("stream_options", "type", "Invalid type for 'stream_options': expected an object.",
                         "stream_options", options)
    asked = _boolean(options or {}, "include_usage", False)
    auto = bool(config.profile.get("stream.auto_include_usage"))
    return stream and (asked or auto), asked


_NUMBERS = (("temperature", 0, 2), ("top_p", 0, 1), ("presence_penalty", -2, 2), ("frequency_penalty", -2, 2))


def parse_chat_request(body: Any, path: str, config: ServerConfig) -> ChatRequest:
    """Validate a parsed body (sent to ``path``) into a ``ChatRequest`` or raise the ``ApiError`` the first problem
    deserves.

    The checks run in a fixed order (the first problem is the one answered). A body names few of the optional
    fields, and each check of an absent field would only find it absent: each runs where its field is present
    (``name in body``), which spares a first-seen request most of its calls.
    """
    if not isinstance(body, dict):
        body = reject("body", "type", "Invalid request body: expected a JSON object.", None, body)
    model = _model(body)
    messages = _messages(body)
    temperature = None
    for name, low, high in _NUMBERS:
        if name in body:
            value = _number(body, name, low, high)
            if name == "temperature":
                temperature = value
    tools = _tools(body) if "tools" in body else []
    stream = _boolean(body, "stream", False) if "stream" in body else False
    logprobs = _boolean(body, "logprobs", False) if "logprobs" in body else False
    top_logprobs = _integer(body, "top_logprobs", 0, 20) if "top_logprobs" in body else None
    if top_logprobs is not None and not logprobs:
        reject("top_logprobs", "requires", "'top_logprobs' requires 'logprobs' to be true.", "top_logprobs",
               top_logprobs)
    include_usage, asked = _usage_flags(body, stream, config) if stream or "stream_options" in body else (False, False)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        seed = reject("seed", "type", "Invalid type for 'seed': expected an integer.", "seed", seed)
    bound = (None, None)
    if "max_completion_tokens" in body or "max_tokens" in body:
        limits = {p: _integer(body, p, 1) for p in ("max_completion_tokens", "max_tokens")}
        bound = min(((v, p) for p, v in limits.items() if v is not None), default=(None, None))
    if bound[0] is None:  # the profile's documented default applies (max_tokens_param stays None: nothing was sent)
        bound = (config.profile.get("defaults.max_tokens"), None)
    n = (_integer(body, "n", 1, 128) or 1) if "n" in body else 1
    stop = _stop(body) if "stop" in body else []
    tool_choice = _tool_choice(body, [t["function"]["name"] for t in tools]) if tools or "tool_choice" in body \
        else "none"
    parallel_tool_calls = _boolean(body, "parallel_tool_calls", True) if "parallel_tool_calls" in body else True
    response_format = _response_format(body) if "response_format" in body else None
    unknown_fields = () if body.keys() <= KNOWN_FIELDS else tuple(sorted(body.keys() - KNOWN_FIELDS))
    # Parsed values, not raw ones: {"type": "text"} and an absent response_format must give the same text. The
    # fields are chat_hashes.CONTENT_FIELDS; at temperature 0 (greedy decoding) the seed cannot change the text.
    shaping = {"messages": messages, "tools": tools, "tool_choice": tool_choice,
               "parallel_tool_calls": parallel_tool_calls, "response_format": response_format}
    if temperature != 0:
        shaping["seed"] = seed
    shaping["temperature"] = temperature
    request_hash, content_key = request_hashes(path, body, model.id, shaping)
    return ChatRequest(
        body=body, model=model, messages=messages, stream=stream, n=n, temperature=temperature, seed=seed,
        max_tokens=bound[0], max_tokens_param=bound[1], stop=stop, logprobs=logprobs, top_logprobs=top_logprobs or 0,
        tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls,
        response_format=response_format, include_usage=include_usage, usage_requested=asked,
        request_hash=request_hash, content_key=content_key, unknown_fields=unknown_fields,
    )
