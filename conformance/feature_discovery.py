"""Discovery mode (``--gw-discover``, ``llm-conformance discover``): which optional features does a gateway offer?

Not a conformance verdict: each optional feature of spec/features.yaml that one request can show is probed once,
the answer is kept as evidence, and a starting profile (``discovered-profile.yaml`` in the report dir, based on the
bundled ``openai-compatible`` and valid against spec/schemas/profile.schema.json) claims what was seen. The run
exits 0 whatever the gateway supports; only a target the preflight rejects (unreachable, doubled base path, key
refused, unknown model) stops it, with the preflight's message and exit code 6.

Cost: 17 requests: the preflight's two, one ``GET /models`` for the model list, then one per probe (``PROBES``,
13), ``max_tokens`` 8 (64 where a tool call or JSON must fit); against a profile with ``models.discover`` one more
``GET /models`` reads the models (``RunState.profile``). Without ``--target-url`` the embedded reference server of ``--gw-profile`` is probed (the
reference server serves most chat features under every profile, so there it shows a superset of the claims).

Features one request cannot show are left to the user and listed as not probed (seed needs two answers,
model aliases need documented names, billing and allowlists need special keys, ...).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance.options import ConformanceOptions, RunState
from conformance.preflight import PREFLIGHT_FAILED, Preflight, PreflightError, model_ids
from conformance.redact import Redactor
from gateway_spec import load_features, load_profile, profile_errors

BASE_PROFILE = "openai-compatible"
OUTPUT = "discovered-profile.yaml"
MAX_TOKENS = 8
USER = {"role": "user", "content": "Say OK."}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
SCHEMA = {"name": "answer", "strict": True, "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}},
                                                       "required": ["ok"], "additionalProperties": False}}


@dataclass(frozen=True)
class Finding:
    feature: str
    supported: bool
    evidence: str


@dataclass
class Reply:
    status: int | None
    headers: httpx.Headers
    text: str
    error: str | None = None

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def describe(self) -> str:
        if self.status is None:
            return f"failed: {self.error}"
        return f"HTTP {self.status} {self.headers.get('content-type', '').split(';')[0]}".rstrip()


class Prober:
    """Sends the probes of one target; every request goes through ``send``."""

    def __init__(self, target: str, base_path: str, api_key: str | None, headers, timeout: float,
                 model: str, embedding_model: str | None, ollama_base: str) -> None:
        self.target, self.base = target.rstrip("/"), base_path
        self.model, self.embedding_model, self.ollama_base = model, embedding_model, ollama_base
        self.headers = dict(headers)
        if api_key:
            self.headers.setdefault("Authorization", f"Bearer {api_key}")
        self.redactor = Redactor([api_key])
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)))
        self.sent = 0

    def send(self, method: str, path: str, body: Any = None, headers: dict | None = None, *,
             under_base: bool = True) -> Reply:
        url = self.target + (self.base if under_base else "") + path
        sent = {**self.headers, **(headers or {})}
        self.sent += 1
        try:
            response = self.http.request(method, url, headers=sent, json=body)
        except httpx.HTTPError as exc:
            return Reply(None, httpx.Headers(), "", self.redactor.text(f"{type(exc).__name__}: {exc}"))
        return Reply(response.status_code, response.headers, response.text)

    def chat(self, **fields: Any) -> Reply:
        return self.send("POST", "/chat/completions", {"model": self.model, "max_tokens": MAX_TOKENS,
                                                       "messages": [USER], **fields})


def _message(reply: Reply) -> dict:
    body = reply.json
    choices = body.get("choices") if isinstance(body, dict) else None
    if reply.status == 200 and isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        return message if isinstance(message, dict) else {}
    return {}


def _sse_events(reply: Reply) -> list[Any]:
    """The JSON events of an SSE body, ``"[DONE]"`` kept as the string."""
    events = []
    for line in reply.text.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            try:
                events.append(data if data == "[DONE]" else json.loads(data))
            except ValueError:
                continue
    return events


# -- the probes: each sends one request and judges the features it shows ---------------------------------------
def probe_basic(p: Prober) -> list[Finding]:
    reply = p.chat()
    message = _message(reply)
    seen = reply.describe()
    rate = "x-ratelimit-limit-requests" in reply.headers
    return [
        Finding("request-id", "x-request-id" in reply.headers,
                f"basic completion {seen}: x-request-id {'present' if 'x-request-id' in reply.headers else 'absent'}"),
        Finding("ratelimit-openai-headers", rate,
                f"basic completion: x-ratelimit-limit-requests {'present' if rate else 'absent'}"),
        Finding("ratelimit-x-headers", "x-ratelimit-limit" in reply.headers,
                f"basic completion: X-RateLimit-Limit {'present' if 'x-ratelimit-limit' in reply.headers else 'absent'}"),
        Finding("refusal", "refusal" in message,
                f"basic completion: message.refusal {'present' if 'refusal' in message else 'absent'}"),
    ]


def probe_models_retrieve(p: Prober) -> list[Finding]:
    reply = p.send("GET", f"/models/{p.model}")
    body = reply.json
    ok = reply.status == 200 and isinstance(body, dict) and body.get("id") == p.model
    return [Finding("models-retrieve", ok, f"GET /models/{p.model}: {reply.describe()}"
                    + (", the model object" if ok else ""))]


def probe_streaming(p: Prober) -> list[Finding]:
    reply = p.chat(stream=True)
    events = _sse_events(reply)
    deltas = sum(1 for e in events if isinstance(e, dict) and e.get("choices"))
    ok = reply.status == 200 and "text/event-stream" in reply.headers.get("content-type", "") and deltas > 0 \
        and events[-1:] == ["[DONE]"]
    return [Finding("streaming", ok, f"stream true: {reply.describe()}, {deltas} chunks with choices, "
                    f"{'ends' if events[-1:] == ['[DONE]'] else 'does not end'} in [DONE]")]


def probe_stream_usage(p: Prober) -> list[Finding]:
    reply = p.chat(stream=True, stream_options={"include_usage": True})
    usage = [e for e in _sse_events(reply) if isinstance(e, dict) and e.get("choices") == [] and e.get("usage")]
    return [Finding("stream-usage", reply.status == 200 and len(usage) == 1,
                    f"stream_options.include_usage: {reply.describe()}, {len(usage)} usage chunk(s) with choices []")]


def probe_tools(p: Prober) -> list[Finding]:
    reply = p.chat(messages=[{"role": "user", "content": "Call get_weather for the city Paris."}], tools=[TOOL], max_tokens=64)
    calls = _message(reply).get("tool_calls") or []
    call = calls[0].get("function", {}) if calls and isinstance(calls[0], dict) else {}
    try:
        args_ok = isinstance(json.loads(call.get("arguments", "")), dict)
    except (TypeError, ValueError):
        args_ok = False
    ok = call.get("name") == "get_weather" and args_ok
    return [Finding("tools", ok, f"tools [get_weather]: {reply.describe()}, "
                    + ("a get_weather call with JSON arguments" if ok else f"{len(calls)} tool call(s)"))]


def _json_content(reply: Reply) -> Any:
    try:
        return json.loads(_message(reply).get("content") or "")
    except (TypeError, ValueError):
        return None


def probe_json_mode(p: Prober) -> list[Finding]:
    reply = p.chat(messages=[{"role": "user", "content": "Reply with a JSON object."}],
                   response_format={"type": "json_object"}, max_tokens=64)
    ok = isinstance(_json_content(reply), dict)
    return [Finding("json-mode", ok, f"response_format json_object: {reply.describe()}, content "
                    + ("is a JSON object" if ok else "is not a JSON object"))]


def probe_json_schema(p: Prober) -> list[Finding]:
    reply = p.chat(messages=[{"role": "user", "content": "Reply in JSON."}],
                   response_format={"type": "json_schema", "json_schema": SCHEMA}, max_tokens=64)
    content = _json_content(reply)
    ok = isinstance(content, dict) and set(content) == {"ok"} and isinstance(content["ok"], bool)
    return [Finding("json-schema", ok, f"response_format json_schema: {reply.describe()}, content "
                    + ("matches the schema" if ok else "does not match the schema"))]


def probe_n(p: Prober) -> list[Finding]:
    reply = p.chat(n=2)
    body = reply.json
    count = len(body.get("choices") or []) if reply.status == 200 and isinstance(body, dict) else 0
    return [Finding("n-choices", count == 2, f"n 2: {reply.describe()}, {count} choice(s)")]


def probe_logprobs(p: Prober) -> list[Finding]:
    reply = p.chat(logprobs=True, top_logprobs=1)
    body = reply.json
    choice = (body.get("choices") or [{}])[0] if reply.status == 200 and isinstance(body, dict) else {}
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
    ok = isinstance(content, list) and bool(content)
    return [Finding("logprobs", ok, f"logprobs true: {reply.describe()}, "
                    + (f"{len(content)} token logprobs" if ok else "no logprobs.content"))]


def probe_prompt_cache(p: Prober) -> list[Finding]:
    # A prompt cache is written by the first request of a prefix and read by the next (OpenAI's, Anthropic's, and
    # the reference server's): send the same request twice and judge the second.
    def ask() -> Reply:
        return p.chat(messages=[{"role": "system", "content": "You answer briefly. " * 8}, USER],
                      prompt_cache_key="conformance-discover")

    first = ask()
    reply = ask() if first.status == 200 else first
    usage = (reply.json or {}).get("usage") if isinstance(reply.json, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or usage.get("cache_read_input_tokens")
    ok = isinstance(cached, int) and cached > 0
    return [Finding("prompt-cache-usage", ok, f"prompt_cache_key and a system prefix, sent twice: {reply.describe()}, cached "
                    f"tokens {cached!r}" + ("" if ok else " (a real cache may need a repeated, longer prompt)"))]


def probe_embeddings(p: Prober) -> list[Finding]:
    if not p.embedding_model:
        return [Finding("embeddings", False, "no embedding model listed or configured (--gw-embedding-model)")]
    reply = p.send("POST", "/embeddings", {"model": p.embedding_model, "input": ["OK", "OK"]})
    body = reply.json
    data = body.get("data") if reply.status == 200 and isinstance(body, dict) else None
    ok = isinstance(data, list) and len(data) == 2 and all(isinstance(d.get("embedding"), list) for d in data)
    return [Finding("embeddings", ok, f"POST /embeddings {p.embedding_model} with 2 inputs: {reply.describe()}"
                    + (", 2 float vectors" if ok else ""))]


def probe_cors(p: Prober) -> list[Finding]:
    reply = p.send("OPTIONS", "/chat/completions", headers={
        "Origin": "https://conformance.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    allowed = reply.headers.get("access-control-allow-origin")
    ok = reply.status is not None and reply.status < 300 and allowed in ("*", "https://conformance.example")
    return [Finding("cors", ok, f"OPTIONS preflight: {reply.describe()}, Access-Control-Allow-Origin {allowed!r}")]


def probe_ollama(p: Prober) -> list[Finding]:
    reply = p.send("GET", f"{p.ollama_base}/tags", under_base=False)
    body = reply.json
    ok = reply.status == 200 and isinstance(body, dict) and isinstance(body.get("models"), list)
    return [Finding("ollama", ok, f"GET {p.ollama_base}/tags: {reply.describe()}"
                    + (f", {len(body['models'])} model(s)" if ok else ""))]


PROBES: tuple[Callable[[Prober], list[Finding]], ...] = (
    probe_basic, probe_models_retrieve, probe_streaming, probe_stream_usage, probe_tools, probe_json_mode,
    probe_json_schema, probe_n, probe_logprobs, probe_prompt_cache, probe_embeddings, probe_cors, probe_ollama)
PROBED = ("request-id", "ratelimit-openai-headers", "ratelimit-x-headers", "refusal", "models-retrieve", "streaming",
          "stream-usage", "tools", "json-mode", "json-schema", "n-choices", "logprobs", "prompt-cache-usage",
          "embeddings", "cors", "ollama")


# -- the run ---------------------------------------------------------------------------------------------------
def discover(options: ConformanceOptions, config: pytest.Config, out=None) -> int:
    """Probe, print the findings and write the starting profile; the exit code (0, or 6 from the preflight)."""
    out = out or sys.stdout
    if not _profile_given(config):
        options = replace(options, profile=BASE_PROFILE)
    state = RunState(options, config)
    server = None
    target = options.target_url
    if not target:
        from conformance.embedded import EmbeddedServer

        server = EmbeddedServer(options.profile)
        target = server.start()
    try:
        profile = state.profile
        api_key = state.api_key
        try:
            Preflight(target, base_path=profile.base_path, api_key=api_key, headers=options.headers,
                      model=options.model or profile.get("models.default_chat"),
                      timeout=options.request_timeout).run()
        except PreflightError as exc:
            sys.stderr.write(f"\nconformance discover: {exc}.\n")
            return PREFLIGHT_FAILED
        prober = Prober(target, profile.base_path, api_key, options.headers, options.request_timeout,
                        model=options.model or profile.get("models.default_chat"), embedding_model=None,
                        ollama_base=(profile.get("ollama.base_path") or "/api"))
        listed = model_ids(prober.send("GET", "/models").json) or []
        prober.embedding_model = options.embedding_model or next(
            (m for m in listed if "embed" in m.lower()), None) or profile.get("models.default_embedding")
        findings = [f for probe in PROBES for f in probe(prober)]
        path = write_profile(findings, profile, listed, prober.model, target, state.report_dir)
        discovered_models = bool(options.target_url and profile.get("models.discover"))
        print_findings(findings, target, prober.sent + 2 + discovered_models, path, out)
        return 0
    finally:
        if server is not None:
            server.stop()


def _profile_given(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "gw_profile", None) or os.environ.get("CONFORMANCE_PROFILE")
                or config.getini("conformance_profile"))


def starting_profile(findings: list[Finding], probed_profile, listed: list[str], model: str, target: str) -> dict:
    """``openai-compatible`` claiming what the probes saw, with the target's base path and models."""
    from conformance.discovery import with_discovered_models

    base = load_profile(BASE_PROFILE)
    raw = copy.deepcopy(base.raw)
    seen = {f.feature for f in findings if f.supported}
    raw.update(name="discovered", title=f"Discovered from {target} (edit before use)",
               source="llm-conformance discover: one probe per feature, see the comments above",
               base_path=probed_profile.base_path, features=[f for f in load_features() if f in seen], cors="cors" in seen)
    raw["rate_limits"] = {**raw["rate_limits"], "headers": "openai" if "ratelimit-openai-headers" in seen
                          else "x-ratelimit" if "ratelimit-x-headers" in seen else "none"}
    if "ollama" in seen:
        raw["ollama"] = copy.deepcopy(probed_profile.get("ollama") or load_profile("ollama").raw["ollama"])
    listing = [{"id": m, "owned_by": "unknown"} for m in listed]
    from gateway_spec import Profile

    raw["models"] = with_discovered_models(Profile(name="discovered", raw=raw, path=base.path), listing, model) \
        .raw["models"]
    raw["models"]["chat"] = [m for m in raw["models"]["chat"] if "embed" not in m["id"].lower()] or \
        raw["models"]["chat"]
    return raw


def write_profile(findings: list[Finding], probed_profile, listed: list[str], model: str, target: str,
                  report_dir: Path) -> Path:
    raw = starting_profile(findings, probed_profile, listed, model, target)
    problems = profile_errors(raw)
    if problems:  # a bug of this module, never the gateway's
        raise RuntimeError("the discovered profile does not match the schema: " + "; ".join(problems))
    head = [f"# Written by llm-conformance discover against {target}: a starting point, not a verdict.",
            "# Each optional feature below was probed once; the evidence:"]
    head += [f"#   {'yes' if f.supported else 'no ':<3} {f.feature}: {f.evidence}" for f in findings]
    head.append(f"# Not probed (one request cannot show them): {', '.join(not_probed())}.")
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / OUTPUT
    path.write_text("\n".join(head) + "\n" + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def not_probed() -> list[str]:
    return [f for f in load_features() if f not in PROBED]


def print_findings(findings: list[Finding], target: str, requests: int, path: Path, out) -> None:
    out.write(f"conformance discover: {target}, {requests} requests (not a conformance verdict)\n")
    for f in findings:
        out.write(f"  {'yes' if f.supported else 'no ':<3}  {f.feature:<26} {f.evidence}\n")
    out.write(f"  not probed: {', '.join(not_probed())}\n")
    out.write(f"starting profile: {path} (check it with --gw-profile {path})\n")
