"""Models list/retrieve and resolve_model: aliases, case, routing, rejected names, unknown status."""

from __future__ import annotations

import pytest

from gateway_spec import load_profile
from reference_server.surfaces.models import resolve_model
from reference_server.wire.errors import ApiError
from tests.server.conftest import assert_envelope, auth_headers, make_client


def _get(client, path):
    return client.get(path, headers=auth_headers(client))


def test_list_has_every_documented_model_with_model_fields(client):
    body = _get(client, "/v1/models").get_json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"} <= set(ids) and len(ids) == len(set(ids))
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int) and model["owned_by"]


def test_retrieve_accepts_ids_with_slash_and_colon():
    client = make_client("unifiedai")
    model_id = "openrouter-qwen/qwen-2.5-72b-instruct:free"
    body = _get(client, f"/v1/models/{model_id}").get_json()
    assert body["id"] == model_id and body["owned_by"] == "openrouter"


def test_retrieve_unknown_is_404(client):
    assert_envelope(_get(client, "/v1/models/conformance-unknown-model"), 404, code="model_not_found")


@pytest.mark.parametrize("profile", ["openai", "unit23", "unifiedai"])
def test_rejected_names_answer_unknown_status(profile):
    client = make_client(profile)
    status = client.application.config["SERVER"].profile.get("models.unknown_status")
    for name in client.application.config["SERVER"].profile.get("models.rejected"):
        with client.application.app_context(), pytest.raises(ApiError) as info:
            resolve_model(name)
        assert info.value.status == status and info.value.param == "model" and info.value.code == "model_not_found"


def test_alias_case_and_default_response_model():
    app = make_client("unit23").application
    with app.app_context():
        alias = resolve_model("DeepSeek-R1-0528")
        assert alias.id == "deepseek-r1" and alias.requested == "DeepSeek-R1-0528"
        assert alias.response_model == "DeepSeek-R1-0528"
        assert resolve_model("deepseek-v3").response_model == "default"


def test_provider_model_routing_accepts_unlisted_routed_names():
    app = make_client("unifiedai").application
    with app.app_context():
        routed = resolve_model("openrouter-anthropic/claude-3.5-sonnet")
        assert routed.id == "openrouter-anthropic/claude-3.5-sonnet" and routed.entry["owned_by"] == "openrouter"
        with pytest.raises(ApiError):
            resolve_model("unknown-model")


def test_case_sensitive_profile_rejects_case_variant():
    app = make_client("openai").application
    with app.app_context(), pytest.raises(ApiError):
        resolve_model("GPT-4O-MINI")


def test_embedding_kind_only_matches_embedding_models():
    app = make_client("openai").application
    with app.app_context():
        assert resolve_model("text-embedding-3-small", kind="embedding").id == "text-embedding-3-small"
        with pytest.raises(ApiError):
            resolve_model("gpt-4o-mini", kind="embedding")


def test_resolve_with_explicit_profile_outside_request():
    app = make_client("openai").application
    with app.app_context():
        assert resolve_model("gpt-4o", profile=load_profile("openai")).id == "gpt-4o"


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("MODELS-001", lambda body: isinstance(body, list)),
        ("MODELS-003", lambda body: body["data"][0]["object"] == "models"),
        ("MODELS-004", lambda body: isinstance(body["data"][0]["created"], str)),
        ("MODELS-006", lambda body: body["data"][0]["id"] == body["data"][-1]["id"]),
    ],
)
def test_list_faults(fault, check):
    client = make_client("openai", faults=[fault])
    assert check(_get(client, "/v1/models").get_json())


def test_fault_unknown_model_served():
    app = make_client("openai", faults=["MODELS-009"]).application
    with app.app_context():
        assert resolve_model("no-such-model").id == "gpt-4o-mini"
