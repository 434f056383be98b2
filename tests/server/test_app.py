"""App-wide behaviour: base paths per profile, request ids, routing errors, body limits, health."""

from __future__ import annotations

from tests.server.conftest import assert_envelope, auth_headers, chat_body, make_client


def test_base_path_follows_the_profile():
    client = make_client("wallet-gateway")
    base = client.application.config["SERVER"].profile.base_path
    assert base == "/api/v1"
    assert client.get(f"{base}/models", headers=auth_headers(client)).status_code == 200
    assert client.get("/v1/models", headers=auth_headers(client)).status_code in (401, 404)


def test_request_ids_are_present_and_unique(client, headers):
    ids = {client.get("/v1/models", headers=headers).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    assert client.get("/v1/models").headers["x-request-id"]


def test_routing_errors_use_the_envelope(client, headers):
    assert_envelope(client.get("/v1/no-such-route", headers=headers), 404)
    resp = client.get("/v1/chat/completions", headers=headers)
    assert_envelope(resp, 405)
    assert "POST" in resp.headers["Allow"]


def test_oversized_body_is_413_not_500():
    client = make_client("openai", max_body_bytes=256)
    resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=chat_body("x" * 1000))
    assert_envelope(resp, 413)


def test_sdk_headers_are_accepted(post_chat):
    resp = post_chat(chat_body(), headers={"X-Stainless-Lang": "python", "OpenAI-Organization": "org-1",
                                           "OpenAI-Project": "proj-1", "User-Agent": "OpenAI/Python 1.0"})
    assert resp.status_code == 200


def test_healthz_needs_no_key(client):
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_route_table_remembers_matches_only(client, headers):
    """A matched (method, path) is remembered with its own view arguments; a 404 or 405 is raised each time."""
    for _ in range(2):
        assert client.get("/v1/models/gpt-4o-mini", headers=headers).get_json()["id"] == "gpt-4o-mini"
        assert client.get("/v1/models/gpt-4o", headers=headers).get_json()["id"] == "gpt-4o"
        assert client.get("/v1/no-such-route", headers=headers).status_code == 404
        assert client.get("/v1/chat/completions", headers=headers).status_code == 405
    table = client.application.route_table
    assert {(method, path) for method, path, _ in table} >= {("GET", "/v1/models/gpt-4o-mini"), ("GET", "/v1/models/gpt-4o")}
    assert ("GET", "/v1/no-such-route", False) not in table and ("GET", "/v1/chat/completions", False) not in table
