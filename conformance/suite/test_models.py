"""GET {base}/models: the list object, each model's fields, documented owners, pricing and context length.

The list is fetched once per run; each check reads the items even when the wrapper is wrong, so a broken wrapper
is MODELS-001 alone. Names, aliases and retrieval are in test_model_resolution.py.
"""

from __future__ import annotations

import datetime

import pytest

from conformance.suite.fixtures_rest import listed_models
from gateway_spec.openapi import schema_validator

# 2015-01-01T00:00:00Z: no model of an OpenAI-compatible API predates it; larger than 10^11 means milliseconds.
EARLIEST_CREATED = int(datetime.datetime(2015, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
LATEST_PLAUSIBLE = 10**11


@pytest.mark.requirement("MODELS-001")
def test_models_list_is_a_list_object(models_listing, rest, expect):
    exchange = rest.get("/models")
    body = exchange.json()
    expect("MODELS-001", exchange.status == 200 and isinstance(body, dict) and body.get("object") == "list"
           and isinstance(body.get("data"), list), expected='HTTP 200 {"object": "list", "data": [...]}',
           received=f"HTTP {exchange.status}: {exchange.response.text[:300]}")


@pytest.mark.requirement("MODELS-002", "MODELS-003")
def test_every_model_has_required_fields(models_listing, rest, expect):
    for i, model in enumerate(listed_models(rest, expect, "MODELS-002")):
        fields_ok = isinstance(model.get("id"), str) and "object" in model and "created" in model \
            and isinstance(model.get("owned_by"), str)
        expect("MODELS-002", fields_ok, expected="id (string), object, created, owned_by (string)",
               received=model, note=f"data[{i}]")
        expect("MODELS-003", model.get("object") == "model", expected='object "model"',
               received=model.get("object"), note=f"data[{i}] id={model.get('id')!r}")


@pytest.mark.requirement("MODELS-004", "MODELS-005")
def test_created_is_unix_seconds(models_listing, rest, expect):
    for model in listed_models(rest, expect, "MODELS-004"):
        created = model.get("created")
        is_int = isinstance(created, int) and not isinstance(created, bool)
        expect("MODELS-004", is_int, expected="integer Unix seconds", received=created, note=f"id={model.get('id')!r}")
        if is_int:
            expect("MODELS-005", EARLIEST_CREATED <= created < LATEST_PLAUSIBLE,
                   expected=f"{EARLIEST_CREATED} <= created < {LATEST_PLAUSIBLE}", received=created,
                   note=f"id={model.get('id')!r}")


@pytest.mark.requirement("MODELS-006")
def test_model_ids_are_unique(models_listing, rest, expect):
    ids = [m.get("id") for m in listed_models(rest, expect, "MODELS-006")]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    expect("MODELS-006", not duplicates, expected="unique ids", received=f"duplicates: {duplicates}")


@pytest.mark.requirement("MODELS-007", "MODELS-020")
def test_documented_chat_models_are_listed(models_listing, rest, expect, profile):
    listed = {m.get("id"): m for m in listed_models(rest, expect, "MODELS-007")}
    for documented in profile.get("models.chat", []):
        entry = listed.get(documented["id"])
        expect("MODELS-007", entry is not None, expected=f"{documented['id']!r} in the list",
               received=sorted(listed, key=str))
        _check_owner(expect, entry, documented, profile)


def _check_owner(expect, entry, documented, profile) -> None:
    """MODELS-020 for one listed entry; a missing owned_by is MODELS-002's, not a wrong owner. Only where the doc
    names owners (``models.owned_by_documented``): elsewhere any owned_by string is valid."""
    if not profile.get("models.owned_by_documented"):
        return
    if entry is not None and documented.get("owned_by") and isinstance(entry.get("owned_by"), str):
        expect("MODELS-020", entry["owned_by"] == documented["owned_by"], expected=documented["owned_by"],
               received=entry["owned_by"], note=f"id={documented['id']!r}")


def _schema_requirement(path: list) -> str:
    """The requirement a ListModelsResponse schema error belongs to, from where it points."""
    field = str(path[2]) if len(path) > 2 else None
    return {"object": "MODELS-003", "created": "MODELS-004", "shutdown_date": "MODELS-021"}.get(field, "MODELS-002") \
        if len(path) >= 2 else "MODELS-001"


@pytest.mark.requirement("MODELS-001", "MODELS-002", "MODELS-003", "MODELS-004", "MODELS-021")
def test_models_list_matches_the_schema(models_listing, rest, expect):
    exchange = rest.get("/models")
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict):
        return  # MODELS-001's own check reports it; the schema adds nothing about a non-object
    for err in schema_validator("ListModelsResponse").iter_errors(body):
        where = list(err.absolute_path)
        expect(_schema_requirement(where), False, expected="ListModelsResponse (spec/openapi.yaml)",
               received=f"{'/'.join(map(str, where)) or '(root)'}: {err.message[:300]}")


@pytest.mark.requirement("MODELS-020")
def test_documented_embedding_models_have_their_owner(models_listing, rest, expect, profile):
    listed = {m.get("id"): m for m in listed_models(rest, expect, "MODELS-020")}
    for documented in profile.get("models.embedding") or []:
        _check_owner(expect, listed.get(documented["id"]), documented, profile)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


PRICE_WORDS = ("pric", "cost")
CONTEXT_NAMES = ("context", "max_model_len")


def _split_prices(fields: dict) -> tuple[list, list]:
    """Input and output prices of one object, by key name (input/prompt, output/completion)."""
    inputs = [v for k, v in fields.items() if "input" in k.lower() or "prompt" in k.lower()]
    outputs = [v for k, v in fields.items() if "output" in k.lower() or "completion" in k.lower()]
    return inputs, outputs


def _prices(model: dict) -> tuple[list, list, object]:
    """Input and output prices wherever the entry keeps them (the doc names no field): a pricing-like object, else
    top-level price fields. Returns the prices and what was read, for Received."""
    priced = {k: v for k, v in model.items() if any(w in k.lower() for w in PRICE_WORDS)}
    for value in priced.values():
        if isinstance(value, dict):
            inputs, outputs = _split_prices(value)
            if inputs and outputs:
                return inputs, outputs, value
    inputs, outputs = _split_prices({k: v for k, v in priced.items() if not isinstance(v, dict)})
    return inputs, outputs, priced or None


@pytest.mark.requirement("MODELS-018")
def test_every_model_carries_pricing(models_listing, rest, expect):
    for model in listed_models(rest, expect, "MODELS-018"):
        inputs, outputs, shown = _prices(model)
        expect("MODELS-018", inputs and outputs and all(_is_number(v) and v >= 0 for v in inputs + outputs),
               expected="numeric input and output prices (any field names)", received=shown,
               note=f"id={model.get('id')!r}")


@pytest.mark.requirement("MODELS-019")
def test_every_model_carries_context_length(models_listing, rest, expect):
    for model in listed_models(rest, expect, "MODELS-019"):
        found = {k: v for k, v in model.items() if any(n in k.lower() for n in CONTEXT_NAMES)}
        ok = any(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in found.values())
        expect("MODELS-019", ok, expected="a positive integer context length (any field name)",
               received=found or None, note=f"id={model.get('id')!r}")


@pytest.mark.requirement("MODELS-021")
def test_shutdown_date_is_a_date(models_listing, rest, expect):
    for model in (m for m in listed_models(rest, expect, "MODELS-021") if "shutdown_date" in m):
        value = model["shutdown_date"]
        ok = value is None or (isinstance(value, str) and _is_iso_date(value))
        expect("MODELS-021", ok, expected='null or "YYYY-MM-DD"', received=value, note=f"id={model.get('id')!r}")


def _is_iso_date(text: str) -> bool:
    try:
        return len(text) == 10 and datetime.date.fromisoformat(text) is not None
    except ValueError:
        return False
