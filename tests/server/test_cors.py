"""CORS for profiles that claim it (reference_server/wire/cors.py)."""

from __future__ import annotations

import pytest
from flask import jsonify

from gateway_spec import Profile, load_profile
from reference_server import ServerConfig, create_app

PREFLIGHT = {
    "Origin": "https://app.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
}


def make_client(cors: bool, faults=()):
    base = load_profile("openai")
    profile = Profile(name="t", raw={**base.raw, "cors": cors})
    app = create_app(ServerConfig(profile=profile, faults=frozenset(faults)))
    app.add_url_rule("/v1/_probe", "probe", lambda: jsonify({"ok": True}), methods=["POST"])
    return app.test_client(), base.test_key


def test_preflight_is_204_with_allow_headers_including_authorization():
    client, _ = make_client(True)
    resp = client.options("/v1/_probe", headers=PREFLIGHT)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = [h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")]
    assert {"authorization", "content-type", "x-stainless-os"} <= set(allowed)
    assert int(resp.headers["Access-Control-Max-Age"]) > 0


def test_preflight_needs_no_credentials_even_on_unknown_paths():
    client, _ = make_client(True)
    assert client.options("/v1/chat/completions", headers=PREFLIGHT).status_code == 204


def test_actual_responses_allow_origin_and_expose_request_id_and_rate_limit_headers():
    client, key = make_client(True)
    resp = client.post("/v1/_probe", json={}, headers={"Origin": "https://app.example",
                                                      "Authorization": f"Bearer {key}"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "x-ratelimit-remaining-requests", "retry-after"} <= exposed


def test_error_responses_carry_cors_headers_too():
    client, _ = make_client(True)
    resp = client.post("/v1/_probe", json={}, headers={"X-Mock-Status": "503"})
    assert resp.status_code == 503
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_no_cors_headers_when_profile_does_not_claim_it():
    client, key = make_client(False)
    resp = client.post("/v1/_probe", json={}, headers={"Origin": "https://x", "Authorization": f"Bearer {key}"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert client.options("/v1/_probe", headers=PREFLIGHT).status_code != 204


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_preflight_for_other_methods(method):
    client, _ = make_client(True)
    resp = client.options("/healthz", headers={**PREFLIGHT, "Access-Control-Request-Method": method})
    assert method in resp.headers["Access-Control-Allow-Methods"]
