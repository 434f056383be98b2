"""Ollama's native API at the profile's ``ollama.base_path`` (``/api``), plus ``GET /`` "Ollama is running".

Streams are NDJSON (``application/x-ndjson``) by default; the final object has ``done: true``, ``done_reason`` and
integer nanosecond durations derived from token counts (1 ms per token), so the same request gives the same bytes.
Errors are ``{"error": "<string>"}``. Text comes from a small deterministic generator (a hash of the request picks
the words), because the chat surface's providers are OpenAI-shaped; tool calls and ``format`` reuse
``schema_values`` so arguments and JSON answers are valid against the request's schemas.

Over 400 lines on purpose: Ollama's native API is one surface whose routes (chat, generate, embed, tags, show, ps,
version) share model resolution, option handling, NDJSON streaming and the native error shape; split by route,
each piece would import most of the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from flask import Blueprint, Response, jsonify, request

from reference_server.context import request_context, server_config
from reference_server.faults import seams
from reference_server.mock import schema_values
from reference_server.mock.tokenizer import count_prompt_tokens, count_tokens, tokenize
from reference_server.mock.vectors import shorten, unit_vector
from reference_server.wire.errors import ApiError

bp = Blueprint("ollama", __name__)
root_bp = Blueprint("ollama_root", __name__)

NS_PER_TOKEN = 1_000_000  # 1 ms per token, in nanoseconds
LOAD_NS = 1_000_000
DEFAULT_VERSION = "0.5.1"
DEFAULT_EMBED_DIMENSIONS = 768
NDJSON = "application/x-ndjson"
ROLES = ("system", "user", "assistant", "tool")
WORDS = schema_values.WORDS



def _profile():
    return server_config().profile


# ---------------------------------------------------------------- errors, auth, endpoints


@bp.errorhandler(ApiError)
def _ollama_error(err: ApiError):
    """Every native error, whoever raised it (limits, auth, X-Mock-*), as ``{"error": "<string>"}``."""
    resp = jsonify(seams.OLLAMA_BODY(server_config(), {"error": err.message}, "error"))
    resp.status_code = err.status
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


@bp.before_request
def _checks() -> None:
    refusal = seams.OLLAMA_ACCESS(server_config(), None, request.headers.get("Authorization"))
    if refusal is not None:
        raise refusal
    endpoint = (request.endpoint or "").rpartition(".")[2]
    documented = _profile().get("ollama.endpoints")
    if documented is not None and endpoint not in documented:
        raise ApiError(404, "404 page not found")


def json_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "invalid JSON in request body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


# ---------------------------------------------------------------- models


def served_models() -> list[dict[str, Any]]:
    """The profile's ``ollama.models``, or its chat models named ``id:latest`` when it lists none."""
    entries = _profile().get("ollama.models")
    if not entries:
        entries = [{"name": m["id"] if ":" in m["id"] else f"{m['id']}:latest", "routes_to": m["id"]}
                   for m in _profile().get("models.chat") or []]
    return list(entries)


def full_name(name: str) -> str:
    """Ollama names are ``model:tag``; the tag defaults to ``latest``."""
    return name if ":" in name else f"{name}:latest"


def is_name(name: Any) -> bool:
    """A model name was given (a non-empty string)."""
    return isinstance(name, str) and bool(name)


def find(models: list[dict[str, Any]], name: str) -> int | None:
    """The position of the served model ``name`` names (``x`` and ``x:latest`` are the same), or None."""
    wanted = full_name(name).lower()
    return next((i for i, entry in enumerate(models) if entry["name"].lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class NativeModel:
    """Which served model a native request names (the ``OLLAMA_MODEL`` seam's decision): ``position`` in ``models``
    (None: refused, 400 without a name, else ``status``)."""

    name: Any
    models: list[dict[str, Any]]
    position: int | None
    status: int = 404

    def named(self, name: Any) -> NativeModel:
        """The decision for another requested name."""
        return replace(self, name=name, position=find(self.models, name) if is_name(name) else None)

    def refusal(self) -> ApiError:
        if not is_name(self.name):
            return ApiError(400, "model is required")
        return ApiError(self.status, f"model '{self.name}' not found")


def resolve(name: Any) -> dict[str, Any]:
    """The served model for ``name`` (``x`` and ``x:latest`` are the same), or 400/404 ``{"error"}``."""
    config = server_config()
    models = served_models()
    choice = seams.OLLAMA_MODEL(config, NativeModel(None, models, None).named(name), config.profile)
    if choice.position is None:
        raise choice.refusal()
    return models[choice.position]


def admit(entry: dict[str, Any], tokens: int) -> None:
    """Rate limits, allowlists and wallets apply when the surface is authenticated (limits no-ops otherwise)."""
    ctx = request_context()
    ctx.server.limits.admit(ctx, entry.get("routes_to") or entry["name"], tokens=tokens)


def timestamp(seconds: float | None = None) -> str:
    """RFC 3339 UTC from the config clock (``2023-11-14T22:13:20Z``)."""
    config = server_config()
    seconds = config.clock if seconds is None else seconds
    text = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return seams.OLLAMA_TIME(config, text, seconds)


def tag_item(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``/api/tags`` entry; size and digest derive from the name, so listings are byte-stable."""
    digest = hashlib.sha256(entry["name"].encode()).hexdigest()
    family = entry.get("family") or entry["name"].split(":")[0].split("-")[0]
    details = {"parent_model": "", "format": "gguf", "family": family, "families": [family],
               "parameter_size": entry.get("parameter_size", "unknown"),
               "quantization_level": entry.get("quantization_level", "unknown")}
    item = {"name": entry["name"], "model": entry["name"], "modified_at": timestamp(),
            "size": int(digest[:8], 16) % 5_000_000_000 + 100_000_000, "digest": digest, "details": details}
    return seams.OLLAMA_TAG(server_config(), item)


# ---------------------------------------------------------------- deterministic generation


def request_rng(*parts: Any) -> random.Random:
    """A PRNG seeded by a hash of the request's content, so equal requests give equal answers."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def answer_text(name: str, fmt: Any, rng: random.Random) -> str:
    """Plain words, or a JSON text for ``format: "json"`` / a JSON-schema ``format``."""
    words = [rng.choice(WORDS) for _ in range(8)]
    if fmt == "json":
        return json.dumps({"answer": " ".join(words)})
    if isinstance(fmt, dict):
        return json.dumps(schema_values.generate(fmt, rng))
    return f"Reference answer from {name}: {' '.join(words)}."


def tool_calls_for(tools: list[Any], rng: random.Random) -> list[dict[str, Any]]:
    """One call of the first declared function, arguments valid against its parameters (an object, Ollama-style)."""
    function = tools[0].get("function") if isinstance(tools[0], dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise ApiError(400, "invalid tool definition: function.name is required")
    arguments = schema_values.generate(function.get("parameters") or {"type": "object"}, rng)
    calls = [{"function": {"index": 0, "name": function["name"], "arguments": arguments}}]
    return seams.OLLAMA_TOOL_CALLS(server_config(), calls)


def num_predict(body: dict[str, Any]) -> int | None:
    options = body.get("options") or {}
    value = options.get("num_predict") if isinstance(options, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def reply_tokens(text: str, limit: int | None) -> tuple[list[str], str]:
    """The answer split into tokens (one per streamed object), cut at ``num_predict`` with done_reason length."""
    tokens = tokenize(text)
    if limit is not None and len(tokens) > limit:
        return tokens[:limit], "length"
    return tokens, "stop"


def metrics(prompt_tokens: int, eval_count: int) -> dict[str, Any]:
    """Ollama's final-object metrics: integer nanoseconds, 1 ms per token, plus a fixed 1 ms load."""
    prompt_ns, eval_ns = prompt_tokens * NS_PER_TOKEN, eval_count * NS_PER_TOKEN
    values = {"total_duration": LOAD_NS + prompt_ns + eval_ns, "load_duration": LOAD_NS,
              "prompt_eval_count": prompt_tokens, "prompt_eval_duration": prompt_ns,
              "eval_count": eval_count, "eval_duration": eval_ns}
    return seams.OLLAMA_METRICS(server_config(), values)


# ---------------------------------------------------------------- NDJSON


def ndjson_response(lines: list[dict[str, Any]]) -> Response:
    """Stream one JSON object per line, honouring the X-Mock-* stream controls of the request; each line passes the
    ``OLLAMA_LINE`` seam as it is sent."""
    mock = request_context().mock
    config = server_config()
    error_line = {"error": "an error was encountered while running the model"}

    def produce() -> Iterator[bytes]:
        ttft = getattr(mock, "ttft_ms", 0) or 0
        tps = getattr(mock, "tokens_per_second", None)
        if ttft:
            time.sleep(ttft / 1000)
        for i, obj in enumerate(lines):
            if getattr(mock, "cut_after", None) is not None and i >= mock.cut_after:
                return
            if getattr(mock, "error_after", None) is not None and i >= mock.error_after:
                yield seams.OLLAMA_LINE(config, (json.dumps(error_line) + "\n").encode(), error_line, False)
                return
            if getattr(mock, "stall_after", None) is not None and i == mock.stall_after:
                time.sleep(mock.stall_seconds)
            if i and tps:
                time.sleep(1 / tps)
            line = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
            yield seams.OLLAMA_LINE(config, line, obj, i == len(lines) - 1)

    resp = Response(produce(), status=200, content_type=NDJSON)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


def respond(streamed: list[dict[str, Any]], single: dict[str, Any], stream: bool, route: str) -> Response:
    """NDJSON by default; ``stream: false`` gives the single object as application/json. ``route`` is ``chat`` or
    ``generate``; whether to stream passes the ``OLLAMA_STREAMS`` seam, the response the ``OLLAMA_RESPONSE`` seam."""
    config = server_config()
    stream = seams.OLLAMA_STREAMS(config, stream, route)
    resp = ndjson_response(streamed) if stream else jsonify(single)
    return seams.OLLAMA_RESPONSE(config, resp, route, stream)


def stream_flag(body: dict[str, Any]) -> bool:
    value = body.get("stream", True)
    if not isinstance(value, bool):
        raise ApiError(400, "stream must be a boolean")
    return value


def check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise ApiError(400, "messages must be an array")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(400, f"invalid message: role must be one of {', '.join(ROLES)}")
        if not isinstance(m.get("content", ""), str):
            raise ApiError(400, "invalid message: content must be a string")
    return messages


# ---------------------------------------------------------------- routes


@root_bp.route("/", methods=["GET", "HEAD"])
def root():
    """Ollama's liveness answer, which clients probe before anything else."""
    resp = Response("Ollama is running", content_type="text/plain; charset=utf-8")
    return seams.OLLAMA_ROOT(server_config(), resp, request.method)


@bp.route("/version", methods=["GET", "HEAD"])
def version():
    value = _profile().get("ollama.version") or DEFAULT_VERSION
    return jsonify(seams.OLLAMA_BODY(server_config(), {"version": value}, "version"))


@bp.route("/tags", methods=["GET", "HEAD"])
def tags():
    entries = seams.OLLAMA_TAGS(server_config(), served_models())
    return jsonify({"models": [tag_item(e) for e in entries]})


@bp.get("/ps")
def ps():
    expires = timestamp(server_config().clock + 300)
    return jsonify({"models": [{**tag_item(e), "expires_at": expires, "size_vram": tag_item(e)["size"]}
                               for e in served_models()]})


@bp.post("/show")
def show():
    entry = resolve(json_body().get("model"))
    item = tag_item(entry)
    capabilities = ["embedding"] if entry.get("embedding_dimensions") else ["completion", "tools"]
    return jsonify({"modelfile": f"FROM {entry['name']}\n", "parameters": "", "template": "{{ .Prompt }}",
                    "details": item["details"], "model_info": {"general.architecture": item["details"]["family"]},
                    "capabilities": capabilities, "modified_at": item["modified_at"]})


def chat_model(body: dict[str, Any]) -> dict[str, Any]:
    entry = resolve(body.get("model"))
    if entry.get("embedding_dimensions"):
        raise ApiError(400, f'"{body.get("model")}" does not support generate')
    return entry


@bp.post("/chat")
def chat():
    """Chat with a model: NDJSON stream by default, tool calls with object arguments, ``format`` honoured."""
    body = json_body()
    entry = chat_model(body)
    stream = stream_flag(body)
    messages = check_messages(body.get("messages", []))
    prompt_tokens = count_prompt_tokens(messages)
    admit(entry, prompt_tokens)
    name, now = body.get("model") or entry["name"], timestamp()
    head = {"model": name, "created_at": now}
    if not messages:  # Ollama loads the model and answers at once
        done = {**head, "message": {"role": "assistant", "content": ""}, "done_reason": "load", "done": True}
        return respond([done], done, stream, "chat")
    rng = request_rng("chat", entry["name"], messages, body.get("tools"), body.get("format"), body.get("options"))
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    calls = tool_calls_for(tools, rng) if tools and messages[-1].get("role") != "tool" else []
    text = "" if calls else answer_text(entry["name"], body.get("format"), rng)
    tokens, reason = reply_tokens(text, num_predict(body))
    eval_count = len(tokens) + sum(count_tokens(json.dumps(c["function"])) for c in calls)
    final = {**head, "message": {"role": "assistant", "content": ""}, "done_reason": reason, "done": True,
             **metrics(prompt_tokens, eval_count)}
    chunks = [{**head, "message": {"role": "assistant", "content": t}, "done": False} for t in tokens]
    if calls:
        chunks = [{**head, "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False}]
    single = {**final, "message": {"role": "assistant", "content": "".join(tokens),
                                   **({"tool_calls": calls} if calls else {})}}
    return respond(seams.OLLAMA_STREAM(server_config(), [*chunks, final], "chat"), single, stream, "chat")


@bp.post("/generate")
def generate():
    """Complete a prompt: like chat, with ``response`` fragments in place of ``message``."""
    body = json_body()
    entry = chat_model(body)
    stream = stream_flag(body)
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        raise ApiError(400, "prompt must be a string")
    prompt_tokens = count_tokens(prompt) + count_tokens(body.get("system") or "")
    admit(entry, prompt_tokens)
    head = {"model": body.get("model") or entry["name"], "created_at": timestamp()}
    if not prompt:
        done = {**head, "response": "", "done_reason": "load", "done": True}
        return respond([done], done, stream, "generate")
    rng = request_rng("generate", entry["name"], prompt, body.get("system"), body.get("format"), body.get("options"))
    tokens, reason = reply_tokens(answer_text(entry["name"], body.get("format"), rng), num_predict(body))
    context = [int(hashlib.sha256(t.encode()).hexdigest()[:4], 16) for t in tokenize(prompt) + tokens]
    final = {**head, "response": "", "done_reason": reason, "done": True, "context": context,
             **metrics(prompt_tokens, len(tokens))}
    chunks = [{**head, "response": t, "done": False} for t in tokens]
    streamed = seams.OLLAMA_STREAM(server_config(), [*chunks, final], "generate")
    return respond(streamed, {**final, "response": "".join(tokens)}, stream, "generate")


def embed_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ApiError(400, "input must be a string or a non-empty array of strings")


def embed_vectors(entry: dict[str, Any], texts: list[str], dimensions: Any) -> list[list[float]]:
    native = int(entry.get("embedding_dimensions") or DEFAULT_EMBED_DIMENSIONS)
    dims = dimensions if isinstance(dimensions, int) and 0 < dimensions <= native else native
    vectors = [unit_vector(entry["name"], t, native) for t in texts]
    return [shorten(v, dims) if dims != native else v for v in vectors]


@bp.post("/embed")
def embed():
    """``{model, input}`` -> ``{model, embeddings: [[...]], total_duration, load_duration, prompt_eval_count}``."""
    body = json_body()
    entry = resolve(body.get("model"))
    texts = embed_inputs(body.get("input"))
    tokens = sum(count_tokens(t) for t in texts)
    admit(entry, tokens)
    vectors = embed_vectors(entry, texts, body.get("dimensions"))
    timing = metrics(tokens, 0)
    answer = {"model": body["model"], "embeddings": vectors, "total_duration": timing["total_duration"],
              "load_duration": timing["load_duration"], "prompt_eval_count": tokens}
    return jsonify(seams.OLLAMA_BODY(server_config(), answer, "embed"))


@bp.post("/embeddings", endpoint="embeddings")
def legacy_embeddings():
    """The legacy ``{model, prompt}`` -> ``{"embedding": [...]}`` (superseded by /api/embed)."""
    body = json_body()
    entry = resolve(body.get("model"))
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(400, "prompt must be a string")
    admit(entry, count_tokens(prompt))
    return jsonify({"embedding": embed_vectors(entry, [prompt], None)[0] if prompt else []})
