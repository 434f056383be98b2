"""The models surface (``GET {base}/models``, ``GET {base}/models/<id>``) and model-name resolution for every route.

``resolve_model`` is the one place that decides whether a name is served: documented ids, aliases, letter case where
the profile says names are case-insensitive, and provider-model routing (``openrouter-<vendor>/<model>``). Names the
profile lists as ``rejected``, and anything else, answer ``models.unknown_status`` with code ``model_not_found``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, jsonify

from gateway_spec import Profile
from reference_server import faults
from reference_server.context import fault as _fault
from reference_server.context import server_config
from reference_server.wire.errors import ApiError

bp = Blueprint("models", __name__)

# Every model was "created" at the same fixed instant, so listings are byte-stable (2024-01-01T00:00:00Z).
MODEL_CREATED = 1_704_067_200

# The SDK's SyncPage is built from the {object, data} wrapper: a bare array cannot become one (SDK-012).
FAULT_LIST_NOT_LIST = faults.declare("MODELS-001", "GET /models answers a bare array instead of {object: list, data}.",
                                     collateral=("SDK-012",))
FAULT_NO_OWNED_BY = faults.declare("MODELS-002", "Listed models lack owned_by.")
FAULT_OBJECT = faults.declare("MODELS-003", 'Listed models carry object "models" instead of "model".')
FAULT_CREATED_STRING = faults.declare("MODELS-004", "Listed models carry created as a string.")
FAULT_CREATED_MS = faults.declare("MODELS-005", "Listed models carry created in milliseconds.")
FAULT_DUPLICATE = faults.declare("MODELS-006", "The models list repeats its first model.")
FAULT_MISSING_MODEL = faults.declare("MODELS-007", "The models list leaves out the last documented chat model.")
FAULT_LISTED_REFUSED = faults.declare(
    "MODELS-008", "Chat completions refuse the last documented chat model although /models lists it."
)
FAULT_UNKNOWN_200 = faults.declare(
    "MODELS-009", "An unknown model is served by the default model (200) instead of the unknown-model status.",
    # SDK-009: served, so there is no 404/400 for the SDK to map to NotFoundError/BadRequestError.
    collateral=("MODELS-010", "MODELS-011", "SSE-013", "EMBEDDINGS-014", "SDK-009"),
)
FAULT_UNKNOWN_NO_HINT = faults.declare(
    "MODELS-010", "The unknown-model error carries neither param \"model\" nor code \"model_not_found\"."
)
FAULT_REJECTED_ACCEPTED = faults.declare("MODELS-011", "Names the profile lists as rejected are served as the default model.")
# The SDK returns the body as the Model: its id is the wrong one (SDK-013).
FAULT_RETRIEVE_WRONG_ID = faults.declare("MODELS-012", "GET /models/{id} answers with a different model's id.",
                                         collateral=("SDK-013",))
FAULT_RETRIEVE_UNKNOWN_400 = faults.declare("MODELS-013", "GET /models/{id} for an unknown model answers 400.")
FAULT_ALIAS = faults.declare("MODELS-014", "Documented aliases are treated as unknown models.", collateral=("MODELS-015",))
FAULT_ALIAS_CANONICAL = faults.declare(
    "MODELS-015", "Responses to an alias echo the canonical id instead of the name the profile documents."
)
FAULT_CASE = faults.declare("MODELS-016", "Model names are matched case-sensitively despite the profile.")
# UnifiedAI documents prompt caching for routed names only (cache_model openrouter-anthropic/...): a gateway that
# refuses them gives the cache check no completion to read, which grades USAGE-016/018 FAIL (a broken prerequisite).
FAULT_ROUTING = faults.declare("MODELS-017", "Routed provider-model names that are not listed are rejected.",
                               collateral=("USAGE-016", "USAGE-018"))
FAULT_OWNER = faults.declare("MODELS-020", 'Every model is owned_by "unknown-owner" instead of its documented owner.')
FAULT_SHUTDOWN_DATE = faults.declare("MODELS-021", 'Listed models carry shutdown_date "soon".')
FAULT_NO_PRICING = faults.declare("MODELS-018", "Listed models lack pricing although the profile documents it.")
FAULT_NO_CONTEXT = faults.declare("MODELS-019", "Listed models carry context_length 0.")


@dataclass(frozen=True)
class ResolvedModel:
    """A served model: ``id`` is the canonical id, ``requested`` the name the client sent, ``entry`` the profile's
    model entry (for a routed provider-model name, a synthesised ``{id, owned_by, aliases: [], reasoning: None}``)."""

    id: str
    requested: str
    entry: dict[str, Any]
    kind: str = "chat"

    @property
    def response_model(self) -> str:
        """What ``model`` in responses echoes, per the profile (``requested``, ``canonical`` or a model's default)."""
        profile = _profile()
        if self.entry.get("response_model") == "default":
            return "default"
        if profile.get("models.response_model") == "canonical":
            return self.id
        if self.requested != self.id and _fault(FAULT_ALIAS_CANONICAL):
            return self.id
        return self.requested


def _profile() -> Profile:
    return server_config().profile


def model_entries(profile: Profile, kind: str) -> list[dict[str, Any]]:
    """The profile's documented models of one kind (``chat`` or ``embedding``)."""
    return list(profile.get(f"models.{kind}") or [])


def unknown_model_error(name: str, profile: Profile) -> ApiError:
    """The error for a model the profile does not serve (status ``models.unknown_status``; where the doc states none,
    404, or 400 with the ``unknown-model-400`` variant: MODELS-009 accepts either there)."""
    documented = profile.get("models.unknown_status")
    status = int(documented or (400 if server_config().variant("unknown-model-400") else 404))
    message = f"The model `{name}` does not exist or you do not have access to it."
    if _fault(FAULT_UNKNOWN_NO_HINT):
        return ApiError(status, message)
    return ApiError(status, message, param="model", code="model_not_found")


def _names(entry: dict[str, Any], with_aliases: bool) -> list[str]:
    return [entry["id"], *((entry.get("aliases") or []) if with_aliases else [])]


def _match(name: str, profile: Profile, kind: str) -> dict[str, Any] | None:
    """The profile's entry ``name`` names: its id or an alias, case-folded where the profile says so."""
    entries = model_entries(profile, kind)
    case_insensitive = bool(profile.get("models.case_insensitive"))
    if not server_config().fault_questions_matter():
        return _find(name, entries, case_insensitive, True)

    # Ask the MODELS-016/014 faults only when their answer changes the match, so a fault trace ties them to the
    # requests that use a folded or aliased name (every request resolves a model).
    def folding(with_aliases: bool) -> dict[str, Any] | None:
        found = _find(name, entries, case_insensitive, with_aliases)
        if not case_insensitive:
            return found
        exact = _find(name, entries, False, with_aliases)
        return exact if exact is not found and _fault(FAULT_CASE) else found

    found = folding(True)
    without_aliases = folding(False)
    return without_aliases if without_aliases is not found and _fault(FAULT_ALIAS) else found


def _find(name: str, entries: list[dict[str, Any]], folded: bool, with_aliases: bool) -> dict[str, Any] | None:
    wanted = name.lower() if folded else name
    for entry in entries:
        for candidate in _names(entry, with_aliases):
            if (candidate.lower() if folded else candidate) == wanted:
                return entry
    return None


def _route(name: str, profile: Profile) -> dict[str, Any] | None:
    """A synthesised entry for a provider-model name the profile's routing accepts, else None."""
    if profile.get("models.routing") != "provider-model" or _fault(FAULT_ROUTING):
        return None
    for provider in profile.get("models.providers") or []:
        if re.fullmatch(provider["pattern"], name):
            return {"id": name, "owned_by": provider["owned_by"], "aliases": [], "reasoning": None}
    return None


def _is_rejected(name: str, profile: Profile) -> bool:
    folded = profile.get("models.case_insensitive")
    rejected = profile.get("models.rejected") or []
    return any((r.lower() == name.lower()) if folded else (r == name) for r in rejected)


def resolve_model(name: Any, kind: str = "chat", profile: Profile | None = None) -> ResolvedModel:
    """Resolve a requested model name to a served model, or raise the unknown-model ``ApiError``.

    ``kind`` is ``"chat"`` or ``"embedding"``; only models of that kind match. Needs an app context unless
    ``profile`` is given (faults are still read from the current app).
    """
    profile = profile or _profile()
    if not isinstance(name, str) or not name:
        raise ApiError(400, "you must provide a model parameter", param="model")
    default = profile.get(f"models.default_{kind}")
    if _is_rejected(name, profile):
        if (_fault(FAULT_REJECTED_ACCEPTED) or _fault(FAULT_UNKNOWN_200)) and default:
            return ResolvedModel(default, name, _match(default, profile, kind) or {"id": default}, kind)
        raise unknown_model_error(name, profile)
    entry = _match(name, profile, kind) or (_route(name, profile) if kind == "chat" else None)
    last_chat = (model_entries(profile, "chat") or [None])[-1]
    if entry is not None and entry is last_chat and kind == "chat" and _fault(FAULT_LISTED_REFUSED):
        entry = None
    if entry is not None:
        return ResolvedModel(entry["id"], name, entry, kind)
    if _fault(FAULT_UNKNOWN_200) and default:
        return ResolvedModel(default, name, _match(default, profile, kind) or {"id": default}, kind)
    raise unknown_model_error(name, profile)


def model_object(entry: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """One ``Model`` as the profile's ``/models`` documents it (plus ``pricing``/``context_length``/``shutdown_date``
    when listed)."""
    created: Any = MODEL_CREATED
    if _fault(FAULT_CREATED_STRING):
        created = str(MODEL_CREATED)
    elif _fault(FAULT_CREATED_MS):
        created = MODEL_CREATED * 1000
    obj: dict[str, Any] = {"id": entry["id"], "object": "models" if _fault(FAULT_OBJECT) else "model",
                           "created": created, "owned_by": entry.get("owned_by", "system")}
    if _fault(FAULT_OWNER):
        obj["owned_by"] = "unknown-owner"
    elif not profile.get("models.owned_by_documented") and server_config().variant("owned-by-own"):
        obj["owned_by"] = profile.name  # the gateway names itself where the doc names no owner (MODELS-020)
    if _fault(FAULT_NO_OWNED_BY):
        del obj["owned_by"]
    fields = profile.get("models.list_fields") or []
    if "shutdown_date" in fields:
        obj["shutdown_date"] = None  # contract.md §1.6's example: no shutdown announced
    if _fault(FAULT_SHUTDOWN_DATE):
        obj["shutdown_date"] = "soon"
    if "pricing" in fields and "pricing" in entry and not _fault(FAULT_NO_PRICING):
        obj["pricing"] = dict(entry["pricing"])
    if "context_length" in fields and "context_length" in entry:
        obj["context_length"] = 0 if _fault(FAULT_NO_CONTEXT) else entry["context_length"]
    if server_config().variant("model-fields-renamed"):  # the doc names no field (MODELS-018/019 accept any)
        if "pricing" in obj:
            price = obj.pop("pricing")
            obj["prompt_price_per_1m"], obj["completion_price_per_1m"] = price["input_per_1m"], price["output_per_1m"]
        if "context_length" in obj:
            obj["context_window"] = obj.pop("context_length")
    return obj


def listed_entries(profile: Profile) -> list[dict[str, Any]]:
    """Chat then embedding models, as ``GET /models`` lists them (faults may drop or repeat one)."""
    chat = model_entries(profile, "chat")
    if _fault(FAULT_MISSING_MODEL):
        chat = chat[:-1]
    entries = chat + model_entries(profile, "embedding")
    if _fault(FAULT_DUPLICATE) and entries:
        entries.append(entries[0])
    return entries


@bp.get("/models")
def list_models():
    """``GET {base}/models``: every documented model."""
    profile = _profile()
    data = [model_object(entry, profile) for entry in listed_entries(profile)]
    if _fault(FAULT_LIST_NOT_LIST):
        return jsonify(data)
    return jsonify({"object": "list", "data": data})


@bp.get("/models/<path:model>")
def retrieve_model(model: str):
    """``GET {base}/models/<id>``: one model (ids hold ``/`` and ``:``); unknown ids answer 404."""
    profile = _profile()
    entry = None
    for kind in ("chat", "embedding"):
        entry = _match(model, profile, kind) or entry
    if entry is None and not _is_rejected(model, profile):
        entry = _route(model, profile)
    if entry is None:
        status = 400 if _fault(FAULT_RETRIEVE_UNKNOWN_400) else 404
        raise ApiError(status, f"The model `{model}` does not exist or you do not have access to it.",
                       param="model", code="model_not_found")
    obj = model_object(entry, profile)
    # MODELS-012: the id is the name that was asked for (an alias or a case variant comes back as asked).
    obj["id"] = entry["id"] + "-other" if _fault(FAULT_RETRIEVE_WRONG_ID) else model
    return jsonify(obj)
