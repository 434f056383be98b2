"""The models surface (``GET {base}/models``, ``GET {base}/models/<id>``) and model-name resolution for every route.

``resolve_model`` is the one place that decides whether a name is served: documented ids, aliases, letter case where
the profile says names are case-insensitive, and provider-model routing (``openrouter-<vendor>/<model>``). Names the
profile lists as ``rejected``, and anything else, answer ``models.unknown_status`` with code ``model_not_found``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from flask import Blueprint, jsonify

from gateway_spec import Profile
from reference_server.context import server_config
from reference_server.faults import seams
from reference_server.wire.errors import ApiError

bp = Blueprint("models", __name__)

# Every model was "created" at the same fixed instant, so listings are byte-stable (2024-01-01T00:00:00Z).
MODEL_CREATED = 1_704_067_200
# Names an app remembers resolving (ServerConfig.model_table); names past this are resolved each time.
MODEL_TABLE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A served model: ``id`` is the canonical id, ``requested`` the name the client sent, ``entry`` the profile's
    model entry (for a routed provider-model name, a synthesised ``{id, owned_by, aliases: [], reasoning: None}``),
    ``response_model`` what ``model`` in responses echoes, per the profile (``requested``, ``canonical`` or a
    model's ``default``)."""

    id: str
    requested: str
    entry: dict[str, Any]
    kind: str
    response_model: str


def served(entry: dict[str, Any], requested: str, kind: str, profile: Profile) -> ResolvedModel:
    """``entry`` served under the name ``requested``."""
    if entry.get("response_model") == "default":
        echoed = "default"
    elif profile.get("models.response_model") == "canonical":
        echoed = entry["id"]
    else:
        echoed = requested
    return ResolvedModel(entry["id"], requested, entry, kind, echoed)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The profile entry ``name`` names among ``entries``: by id or, with ``aliases``, by alias; case-folded when
    ``folded`` (the profile says names are case-insensitive). The ``MODEL_LOOKUP`` seam's value."""

    name: str
    entries: list[dict[str, Any]]
    folded: bool
    aliases: bool
    entry: dict[str, Any] | None

    def again(self, *, folded: bool, aliases: bool) -> Lookup:
        """The same name looked up with other matching rules."""
        return Lookup(self.name, self.entries, folded, aliases, _find(self.name, self.entries, folded, aliases))

    @property
    def by_folding(self) -> bool:
        """The entry matches only because letter case was folded (no name of it is spelled exactly so)."""
        return self.folded and self.entry is not None and self.name not in _names(self.entry, self.aliases)

    @property
    def by_alias(self) -> bool:
        """The entry matches only through one of its aliases."""
        if not self.aliases or self.entry is None:
            return False
        entry_id = self.entry["id"]
        return (entry_id.lower() != self.name.lower()) if self.folded else entry_id != self.name


@dataclass(frozen=True, slots=True)
class Resolution:
    """Whether a requested name is served (the ``MODEL_RESOLUTION`` seam's decision): ``model`` (None: refused with
    the unknown-model error), ``rejected`` (the profile lists the name as rejected), ``hint`` (the refusal names
    param ``model`` and code ``model_not_found``)."""

    name: str
    kind: str
    profile: Profile
    model: ResolvedModel | None
    rejected: bool = False
    hint: bool = True

    def as_default(self) -> Resolution:
        """The name served by the profile's default model of its kind (unchanged where the profile names none)."""
        default = self.profile.get(f"models.default_{self.kind}")
        if not default:
            return self
        entry = _match(default, self.profile, self.kind) or {"id": default}
        return replace(self, model=served(entry, self.name, self.kind, self.profile))


def _profile() -> Profile:
    return server_config().profile


def model_entries(profile: Profile, kind: str) -> list[dict[str, Any]]:
    """The profile's documented models of one kind (``chat`` or ``embedding``)."""
    return list(profile.get(f"models.{kind}") or [])


def unknown_model_error(name: str, profile: Profile, hint: bool = True) -> ApiError:
    """The error for a model the profile does not serve (status ``models.unknown_status``; where the doc states none,
    404, or 400 with the ``unknown-model-400`` variant: MODELS-009 accepts either there)."""
    documented = profile.get("models.unknown_status")
    status = int(documented or (400 if server_config().variant("unknown-model-400") else 404))
    message = f"The model `{name}` does not exist or you do not have access to it."
    if not hint:
        return ApiError(status, message)
    return ApiError(status, message, param="model", code="model_not_found")


def _names(entry: dict[str, Any], with_aliases: bool) -> list[str]:
    return [entry["id"], *((entry.get("aliases") or []) if with_aliases else [])]


def _match(name: str, profile: Profile, kind: str) -> dict[str, Any] | None:
    """The profile's entry ``name`` names: its id or an alias, case-folded where the profile says so."""
    entries = model_entries(profile, kind)
    folded = bool(profile.get("models.case_insensitive"))
    lookup = Lookup(name, entries, folded, True, _find(name, entries, folded, True))
    return seams.MODEL_LOOKUP(server_config(), lookup).entry


def _find(name: str, entries: list[dict[str, Any]], folded: bool, with_aliases: bool) -> dict[str, Any] | None:
    wanted = name.lower() if folded else name
    for entry in entries:
        for candidate in _names(entry, with_aliases):
            if (candidate.lower() if folded else candidate) == wanted:
                return entry
    return None


def _route(name: str, profile: Profile) -> dict[str, Any] | None:
    """A synthesised entry for a provider-model name the profile's routing accepts, else None."""
    if profile.get("models.routing") != "provider-model":
        return None
    for provider in profile.get("models.providers") or []:
        if re.fullmatch(provider["pattern"], name):
            entry = {"id": name, "owned_by": provider["owned_by"], "aliases": [], "reasoning": None}
            return seams.ROUTED_MODEL(server_config(), entry, name)
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
    config = server_config()
    profile = profile or config.profile
    if not isinstance(name, str) or not name:
        raise ApiError(400, "you must provide a model parameter", param="model")
    # Every request resolves its model, and without faults the answer depends on the profile alone: the app keeps
    # a table of the names it has served (bounded: routed provider-model names are open-ended).
    table = config.model_table if profile is config.profile and not config.fault_questions_matter() else None
    if table is not None:
        known = table.get((name, kind))
        if known is not None and known[0] is profile:  # (a test may swap the config's profile)
            return known[1]
    if _is_rejected(name, profile):
        resolution = Resolution(name, kind, profile, None, rejected=True)
    else:
        entry = _match(name, profile, kind) or (_route(name, profile) if kind == "chat" else None)
        resolution = Resolution(name, kind, profile, None if entry is None else served(entry, name, kind, profile))
    resolution = seams.MODEL_RESOLUTION(config, resolution)
    if resolution.model is None:
        raise unknown_model_error(name, profile, resolution.hint)
    if table is not None and len(table) < MODEL_TABLE_SIZE:
        table[(name, kind)] = (profile, resolution.model)
    return resolution.model


def model_object(entry: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """One ``Model`` as the profile's ``/models`` documents it (plus ``pricing``/``context_length``/``shutdown_date``
    when listed), through the ``MODEL_OBJECT`` seam before a variant renames fields."""
    config = server_config()
    obj: dict[str, Any] = {"id": entry["id"], "object": "model", "created": MODEL_CREATED,
                           "owned_by": entry.get("owned_by", "system")}
    if not profile.get("models.owned_by_documented") and config.variant("owned-by-own"):
        obj["owned_by"] = profile.name  # the gateway names itself where the doc names no owner (MODELS-020)
    fields = profile.get("models.list_fields") or []
    if "shutdown_date" in fields:
        obj["shutdown_date"] = None  # contract.md §1.6's example: no shutdown announced
    if "pricing" in fields and "pricing" in entry:
        obj["pricing"] = dict(entry["pricing"])
    if "context_length" in fields and "context_length" in entry:
        obj["context_length"] = entry["context_length"]
    obj = seams.MODEL_OBJECT(config, obj, entry)
    if config.variant("model-fields-renamed"):  # the doc names no field (MODELS-018/019 accept any)
        if "pricing" in obj:
            price = obj.pop("pricing")
            obj["prompt_price_per_1m"], obj["completion_price_per_1m"] = price["input_per_1m"], price["output_per_1m"]
        if "context_length" in obj:
            obj["context_window"] = obj.pop("context_length")
    return obj


def listed_entries(profile: Profile) -> list[dict[str, Any]]:
    """Chat then embedding models, as ``GET /models`` lists them (through the ``MODEL_ENTRIES`` seam)."""
    entries = model_entries(profile, "chat") + model_entries(profile, "embedding")
    return seams.MODEL_ENTRIES(server_config(), entries, profile)


@bp.get("/models")
def list_models():
    """``GET {base}/models``: every documented model."""
    profile = _profile()
    data = [model_object(entry, profile) for entry in listed_entries(profile)]
    return jsonify(seams.MODELS_LIST(server_config(), {"object": "list", "data": data}))


@bp.get("/models/<path:model>")
def retrieve_model(model: str):
    """``GET {base}/models/<id>``: one model (ids hold ``/`` and ``:``); unknown ids answer 404."""
    profile = _profile()
    entry = None
    for kind in ("chat", "embedding"):
        entry = _match(model, profile, kind) or entry
    if entry is None and not _is_rejected(model, profile):
        entry = _route(model, profile)
    answer: dict[str, Any] | ApiError
    if entry is None:
        answer = ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                          param="model", code="model_not_found")
    else:
        # MODELS-012: the id is the name that was asked for (an alias or a case variant comes back as asked).
        answer = {**model_object(entry, profile), "id": model}
    answer = seams.MODEL_RETRIEVED(server_config(), answer, entry)
    if isinstance(answer, ApiError):
        raise answer
    return jsonify(answer)
