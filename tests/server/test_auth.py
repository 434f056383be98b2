"""Bearer authentication per profile: missing, wrong scheme, malformed, unknown keys; masking; open paths."""

from __future__ import annotations

import pytest

from tests.server.conftest import assert_envelope, auth_headers, make_client

UNIT23_WELL_FORMED_UNKNOWN = "unit23-sk-" + "0" * 48


@pytest.mark.parametrize(
    "header",
    [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer", "Bearer sk-not-a-known-key"],
    ids=["missing", "basic", "empty-token", "scheme-only", "unknown"],
)
def test_rejected_headers_answer_401_envelope(client, header):
    headers = {"Authorization": header} if header is not None else {}
    assert_envelope(client.get("/v1/models", headers=headers), 401, code="invalid_api_key")


def test_test_key_and_lowercase_scheme_are_accepted(client):
    key = client.application.config["SERVER"].profile.test_key
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_key_pattern_is_enforced_and_message_masks_the_key():
    client = make_client("unit23")
    error = assert_envelope(client.get("/v1/models", headers={"Authorization": "Bearer unit23-sk-xxx"}), 401)
    assert "unit23-sk-xxx" not in error["message"]
    error = assert_envelope(
        client.get("/v1/models", headers={"Authorization": f"Bearer {UNIT23_WELL_FORMED_UNKNOWN}"}), 401,
        code="invalid_api_key",
    )
    assert UNIT23_WELL_FORMED_UNKNOWN not in error["message"] and "unit23***" in error["message"]


def test_extra_and_configured_keys_are_accepted():
    client = make_client("openai", keys={"sk-extra-configured": {"tier": "x"}})
    for key in ("sk-conformance-no-quota", "sk-extra-configured"):
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_role_settings_are_seeded_for_limits():
    config = make_client("openai").application.config["SERVER"]
    assert config.keys["sk-conformance-no-quota"]["balance"] == 0


def test_auth_runs_before_body_validation(client):
    resp = client.post("/v1/chat/completions", data="{not json", content_type="application/json",
                       headers={"Authorization": "Bearer sk-unknown"})
    assert_envelope(resp, 401)


def test_open_paths_need_no_key(client):
    assert client.get("/healthz").status_code == 200


def test_fault_unknown_key_accepted():
    client = make_client("openai", faults=["AUTH-004"])
    assert client.get("/v1/models", headers={"Authorization": "Bearer sk-whatever"}).status_code == 200


def test_fault_echoes_full_key():
    client = make_client("openai", faults=["AUTH-006"])
    resp = client.get("/v1/models", headers={"Authorization": "Bearer sk-secret-value-123"})
    assert "sk-secret-value-123" in resp.get_json()["error"]["message"]


def test_fault_scheme_case_sensitive():
    client = make_client("openai", faults=["AUTH-008"])
    assert client.get("/v1/models", headers={"Authorization": "bearer sk-conformance-test"}).status_code == 401
    assert client.get("/v1/models", headers=auth_headers(client)).status_code == 200
