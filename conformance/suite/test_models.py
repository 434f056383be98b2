"""GET {base}/models: the list object and each model's required fields (spec/requirements/models.yaml)."""

from __future__ import annotations

import datetime

import pytest

# 2015-01-01T00:00:00Z: no model of an OpenAI-compatible API predates it; larger than 10^11 means milliseconds.
EARLIEST_CREATED = int(datetime.datetime(2015, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
LATEST_PLAUSIBLE = 10**11


@pytest.mark.requirement("MODELS-001")
def test_models_list_is_a_list_object(models_list, expect):
    expect("MODELS-001", isinstance(models_list, list), expected="data is an array", received=type(models_list))


@pytest.mark.requirement("MODELS-001", "MODELS-002", "MODELS-003")
def test_every_model_has_required_fields(models_list, expect):
    for i, model in enumerate(models_list):
        fields_ok = isinstance(model, dict) and isinstance(model.get("id"), str) and "object" in model \
            and "created" in model and isinstance(model.get("owned_by"), str)
        expect("MODELS-002", fields_ok, expected="id (string), object, created, owned_by (string)",
               received=model, note=f"data[{i}]")
        if isinstance(model, dict):
            expect("MODELS-003", model.get("object") == "model", expected='object "model"',
                   received=model.get("object"), note=f"data[{i}] id={model.get('id')!r}")


@pytest.mark.requirement("MODELS-001", "MODELS-004", "MODELS-005")
def test_created_is_unix_seconds(models_list, expect):
    for model in (m for m in models_list if isinstance(m, dict)):
        created = model.get("created")
        is_int = isinstance(created, int) and not isinstance(created, bool)
        expect("MODELS-004", is_int, expected="integer Unix seconds", received=created, note=f"id={model.get('id')!r}")
        if is_int:
            expect("MODELS-005", EARLIEST_CREATED <= created < LATEST_PLAUSIBLE,
                   expected=f"{EARLIEST_CREATED} <= created < {LATEST_PLAUSIBLE}", received=created,
                   note=f"id={model.get('id')!r}")


@pytest.mark.requirement("MODELS-001", "MODELS-006")
def test_model_ids_are_unique(models_list, expect):
    ids = [m.get("id") for m in models_list if isinstance(m, dict)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    expect("MODELS-006", not duplicates, expected="unique ids", received=f"duplicates: {duplicates}")


@pytest.mark.requirement("MODELS-001", "MODELS-007", "MODELS-020")
def test_documented_chat_models_are_listed(models_list, expect, profile):
    listed = {m.get("id"): m for m in models_list if isinstance(m, dict)}
    for documented in profile.get("models.chat", []):
        entry = listed.get(documented["id"])
        expect("MODELS-007", entry is not None, expected=f"{documented['id']!r} in the list",
               received=sorted(listed, key=str))
        if entry is not None and documented.get("owned_by"):
            expect("MODELS-020", entry.get("owned_by") == documented["owned_by"],
                   expected=documented["owned_by"], received=entry.get("owned_by"), note=f"id={documented['id']!r}")
