"""Schemathesis fuzz mode: the ``--gw-fuzz`` options, a fuzzing copy of the contract, case generation, and findings.

A plugin module the entry point (``conformance/entry.py``) registers in a conformance run: it checks the options and
adds a header line; the entry point declares its options (``add_options``) in every run. The cases live in
``conformance/suite/test_fuzz.py`` and use the engine below. The engine is shared with the project's own proof that
the reference server survives fuzzing (``tests/proof/test_fuzz_reference_server.py``).

How a case runs: schemathesis generates requests for one operation of ``spec/openapi.yaml`` (positive: valid per
a *closed, bounded* copy of the request schemas; negative: breaking that copy), all up front, with a fixed seed
and no shrinking, so a run is reproducible and its cost bounded. Each request is fitted to the profile (real model
names for positive cases, small ``max_tokens``/``n`` so streams stay short) and sent through ``GatewayClient``
(auth, timeouts, size caps, transcripts, the request budget). schemathesis' own checks judge each answer and each
failure becomes a ``Finding`` graded under the requirement ``requirement_for`` names.

Over 400 lines on purpose: schemathesis fuzz mode is one optional extra (``[fuzz]``), loaded only with
``--gw-fuzz``; keeping it in one module keeps that import boundary in one place.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from gateway_spec import Profile, load_openapi

GROUP = "llm-gateway-conformance"
DEFAULT_EXAMPLES = 20
MAX_TOKENS = 16  # short answers: a fuzz stream costs a few chunks, not a long generation
MAX_CHOICES = 2
MAX_ITEMS = 3  # arrays of the positive request schemas: keeps generation fast and bodies small
POSITIVE, NEGATIVE = "positive", "negative"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
STREAM_TYPES = ("text/event-stream", "application/x-ndjson")


def add_options(parser: pytest.Parser) -> None:
    """The ``--gw-fuzz*`` options (declared by ``conformance/entry.py`` in every run, so they always parse)."""
    group = parser.getgroup(GROUP, "LLM gateway conformance")
    group.addoption("--gw-fuzz", action="store_true", default=False,
                    help="Add schemathesis fuzzing of every operation the profile serves (conformance/suite/"
                         "test_fuzz.py; skipped without this option).")
    group.addoption("--gw-fuzz-examples", type=int, default=DEFAULT_EXAMPLES, metavar="N",
                    help=f"Generated requests per operation and mode, positive and negative (default "
                         f"{DEFAULT_EXAMPLES}).")
    group.addoption("--gw-fuzz-seed", type=int, default=0, metavar="SEED",
                    help="Seed of the generator; the same seed sends the same requests (default 0).")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("gw_fuzz_examples") < 0:
        raise pytest.UsageError("--gw-fuzz-examples must be 0 or more")


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.getoption("gw_fuzz"):
        return None
    return (f"fuzz: schemathesis, {config.getoption('gw_fuzz_examples')} requests per operation and mode, "
            f"seed {config.getoption('gw_fuzz_seed')}")


# -- operations and the requirements their findings are graded under ---------------------------------------
@dataclass(frozen=True)
class FuzzOperation:
    """One operation of the contract and the requirement each kind of finding on it breaks."""

    operation_id: str
    method: str
    path: str  # as written in the spec: /v1/... (OpenAI surface) or /api/... (Ollama surface)
    success: str  # a valid request gets a documented 2xx status and content type
    body_schema: str  # a 2xx JSON body matches the response schema
    invalid: str  # a status the spec does not document for the operation
    stream_schema: str | None = None  # each SSE event / NDJSON line matches its schema
    stream_type: str | None = None  # the content type of a streamed answer
    content_type: str | None = None  # the JSON content type, when a requirement names it apart from success
    feature: str | None = None  # served only when the profile claims it
    endpoint: str | None = None  # Ollama: served only when listed in ollama.endpoints

    @property
    def ollama(self) -> bool:
        return self.path.startswith("/api/")

    def requirement_ids(self) -> tuple[str, ...]:
        """Every ID ``requirement_for`` can return for this operation (the test's requirement marker)."""
        errors = ("OLLAMA-013",) if self.ollama else ("ERRORS-001", "ERRORS-003", "ERRORS-019")
        ids = ("ERRORS-015", *errors, self.success, self.body_schema, self.invalid, self.stream_schema,
               self.stream_type, self.content_type)
        return tuple(dict.fromkeys(i for i in ids if i))


OPERATIONS = {op.operation_id: op for op in (
    FuzzOperation("createChatCompletion", "POST", "/v1/chat/completions", success="CHAT-001",
                  body_schema="CHAT-019", invalid="PARAMS-016", stream_schema="CHAT-STREAM-017",
                  stream_type="CHAT-STREAM-003"),
    FuzzOperation("listModels", "GET", "/v1/models", success="MODELS-001", body_schema="MODELS-002",
                  invalid="MODELS-001"),
    FuzzOperation("retrieveModel", "GET", "/v1/models/{model}", success="MODELS-012", body_schema="MODELS-012",
                  invalid="MODELS-013", feature="models-retrieve"),
    FuzzOperation("createEmbedding", "POST", "/v1/embeddings", success="EMBEDDINGS-001",
                  body_schema="EMBEDDINGS-001", invalid="PARAMS-016", content_type="EMBEDDINGS-020",
                  feature="embeddings"),
    FuzzOperation("ollamaTags", "GET", "/api/tags", success="OLLAMA-003", body_schema="OLLAMA-003",
                  invalid="OLLAMA-013", feature="ollama", endpoint="tags"),
    FuzzOperation("ollamaChat", "POST", "/api/chat", success="OLLAMA-005", body_schema="OLLAMA-011",
                  invalid="OLLAMA-013", stream_schema="OLLAMA-007", stream_type="OLLAMA-005", feature="ollama",
                  endpoint="chat"),
    FuzzOperation("ollamaGenerate", "POST", "/api/generate", success="OLLAMA-016", body_schema="OLLAMA-016",
                  invalid="OLLAMA-013", stream_schema="OLLAMA-016", feature="ollama", endpoint="generate"),
    FuzzOperation("ollamaVersion", "GET", "/api/version", success="OLLAMA-002", body_schema="OLLAMA-002",
                  invalid="OLLAMA-013", feature="ollama", endpoint="version"),
    FuzzOperation("ollamaEmbed", "POST", "/api/embed", success="OLLAMA-017", body_schema="OLLAMA-017",
                  invalid="OLLAMA-013", feature="ollama", endpoint="embed"),
)}


def serves(profile: Profile, op: FuzzOperation) -> str | None:
    """None when the profile serves ``op``; else why not (the skip reason)."""
    if not profile.claims(op.feature):
        return f"{op.operation_id}: profile {profile.name} does not claim feature {op.feature}"
    if op.ollama and not profile.ollama_base_path:
        return f"{op.operation_id}: profile {profile.name} has no Ollama surface"
    endpoints = profile.get("ollama.endpoints") or []
    if op.endpoint and endpoints and op.endpoint not in endpoints:
        return f"{op.operation_id}: profile {profile.name} does not document {profile.ollama_base_path}/{op.endpoint}"
    return None


@dataclass(frozen=True)
class Finding:
    """One check that failed on one fuzzed exchange."""

    operation_id: str
    mode: str
    check: str
    status: int
    content_type: str
    title: str
    detail: str
    request: str

    @property
    def streamed(self) -> bool:
        return self.content_type.split(";")[0].strip().lower() in STREAM_TYPES


def requirement_for(op: FuzzOperation, finding: Finding) -> str:
    """The requirement a finding breaks (the mapping the suite grades with)."""
    if finding.check == "not_a_server_error":
        return "ERRORS-015"
    if finding.status >= 400:
        if finding.check == "status_code_conformance":
            return op.invalid
        if op.ollama:
            return "OLLAMA-013"
        if finding.check == "content_type_conformance":
            return "ERRORS-003"
        return "ERRORS-019" if finding.status >= 500 else "ERRORS-001"
    if finding.check in ("response_schema_conformance", "ndjson_line_conformance"):
        return (op.stream_schema or op.body_schema) if finding.streamed else op.body_schema
    if finding.check == "content_type_conformance":
        return (op.stream_type or op.success) if finding.streamed else (op.content_type or op.success)
    return op.success


def judged_requirements(op: FuzzOperation, exchange: Exchange) -> set[str]:
    """The requirements ``judge`` could have flagged on this exchange, found or not (the evidence a PASS needs):
    ``requirement_for`` of every check that runs on an answer of this status and content type."""
    response = exchange.response
    status = response.status_code
    content_type = ",".join(response.headers.get("content-type", []))
    streamed = content_type.split(";")[0].strip().lower() in STREAM_TYPES
    judged = {"ERRORS-015"}
    if status >= 400:
        judged |= {op.invalid} | ({"OLLAMA-013"} if op.ollama else {"ERRORS-003", "ERRORS-019" if status >= 500
                                                                      else "ERRORS-001"})
    elif streamed:
        judged |= {op.stream_schema or op.body_schema, op.stream_type or op.success, op.success}
    else:
        judged |= {op.body_schema, op.content_type or op.success, op.success}
    return {rid for rid in judged if rid}


# -- the fuzzing copy of the contract -----------------------------------------------------------------------
_SCHEMA_REF = "#/components/schemas/"
_LITERALS = ("enum", "const", "default", "example", "examples")


def _inline(node: Any, components: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with component ``$ref``s replaced by copies (a recursive ref is left open as ``{}``)."""
    if isinstance(node, list):
        return [_inline(item, components, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
        name = ref[len(_SCHEMA_REF):]
        target = {} if name in seen else _inline(components[name], components, (*seen, name))
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_inline(rest, components, seen)}
    return {k: v if k in _LITERALS else _inline(v, components, seen) for k, v in node.items()}


def _merge_all_of(node: Any) -> Any:
    """Fold an ``allOf`` of plain object parts into one object, so closing it does not reject the other parts."""
    if isinstance(node, list):
        return [_merge_all_of(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v if k in _LITERALS else _merge_all_of(v) for k, v in node.items()}
    parts = node.get("allOf")
    plain = {"type", "properties", "required", "description", "title"}
    if parts and all(isinstance(p, dict) and set(p) <= plain for p in parts):
        del node["allOf"]
        properties, required = dict(node.get("properties", {})), list(node.get("required", []))
        for part in parts:
            properties.update(part.get("properties", {}))
            required += [r for r in part.get("required", []) if r not in required]
        node.update(type="object", properties=properties)
        if required:
            node["required"] = required
    return node


def _close(node: Any) -> Any:
    """Objects with declared properties take no others; arrays hold at most ``MAX_ITEMS``."""
    if isinstance(node, list):
        return [_close(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v if k in _LITERALS else _close(v) for k, v in node.items()}
    if "properties" in node and "additionalProperties" not in node and "allOf" not in node:
        node["additionalProperties"] = False
    kind = node.get("type")
    if kind == "array" or (isinstance(kind, list) and "array" in kind):
        node["maxItems"] = min(node.get("maxItems", MAX_ITEMS), MAX_ITEMS)
        node["minItems"] = min(node.get("minItems", 0), MAX_ITEMS)
    return node


def fuzzing_contract() -> dict[str, Any]:
    """The contract as fuzzing reads it: request bodies inlined and closed, with short arrays.

    The spec, like OpenAI's, lets request objects carry unknown keys; generated from it as written, "valid"
    requests would be stuffed with random keys and most of the generation time would go into them. Closed
    schemas give really valid positive requests, and negative requests whose violations are of the declared
    fields (an unknown key is not a violation worth a finding: PARAMS-015 asks gateways to ignore them).
    """
    spec = copy.deepcopy(load_openapi())
    components = spec["components"]["schemas"]
    for methods in spec["paths"].values():
        for operation in methods.values():
            if not isinstance(operation, dict):
                continue
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                media["schema"] = _close(_merge_all_of(_inline(media["schema"], components)))
    return spec


@functools.lru_cache(maxsize=1)
def schemathesis_schema():
    """The schemathesis schema of ``fuzzing_contract()``: UTF-8 text, no NUL, no generated auth."""
    import schemathesis

    config = schemathesis.Config()
    config.projects.default.generation.update(allow_x00=False, codec="utf-8", with_security_parameters=False)
    return schemathesis.openapi.from_dict(fuzzing_contract(), config=config)


def modes(op: FuzzOperation) -> tuple[str, ...]:
    """Positive always; negative only with a request body (a path parameter always reaches the server as text)."""
    return (POSITIVE, NEGATIVE) if op.method == "POST" else (POSITIVE,)


@functools.lru_cache(maxsize=64)
def generate(operation_id: str, mode: str, examples: int, seed: int = 0) -> tuple:
    """Up to ``examples`` schemathesis cases, generated up front: same seed, same cases; no shrinking."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    from schemathesis import GenerationMode

    op = OPERATIONS[operation_id]
    operation = schemathesis_schema()[op.path][op.method]
    generation_mode = GenerationMode.POSITIVE if mode == POSITIVE else GenerationMode.NEGATIVE
    cases: list = []

    @with_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(operation.as_strategy(generation_mode=generation_mode))
    def collect(case) -> None:
        cases.append(case)

    if examples > 0:
        collect()
    return tuple(cases[:examples])


# -- fitting a generated case to the profile ----------------------------------------------------------------
@dataclass(frozen=True)
class FuzzModels:
    """The model names positive cases use, one per surface."""

    chat: str
    embedding: str | None
    ollama: str | None
    ollama_embedding: str | None

    @classmethod
    def for_profile(cls, profile: Profile, chat: str | None = None, embedding: str | None = None) -> FuzzModels:
        """The profile's defaults, or the run's ``--gw-model`` / ``--gw-embedding-model``."""
        ollama = profile.get("ollama.default_model")
        embedders = [m["name"] for m in profile.get("ollama.models") or [] if m.get("embedding_dimensions")]
        return cls(chat or profile.get("models.default_chat"), embedding or profile.get("models.default_embedding"),
                   ollama, embedders[0] if embedders else ollama)

    def for_operation(self, operation_id: str) -> str | None:
        return {"createEmbedding": self.embedding, "ollamaChat": self.ollama, "ollamaGenerate": self.ollama,
                "ollamaEmbed": self.ollama_embedding}.get(operation_id, self.chat)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fitted_body(op: FuzzOperation, body: Any, mode: str, models: FuzzModels, stream: bool = False) -> Any:
    """A copy of the generated body with a served model (positive) and short, few answers (both modes).

    Caps only ever lower a value the spec accepts, so a negative case stays exactly as invalid as generated.
    ``stream`` turns a positive chat request into a streamed one: the generator almost never picks
    ``stream: true`` by itself, and the event-stream schema is what most needs checking.
    """
    if not isinstance(body, dict):
        return body
    body = copy.deepcopy(body)
    if mode == POSITIVE and models.for_operation(op.operation_id):
        body["model"] = models.for_operation(op.operation_id)
    if op.operation_id == "createChatCompletion":
        if stream and mode == POSITIVE:
            body["stream"] = True
        for key in ("max_tokens", "max_completion_tokens"):
            if _is_int(body.get(key)):
                body[key] = min(body[key], MAX_TOKENS) if mode == NEGATIVE else max(1, min(body[key], MAX_TOKENS))
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = MAX_TOKENS
        if _is_int(body.get("n")) and MAX_CHOICES < body["n"] <= 128:
            body["n"] = MAX_CHOICES
    elif op.operation_id == "createEmbedding" and mode == POSITIVE:
        _fit_embedding(body)
    elif op.operation_id in ("ollamaChat", "ollamaGenerate"):
        options = body.setdefault("options", {})
        if isinstance(options, dict) and (not _is_int(options.get("num_predict"))
                                          or not 0 < options["num_predict"] <= MAX_TOKENS):
            options["num_predict"] = MAX_TOKENS
    return body


def _fit_embedding(body: dict[str, Any]) -> None:
    """Where the spec is looser than any model: token ids are >= 0, text is non-empty, dimensions are small.

    Without this nearly every positive embeddings request is a 400 and the 200 answer goes unchecked.
    """
    def token(value: Any) -> Any:
        return abs(value) % 100_000 if _is_int(value) else value

    def fix(item: Any) -> Any:
        if isinstance(item, list):
            return [fix(i) for i in item]
        return token(item) if not isinstance(item, str) else (item or "x")

    body["input"] = fix(body.get("input", "x"))
    if not (_is_int(body.get("dimensions")) and 0 < body["dimensions"] <= 256):
        body.pop("dimensions", None)


def request_path(op: FuzzOperation, case: Any, mode: str, profile: Profile, models: FuzzModels) -> str:
    """The request path on the target: the spec path under the profile's base path, parameters escaped."""
    params = dict(case.path_parameters or {})
    if mode == POSITIVE and "model" in params:
        params["model"] = models.chat
    path = op.path.format(**{name: quote(str(value), safe="") for name, value in params.items()})
    if op.ollama:
        return (profile.ollama_base_path or "/api") + path[len("/api"):]
    return profile.base_path + path[len("/v1"):]


# -- one exchange and its findings --------------------------------------------------------------------------
@dataclass
class Exchange:
    """A fuzzed request as sent and the answer, in schemathesis' terms (``case`` carries the sent body)."""

    case: Any
    response: Any  # schemathesis.Response
    request: str  # "POST /v1/chat/completions {...}" for finding reports


def send(client: Any, op: FuzzOperation, case: Any, mode: str, profile: Profile, models: FuzzModels,
         stream: bool = False) -> Exchange:
    """Send one generated case through ``GatewayClient`` (auth, timeouts, caps, transcript, budget)."""
    import requests
    from schemathesis import Response
    from schemathesis.core import NOT_SET

    body = fitted_body(op, case.body, mode, models, stream)
    sent = case.derive()
    sent.body = body
    url = client.url(request_path(op, case, mode, profile, models))
    headers = {str(k): str(v) for k, v in (case.headers or {}).items() if str(k).lower() != "authorization"}
    content = None
    if body is not NOT_SET:
        # negative cases may carry raw bytes (a body that is not JSON at all)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = case.media_type or "application/json"
    auth = not op.ollama or bool(profile.get("ollama.auth_required"))
    answer = client.request(op.method, url, content=content, headers=headers, auth=auth)
    grouped: dict[str, list[str]] = {}
    for name, value in answer.headers.multi_items():
        grouped.setdefault(name.lower(), []).append(value)
    prepared = requests.Request(op.method, url, headers=headers, data=content).prepare()
    response = Response(answer.status_code, grouped, answer.content, prepared, elapsed=0.0, verify=True)
    shown = (content or b"").decode("utf-8", errors="replace")
    return Exchange(sent, response, f"{op.method} {url} {shown[:600]}")


def _check_functions(reject_invalid: bool) -> dict[str, Callable]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    functions = {"not_a_server_error": not_a_server_error, **{name: getattr(checks, name) for name in CHECKS[1:]}}
    if reject_invalid:
        functions["negative_data_rejection"] = checks.negative_data_rejection
    return functions


def _ndjson_line_errors(op: FuzzOperation, content: bytes) -> list[str]:
    """Lines of an NDJSON answer that break the spec's ``x-ndjson-line-schema`` (schemathesis sees one string)."""
    from gateway_spec.openapi import extension_validator

    validator = extension_validator(f"{op.method} {op.path}", "application/x-ndjson", "x-ndjson-line-schema")
    errors = []
    for number, line in enumerate(content.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            errors.append(f"line {number} is not JSON: {line[:200]!r}")
            continue
        errors += [f"line {number}: {e.message[:300]}" for e in validator.iter_errors(item)][:3]
    return errors


def judge(op: FuzzOperation, mode: str, exchange: Exchange, reject_invalid: bool = False) -> list[Finding]:
    """Run schemathesis' response checks (and the NDJSON line check) on one exchange.

    ``reject_invalid`` adds ``negative_data_rejection`` (an invalid request must get a 4xx). The suite leaves it
    out: no requirement makes every schema violation a MUST-400 (too many stop sequences is a SHOULD, an unknown
    enum value may be passed upstream), so a finding could not be graded honestly. The reference server, strict
    by design, is held to it in the project's own proof.
    """
    from schemathesis.core.failures import Failure, FailureGroup

    response = exchange.response
    content_type = ",".join(response.headers.get("content-type", []))

    def finding(check: str, title: str, detail: str) -> Finding:
        return Finding(op.operation_id, mode, check, response.status_code, content_type, title, detail[:2000],
                       exchange.request)

    findings = []
    for name, check in _check_functions(reject_invalid and mode == NEGATIVE).items():
        try:
            exchange.case.validate_response(response, checks=[check])
        except FailureGroup as group:
            findings += [finding(name, f.title, f.message) for f in group.exceptions]
        except Failure as failure:
            findings.append(finding(name, failure.title, failure.message))
    if content_type.split(";")[0].strip().lower() == "application/x-ndjson" and response.status_code < 300:
        errors = _ndjson_line_errors(op, response.content)
        if errors:
            findings.append(finding("ndjson_line_conformance", "NDJSON line violates schema", "\n".join(errors)))
    return findings
