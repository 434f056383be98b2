"""The schema sweep: every JSON answer and every stream chunk of the run, validated against spec/openapi.yaml.

The checks of ``conformance/suite`` validate one sample of each shape (the plain completion, the plain stream, the
models list, one embeddings answer). A gateway whose tool-call answers leave out ``message.content``, or whose 200
for a request without ``model`` has no ``model`` field, passed them. The sweep validates every exchange a case
judged, whatever case sent it, against the schema of its route and status, and reports each error under the
requirement that owns that shape:

- a 200 JSON chat completion: ``CreateChatCompletionResponse``; an error at a field one requirement states goes to
  it (``model`` CHAT-005, ``message.content`` CHAT-009, ...), anything else to CHAT-019;
- each JSON chunk of a 200 chat event stream: ``CreateChatCompletionStreamResponse``, CHAT-STREAM-017 (an
  in-stream ``{"error": ...}`` event and the ``[DONE]`` sentinel are not chunks; SSE-* judge them);
- a 200 models list (``ListModelsResponse``, MODELS-001..004/021 by field), a retrieved model (``Model``, the same
  fields' requirements, MODELS-012 for anything else), a 200 embeddings answer (``CreateEmbeddingResponse``, EMBEDDINGS-001/002/010/017 by field);
- a JSON body of a 4xx/5xx on the OpenAI surface: ``ErrorResponse``, ERRORS-001 (the envelope and its four keys)
  or ERRORS-002 (the type of a key's value). A body that is not JSON is the specific checks' to judge.

Two sides. In the test process (``case_findings``, called when a case is graded) each exchange is validated once
(memoised on the exchange) and the case record gets what was checked and found, keyed by the exchange's content
hash. On the controller (``sweep_records``), after every case of every worker is in, the findings are grouped per
requirement and JSON path (indexes folded: ``choices/*/message/content``) with the number of distinct exchanges
behind each group and one of them as the example, and become one case record per requirement,
``schema-sweep::<ID>``, graded by ``outcomes.grade_case`` like any case: its level, the profile's features, the
baseline. A replayed run judges the same bytes, so it gets the same records; under xdist each worker validates what
it judged and the controller merges.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from conformance.expect import Violation
from conformance.outcomes import grade_case
from conformance.sse import parse_sse
from gateway_spec.openapi import schema_validator

CASE_PREFIX = "schema-sweep::"
MAX_FINDINGS_PER_EXCHANGE = 20
_MEMO = "_schema_sweep"  # attribute an Exchange keeps its result under (validated once per process)
_REQUIRED = re.compile(r"^'([^']+)' is a required property")

# Field of a chat completion -> the requirement that states it (anything else: CHAT-019).
_CHAT_TOP = {"id": "CHAT-002", "object": "CHAT-003", "created": "CHAT-004", "model": "CHAT-005",
             "choices": "CHAT-006"}
_CHAT_CHOICE = {"index": "CHAT-007", "logprobs": "CHAT-007", "message": "CHAT-007", "finish_reason": "CHAT-011"}
_CHAT_MESSAGE = {"role": "CHAT-008", "content": "CHAT-009", "refusal": "CHAT-010"}
_MODEL_FIELDS = {"object": "MODELS-003", "created": "MODELS-004", "shutdown_date": "MODELS-021"}
_EMBEDDING_ITEM = {"object": "EMBEDDINGS-002", "index": "EMBEDDINGS-002", "embedding": "EMBEDDINGS-017"}


def chat_requirement(path: list) -> str:
    """The requirement a CreateChatCompletionResponse error belongs to, from the field it points at."""
    if len(path) == 1:
        return _CHAT_TOP.get(str(path[0]), "CHAT-019")
    if len(path) >= 2 and path[0] == "choices":
        if len(path) == 2:
            return "CHAT-007"  # a choice that is not an object
        if len(path) == 3:
            return _CHAT_CHOICE.get(str(path[2]), "CHAT-019")
        if path[2] == "message" and len(path) == 4:
            return _CHAT_MESSAGE.get(str(path[3]), "CHAT-019")
    return "CHAT-019"


def models_list_requirement(path: list) -> str:
    """The requirement a ListModelsResponse error belongs to, from where it points."""
    if len(path) < 2:
        return "MODELS-001"
    return _MODEL_FIELDS.get(str(path[2]), "MODELS-002") if len(path) > 2 else "MODELS-002"


def model_requirement(path: list) -> str:
    """A retrieved Model's error: by field, as for an item of the list (one object, one shape); MODELS-012 when the
    answer is not a Model object at all or its ``id`` is missing or not a string (MODELS-012: one Model object whose
    id is the requested model)."""
    if not path or str(path[0]) == "id":
        return "MODELS-012"
    return _MODEL_FIELDS.get(str(path[0]), "MODELS-002")


def embeddings_requirement(path: list) -> str:
    """The requirement a CreateEmbeddingResponse error belongs to, from where it points."""
    if path[:1] == ["usage"]:
        return "EMBEDDINGS-010"
    if path[:1] == ["data"] and len(path) >= 2:
        return _EMBEDDING_ITEM.get(str(path[2]) if len(path) > 2 else "", "EMBEDDINGS-002")
    return "EMBEDDINGS-001"


def error_requirement(path: list) -> str:
    """ERRORS-001 for the envelope and its four keys being there, ERRORS-002 for the type of a key's value."""
    return "ERRORS-002" if len(path) == 2 and path[0] == "error" and not _missing(path) else "ERRORS-001"


def _missing(path: list) -> bool:
    return bool(path) and isinstance(path[-1], _Missing)


class _Missing(str):
    """A path segment naming a required property that is absent (kept apart from a present one)."""


# Requirements that state the whole shape ("The response body MUST validate against the ... schema"): every error
# of that shape is theirs too, beside the requirement of the field it points at (as the suite's own check of the
# sample answer reports it: the field faults of a chat completion declare CHAT-019 as collateral).
WHOLE_SHAPE = {"chat": "CHAT-019"}

# route kind -> (schema, the requirement validated whatever was found, path -> owning requirement)
SHAPES: dict[str, tuple[str, str, Any]] = {
    "chat": ("CreateChatCompletionResponse", "CHAT-019", chat_requirement),
    "chunk": ("CreateChatCompletionStreamResponse", "CHAT-STREAM-017", lambda path: "CHAT-STREAM-017"),
    "models": ("ListModelsResponse", "MODELS-001", models_list_requirement),
    "model": ("Model", "MODELS-012", model_requirement),
    "embeddings": ("CreateEmbeddingResponse", "EMBEDDINGS-001", embeddings_requirement),
    "error": ("ErrorResponse", "ERRORS-001", error_requirement),
}


def route_kind(method: str, url: str, ollama_base: str | None = None) -> str | None:
    """``chat`` / ``embeddings`` / ``models`` / ``model`` for the OpenAI routes, ``other`` for anything else on the
    OpenAI surface, None for what the sweep leaves alone (the Ollama surface, a control API)."""
    path = urlsplit(url).path.rstrip("/")
    if "/_mock/" in path + "/" or (ollama_base and (path + "/").startswith(ollama_base.rstrip("/") + "/")):
        return None
    post = method.upper() == "POST"  # a 200 to another method is no completion (ERRORS-012 judges it)
    if path.endswith("/chat/completions"):
        return "chat" if post else "other"
    if path.endswith("/embeddings"):
        return "embeddings" if post else "other"
    if method.upper() == "GET" and path.endswith("/models"):
        return "models"
    if method.upper() == "GET" and "/models/" in path:
        return "model"
    return "other"


def exchange_key(ex: Any) -> str:
    """A content hash naming one exchange: the same request answered with the same bytes is one exchange, whichever
    worker or case recorded it."""
    digest = hashlib.sha1()
    for part in (ex.method, ex.url, ex.request_body or "", str(ex.status)):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update(bytes(ex.raw_body))
    return digest.hexdigest()[:16]


def _content_type(ex: Any) -> str:
    for name, value in ex.response_headers:
        if name.lower() == "content-type":
            return value.split(";")[0].strip().lower()
    return ""


def _errors(kind: str, instance: Any, where: str) -> list[tuple[str, str, str]]:
    """(requirement, folded JSON path, message) for each schema error of ``instance`` as a ``kind``."""
    schema, _, owner = SHAPES[kind]
    out = []
    for err in schema_validator(schema).iter_errors(instance):
        path = list(err.absolute_path)
        match = _REQUIRED.match(err.message) if err.validator == "required" else None
        if match:
            path.append(_Missing(match.group(1)))
        folded = "/".join("*" if isinstance(p, int) else str(p) for p in path) or "(root)"
        rid = owner(path)
        out.append((rid, f"{where}{folded}", err.message[:300]))
        whole = WHOLE_SHAPE.get(kind)
        if whole is not None and whole != rid:
            out.append((whole, f"{where}{folded}", err.message[:300]))
        if len(out) >= MAX_FINDINGS_PER_EXCHANGE:
            break
    return out


def validate_exchange(ex: Any, ollama_base: str | None = None) -> tuple[set[str], list[tuple[str, str, str]]]:
    """What one exchange was validated for (requirements with evidence) and the errors found; memoised."""
    memo = getattr(ex, _MEMO, None)
    if memo is not None:
        return memo
    checked: set[str] = set()
    found: list[tuple[str, str, str]] = []
    kind = route_kind(ex.method, ex.url, ollama_base) if ex.status is not None and ex.error is None else None
    if kind is not None:
        body = bytes(ex.raw_body)
        if ex.status == 200 and kind == "chat" and (ex.streamed or _content_type(ex) == "text/event-stream"):
            events, _ = parse_sse(body)
            for event in (e for e in events if not e.is_done):
                try:
                    chunk = json.loads(event.data)
                except ValueError:
                    continue  # SSE-* judge data that is not JSON
                if isinstance(chunk, dict) and "error" in chunk:
                    continue  # an in-stream error event, not a chunk
                checked.add(SHAPES["chunk"][1])
                found += _errors("chunk", chunk, "chunk/")
        else:
            shape = kind if ex.status == 200 and kind in SHAPES else "error" if ex.status >= 400 else None
            parsed = _json(body) if shape is not None else None
            if parsed is not None:
                checked.add(SHAPES[shape][1])
                found += _errors(shape, parsed[0], "")
    result = (checked, found[:MAX_FINDINGS_PER_EXCHANGE])
    try:
        setattr(ex, _MEMO, result)
    except AttributeError:  # an exchange that takes no attributes: validated again next time, same result
        pass
    return result


def _json(body: bytes) -> tuple[Any] | None:
    try:
        return (json.loads(body),)
    except ValueError:
        return None


def case_findings(exchanges: Iterable[Any], redact: Any, ollama_base: str | None = None) -> dict:
    """The part of a case record the controller's sweep reads: per requirement the exchanges validated for it, and
    each error with its exchange. JSON-able (it crosses xdist on the test report)."""
    checked: dict[str, list[str]] = {}
    findings = []
    for ex in exchanges:
        reqs, found = validate_exchange(ex, ollama_base)
        if not reqs:
            continue
        key = exchange_key(ex)
        for rid in reqs:
            checked.setdefault(rid, []).append(key)
        for rid, path, message in found:
            findings.append({"requirement": rid, "path": path, "message": redact(message), "exchange": key,
                             "request": redact(f"{ex.method} {urlsplit(ex.url).path} -> HTTP {ex.status}")})
    return {"checked": checked, "findings": findings}


def sweep_records(cases: Iterable[Mapping], registry: Mapping[str, Any], profile: Any, baseline: Any,
                  traced: bool = False, globs: tuple[str, ...] = ()) -> list[dict]:
    """One case record per requirement the sweep validated or found an error for, from the cases' ``schema``
    parts: the errors grouped per requirement and folded JSON path, each with how many distinct exchanges show it
    and one of them (request and the case that judged it) as evidence. Requirements outside the registry, outside
    the run's ``--gw-requirement`` selection (``globs``) or of a feature the profile does not claim get none."""
    checked: dict[str, set[str]] = {}
    groups: dict[tuple[str, str], dict] = {}
    for case in cases:
        part = case.get("schema") or {}
        for rid, keys in part.get("checked", {}).items():
            checked.setdefault(rid, set()).update(keys)
        for f in part.get("findings", []):
            group = groups.setdefault((f["requirement"], f["path"]), {"exchanges": set(), "example": f,
                                                                      "case": case["id"]})
            group["exchanges"].add(f["exchange"])
    by_requirement: dict[str, list[Violation]] = {rid: [] for rid in checked}
    for (rid, path), group in sorted(groups.items()):
        example, count = group["example"], len(group["exchanges"])
        schema = next((s for s, main, _ in SHAPES.values() if main == rid), None) or _schema_of(rid)
        by_requirement.setdefault(rid, []).append(Violation(
            rid, f"valid {schema} (spec/openapi.yaml)", f"{path}: {example['message']}",
            f"{count} exchange{'s' * (count != 1)} with this error, e.g. {example['request']} "
            f"(judged in {group['case']})"))
    records = []
    for rid, violations in sorted(by_requirement.items()):
        if rid not in registry or not profile.claims(registry[rid].feature) or \
                (globs and not any(fnmatch.fnmatchcase(rid, g) for g in globs)):
            continue
        case_id = CASE_PREFIX + rid
        grade = grade_case(case_id, [rid], registry, profile, violations, None, baseline, {rid})
        n = len(checked.get(rid, ()))
        message = f"{n} exchange{'s' * (n != 1)} validated" if n else ""
        record = {"id": case_id, "requirements": dict(grade.requirements), "outcome": grade.outcome,
                  "message": message, "duration_ms": 0.0, "violations": [v.as_dict() for v in violations],
                  "transcript": "", "streams": [], "request_ids": []}
        if traced:
            record["faults_consulted"] = []  # made from other cases' records: never rerun on its own
        records.append(record)
    return records


def _schema_of(rid: str) -> str:
    """The schema whose field mapping sends errors to ``rid`` (for Expected)."""
    owners = {"CHAT": "CreateChatCompletionResponse", "MODELS-012": "Model", "MODELS": "ListModelsResponse",
              "EMBEDDINGS": "CreateEmbeddingResponse", "ERRORS": "ErrorResponse"}
    for prefix, schema in owners.items():
        if rid.startswith(prefix):
            return schema
    return "schema"
