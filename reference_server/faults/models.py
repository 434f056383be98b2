"""Faults of the models surface (``surfaces/models.py``): how a name matches (``MODEL_LOOKUP``), routed names
(``ROUTED_MODEL``), whether a name is served (``MODEL_RESOLUTION``), the listed entries (``MODEL_ENTRIES``), each
Model object (``MODEL_OBJECT``), the list body (``MODELS_LIST``) and ``GET /models/{id}`` (``MODEL_RETRIEVED``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.seams import (
    MODEL_ENTRIES,
    MODEL_LOOKUP,
    MODEL_OBJECT,
    MODEL_RESOLUTION,
    MODEL_RETRIEVED,
    MODELS_LIST,
    ROUTED_MODEL,
)
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from gateway_spec import Profile
    from reference_server.surfaces.models import Lookup, Resolution

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


# ---------------------------------------------------------------- which name is served


@MODEL_LOOKUP.transform(FAULT_CASE, lambda lookup: lookup.by_folding)
def _case_sensitive(lookup: Lookup) -> Lookup:
    return lookup.again(folded=False, aliases=lookup.aliases)


@MODEL_LOOKUP.transform(FAULT_ALIAS, lambda lookup: lookup.by_alias)
def _no_aliases(lookup: Lookup) -> Lookup:
    return lookup.again(folded=lookup.folded, aliases=False)


@ROUTED_MODEL.transform(FAULT_ROUTING, lambda entry, name: entry is not None)
def _routing_refused(entry: dict[str, Any], name: str) -> None:
    return None


def _is_last_chat_model(res: Resolution) -> bool:
    if res.model is None or res.kind != "chat":
        return False
    chat = res.profile.get("models.chat") or []
    return bool(chat) and res.model.entry is chat[-1]


@MODEL_RESOLUTION.transform(FAULT_LISTED_REFUSED, _is_last_chat_model)
def _listed_refused(res: Resolution) -> Resolution:
    return replace(res, model=None)


@MODEL_RESOLUTION.transform(FAULT_REJECTED_ACCEPTED, lambda res: res.rejected and res.model is None)
def _rejected_accepted(res: Resolution) -> Resolution:
    return res.as_default()


@MODEL_RESOLUTION.transform(FAULT_UNKNOWN_200, lambda res: res.model is None)
def _unknown_served(res: Resolution) -> Resolution:
    return res.as_default()


@MODEL_RESOLUTION.transform(FAULT_UNKNOWN_NO_HINT, lambda res: res.model is None)
def _no_hint(res: Resolution) -> Resolution:
    return replace(res, hint=False)


@MODEL_RESOLUTION.transform(
    FAULT_ALIAS_CANONICAL,
    lambda res: res.model is not None and res.model.response_model == res.model.requested != res.model.id,
)
def _alias_canonical(res: Resolution) -> Resolution:
    return replace(res, model=replace(res.model, response_model=res.model.id))


# ---------------------------------------------------------------- GET /models and GET /models/{id}


def _last_chat(profile: Profile) -> Any:
    return (profile.get("models.chat") or [None])[-1]


@MODEL_ENTRIES.transform(FAULT_MISSING_MODEL, lambda entries, profile: _last_chat(profile) is not None)
def _missing_model(entries: list[dict[str, Any]], profile: Profile) -> list[dict[str, Any]]:
    last = _last_chat(profile)
    return [entry for entry in entries if entry is not last]


@MODEL_ENTRIES.transform(FAULT_DUPLICATE, lambda entries, profile: bool(entries))
def _duplicate(entries: list[dict[str, Any]], profile: Profile) -> list[dict[str, Any]]:
    return [*entries, entries[0]]


@MODEL_OBJECT.transform(FAULT_CREATED_STRING)
def _created_string(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    obj["created"] = str(obj["created"])
    return obj


@MODEL_OBJECT.transform(FAULT_CREATED_MS, lambda obj, entry: isinstance(obj["created"], int))
def _created_ms(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    obj["created"] *= 1000
    return obj


@MODEL_OBJECT.transform(FAULT_OBJECT)
def _object(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    obj["object"] = "models"
    return obj


@MODEL_OBJECT.transform(FAULT_OWNER, lambda obj, entry: "owned_by" in obj)
def _owner(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    obj["owned_by"] = "unknown-owner"
    return obj


@MODEL_OBJECT.transform(FAULT_NO_OWNED_BY, lambda obj, entry: "owned_by" in obj)
def _no_owned_by(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    del obj["owned_by"]
    return obj


@MODEL_OBJECT.transform(FAULT_SHUTDOWN_DATE)
def _shutdown_date(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    obj["shutdown_date"] = "soon"
    return obj


@MODEL_OBJECT.transform(FAULT_NO_PRICING, lambda obj, entry: "pricing" in obj)
def _no_pricing(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    del obj["pricing"]
    return obj


@MODEL_OBJECT.transform(FAULT_NO_CONTEXT, lambda obj, entry: "context_length" in obj)
def _no_context(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    obj["context_length"] = 0
    return obj


@MODELS_LIST.transform(FAULT_LIST_NOT_LIST)
def _bare_array(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["data"]


@MODEL_RETRIEVED.transform(FAULT_RETRIEVE_WRONG_ID, lambda answer, entry: entry is not None)
def _wrong_id(answer: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    answer["id"] = entry["id"] + "-other"
    return answer


@MODEL_RETRIEVED.transform(FAULT_RETRIEVE_UNKNOWN_400, lambda answer, entry: entry is None)
def _retrieve_unknown_400(answer: ApiError, entry: None) -> ApiError:
    answer.status = 400
    return answer
