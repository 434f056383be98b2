"""Validation of ``POST {base}/chat/completions`` bodies into a ``ChatRequest``.

Every problem a client can cause answers 400 with the envelope and the offending field in ``param``; a body sent
with a non-JSON Content-Type answers 415 (Unsupported Media Type, the status HTTP defines for it; ERRORS-005 allows
400 or 415, or serving the body as JSON: the ``text-plain-served`` variant), whatever the body holds. Unknown extra
fields are tolerated because SDKs send new fields first.

The faults that refuse a valid request act on the validated ``ChatRequest`` at the ``CHAT_REQUEST`` seam
(faults/validation.py); those that accept an invalid one, or change the error a problem gets, are still branches here
(``_fault``), where the check they skip or the error they shape is made.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from flask import request

from reference_server import faults
from reference_server.context import fault as _fault
from reference_server.context import server_config
from reference_server.mock.tokenizer import count_prompt_tokens
from reference_server.surfaces.models import ResolvedModel, resolve_model
from reference_server.wire.errors import ApiError

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Fields that shape the generated text. Transport fields (stream, n, max_tokens, stop, logprobs) are left out, so a
# streamed answer equals the non-streamed one and a truncated answer is a prefix of the full one.
CONTENT_FIELDS = ("messages", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "temperature")

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
FAULT_STOP_STRING = F("PARAMS-022", "stop given as a single string is ignored.")
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

    @property
    def prompt_tokens(self) -> int:
        """``count_prompt_tokens`` of the messages and tools, counted once (the limiter and the usage both ask)."""
        if self._prompt_tokens is None:
            self._prompt_tokens = count_prompt_tokens(self.messages, self.tools)
        return self._prompt_tokens

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]


def invalid(message: str, param: str | None, status: int = 400, code: str | None = None) -> ApiError:
    """A validation error; the PARAMS-011 / ERRORS-002 faults blank its param / message."""
    if _fault(FAULT_EMPTY_MESSAGE):
        return ApiError(status, "", param=param, code=code)
    if _sampling_param(param) and _fault(FAULT_PARAM_NULL):
        param = None
    return ApiError(status, message, param=param, code=code)


def _sampling_param(param: str | None) -> bool:
    """The parameters PARAMS-011 names (ranges, types, stop); model, messages and response_format errors have
    their own param requirements (ERRORS-007/009, STRUCTURED-OUTPUT-007)."""
    return param not in ("model", "messages") and not (param or "").startswith("response_format")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def canonical_hash(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (sorted keys, no spaces): equal requests, equal hashes."""
    return hashlib.sha256(_CANONICAL(value).encode()).hexdigest()


def read_json_body() -> Any:
    """The parsed body, or raise 415 (not JSON content type) / 400 (not parseable)."""
    if not request.is_json:
        if _fault(FAULT_TEXT_PLAIN):
            raise invalid(f"Unknown request URL: POST {request.path}.", None, status=404)
        if not server_config().variant("text-plain-served"):
            raise invalid("Invalid Content-Type header: expected application/json.", None, status=415)
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if _fault(FAULT_BARE_ERROR):
            raise ApiError(400, "bare") from exc  # chat.py renders this fault as a bare string
        status = 422 if _fault(FAULT_INVALID_JSON_422) else 400
        message = f"We could not parse the JSON body of your request ({exc.__class__.__name__})."
        if _fault(FAULT_TRACEBACK):
            message += f'\nTraceback (most recent call last):\n  File "{__file__}", line 120, in read_json_body'
        raise invalid(message, None, status=status) from exc


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if name == "temperature" and _fault(FAULT_WRONG_TYPE):
            return None
        raise invalid(f"Invalid type for '{name}': expected a number, got {type(value).__name__}.", name)
    lenient = {"temperature": FAULT_TEMPERATURE, "top_p": FAULT_TOP_P, "presence_penalty": FAULT_PENALTY_RANGE,
               "frequency_penalty": FAULT_PENALTY_RANGE}.get(name)
    if not low <= value <= high and not (lenient and _fault(lenient)):
        raise invalid(f"Invalid '{name}': {value} is out of range; expected {low} to {high}.", name)
    return float(value)


def _integer(body: dict, name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"Invalid type for '{name}': expected an integer, got {type(value).__name__}.", name)
    lenient = {"n": FAULT_N, "top_logprobs": FAULT_TOP_LOGPROBS}.get(name)
    if (value < low or (high is not None and value > high)) and not (lenient and _fault(lenient)):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"Invalid '{name}': {value}; it must be {bound}.", name)
    return value


def _boolean(body: dict, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"Invalid type for '{name}': expected a boolean.", name)
    return value


def _check_content(message: dict, index: int) -> None:
    param = f"messages[{index}].content"
    role, content = message["role"], message.get("content")
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if role in ("assistant", "function") and "content" in message:
            return
        if not _fault(FAULT_NO_CONTENT) or role != "user":
            raise invalid(f"Missing required parameter: '{param}'.", param)
        return
    if isinstance(content, str):
        return
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise invalid(f"Invalid content part: '{param}[{j}]' must be an object with a type.", f"{param}[{j}]")
        return
    if _fault(FAULT_CRASH):
        raise RuntimeError("content is neither a string nor a list")  # the fault: a client reaches a 500
    raise invalid(f"Invalid type for '{param}': expected a string or an array of content parts.", param)


def _check_message(message: Any, index: int) -> None:
    if not isinstance(message, dict):
        raise invalid(f"Invalid type for 'messages[{index}]': expected an object.", f"messages[{index}]")
    role = message.get("role")
    if role not in ROLES and not (isinstance(role, str) and _fault(FAULT_UNKNOWN_ROLE)):
        raise invalid(f"Invalid value for 'messages[{index}].role': {str(role)[:32]!r}; expected one of "
                      f"{', '.join(ROLES)}.", f"messages[{index}].role")
    if role == "tool":
        if not isinstance(message.get("tool_call_id"), str):
            raise invalid(f"Missing required parameter: 'messages[{index}].tool_call_id'.",
                          f"messages[{index}].tool_call_id")
    if role in ROLES:
        _check_content(message, index)


def _messages_param() -> str | None:
    """``param`` of a missing/empty messages error (asked only then: a fault trace ties ERRORS-009 to those)."""
    return None if _fault(FAULT_MESSAGES_PARAM) else "messages"


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if messages is None:
        status = 422 if _fault(FAULT_NO_MESSAGES_422) else 400
        raise ApiError(status, "Missing required parameter: 'messages'.", param=_messages_param())
    if not isinstance(messages, list):
        raise invalid("Invalid type for 'messages': expected an array of message objects.", "messages")
    if not messages and not _fault(FAULT_EMPTY_MESSAGES):
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                       param=_messages_param())
    for index, message in enumerate(messages):
        _check_message(message, index)
    return messages


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [] if _fault(FAULT_STOP_STRING) else [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid("Invalid type for 'stop': expected a string or an array of strings.", "stop")
    if len(stop) > 4 and not _fault(FAULT_STOP_MANY):
        raise invalid(f"Invalid 'stop': array too long. Expected at most 4 sequences, got {len(stop)}.", "stop")
    return [s for s in stop if s]


def _tools(body: dict) -> list[dict]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("Invalid type for 'tools': expected an array.", "tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise invalid(f"Invalid 'tools[{i}]': expected {{type: 'function', function: {{name, ...}}}}.",
                          f"tools[{i}]")
        name = function.get("name")
        if not isinstance(name, str) or not SCHEMA_NAME.match(name):
            raise invalid(f"Invalid 'tools[{i}].function.name': must match ^[a-zA-Z0-9_-]{{1,64}}$.",
                          f"tools[{i}].function.name")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise invalid(f"Invalid 'tools[{i}].function.parameters': expected a JSON Schema object.",
                          f"tools[{i}].function.parameters")
    return tools


def _tool_choice(body: dict, names: list[str]) -> Any:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto" if names else "none"
    if choice in ("none", "auto", "required"):
        if choice == "required" and not names:
            raise invalid("tool_choice 'required' needs at least one tool in 'tools'.", "tool_choice")
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(function, dict) or choice.get("type") != "function":
        raise invalid("Invalid 'tool_choice': expected none, auto, required or "
                      "{type: 'function', function: {name}}.", "tool_choice")
    if function.get("name") not in names:
        raise invalid(f"Invalid 'tool_choice': no tool named {str(function.get('name'))[:64]!r} in 'tools'.",
                      "tool_choice")
    return {"name": function["name"]}


def _response_format(body: dict) -> dict | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise invalid("Invalid type for 'response_format': expected an object.", "response_format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return fmt
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid("Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema")
        name = spec.get("name")
        if not (isinstance(name, str) and SCHEMA_NAME.match(name)) and not _fault(FAULT_SCHEMA_NAME):
            raise invalid("Invalid 'response_format.json_schema.name': must match ^[a-zA-Z0-9_-]{1,64}$.",
                          "response_format.json_schema.name")
        if "schema" in spec and not isinstance(spec["schema"], dict):
            raise invalid("Invalid 'response_format.json_schema.schema': expected an object.",
                          "response_format.json_schema.schema")
        return fmt
    if _fault(FAULT_FORMAT_TYPE):
        return None
    raise invalid(f"Invalid 'response_format.type': {str(kind)[:32]!r}; expected text, json_object or "
                  "json_schema.", "response_format.type" if isinstance(fmt, dict) else "response_format")


def _model(body: dict) -> ResolvedModel:
    name = body.get("model")
    if name is None:
        default = server_config().profile.get("models.default_chat")
        if _fault(FAULT_NO_MODEL):
            return resolve_model(default)
        param = None if _fault(FAULT_NO_MODEL_PARAM) else "model"
        raise ApiError(400, "you must provide a model parameter", param=param)
    if not isinstance(name, str) or not name:
        raise invalid("Invalid type for 'model': expected a non-empty string.", "model")
    return resolve_model(name)


def _usage_flags(body: dict, stream: bool) -> tuple[bool, bool]:
    """(include_usage, asked): asked is what the client said; include adds the profile's auto-injection."""
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid("Invalid type for 'stream_options': expected an object.", "stream_options")
    asked = _boolean(options or {}, "include_usage", False)
    auto = bool(server_config().profile.get("stream.auto_include_usage"))
    return stream and (asked or auto), asked


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a parsed body into a ``ChatRequest`` or raise the ``ApiError`` the first problem deserves."""
    if isinstance(body, list) and _fault(FAULT_ARRAY_BODY):
        body = {"model": server_config().profile.get("models.default_chat"), "messages": body}
    if not isinstance(body, dict):
        raise invalid("Invalid request body: expected a JSON object.", None)
    model = _model(body)
    messages = _messages(body)
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1), ("presence_penalty", -2, 2),
                            ("frequency_penalty", -2, 2)):
        _number(body, name, low, high)
    tools = _tools(body)
    stream = _boolean(body, "stream", False)
    logprobs = _boolean(body, "logprobs", False)
    top_logprobs = _integer(body, "top_logprobs", 0, 20)
    if top_logprobs is not None and not logprobs:
        raise invalid("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs")
    include_usage, asked = _usage_flags(body, stream)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid("Invalid type for 'seed': expected an integer.", "seed")
    limits = {p: _integer(body, p, 1) for p in ("max_completion_tokens", "max_tokens")}
    bound = min(((v, p) for p, v in limits.items() if v is not None), default=(None, None))
    if bound[0] is None:  # the profile's documented default applies (max_tokens_param stays None: nothing was sent)
        bound = (server_config().profile.get("defaults.max_tokens"), None)
    req = ChatRequest(
        body=body, model=model, messages=messages, stream=stream, n=_integer(body, "n", 1, 128) or 1,
        temperature=_number(body, "temperature", 0, 2), seed=seed, max_tokens=bound[0], max_tokens_param=bound[1],
        stop=_stop(body), logprobs=logprobs, top_logprobs=top_logprobs or 0, tools=tools,
        tool_choice=_tool_choice(body, [t["function"]["name"] for t in tools]),
        parallel_tool_calls=_boolean(body, "parallel_tool_calls", True), response_format=_response_format(body),
        include_usage=include_usage, usage_requested=asked, request_hash=canonical_hash([request.path, body]),
        unknown_fields=tuple(sorted(body.keys() - KNOWN_FIELDS)),
    )
    # Parsed values, not raw ones: {"type": "text"} and an absent response_format must give the same text.
    shaping = {name: getattr(req, name) for name in CONTENT_FIELDS}
    if req.temperature == 0:
        shaping.pop("seed")  # greedy decoding: the seed cannot change the text
    req.content_key = canonical_hash([model.id, shaping])
    return req
