"""Control surface: healthz, request journal, counters reset and X-Mock-* fault headers (control.py, journal.py)."""

from __future__ import annotations

import threading
import time

import pytest
from flask import jsonify

from gateway_spec import Profile, load_profile
from reference_server import ServerConfig, create_app
from reference_server.context import request_context
from reference_server.control.journal import RequestJournal, redact_secret
from reference_server.control.mock_controls import MockControls
from tests.server.conftest import auth_headers, chat_body, make_client

KEY = load_profile("openai").test_key


def make_app(profile: Profile | None = None, **config):
    app = create_app(ServerConfig(profile=profile or load_profile("openai"), **config))

    def probe():
        return jsonify({"mock": repr(request_context().mock)})

    app.add_url_rule("/v1/_probe", "probe", probe, methods=["GET", "POST"])
    return app


@pytest.fixture
def app():
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def call(client, **headers):
    return client.post("/v1/_probe", json={"x": 1}, headers={"Authorization": f"Bearer {KEY}", **headers})


def test_healthz_names_the_profile(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "profile": "openai"}


# ---------------------------------------------------------------- X-Mock-* parsing


def test_controls_land_on_g_mock_with_defaults(client):
    assert "MockControls(status=None, latency_ms=0" in call(client).get_json()["mock"]
    text = call(client, **{"X-Mock-Stream-Cut-After": "3", "X-Mock-TTFT-Ms": "5",
                           "X-Mock-Tokens-Per-Second": "50", "X-Mock-Error-After": "2",
                           "X-Mock-Stream-Stall-After": "4"}).get_json()["mock"]
    assert "cut_after=3" in text and "ttft_ms=5" in text and "tokens_per_second=50.0" in text
    assert "error_after=2" in text and "stall_after=4" in text


def test_server_defaults_come_from_config_extra():
    app = make_app(extra={"mock_ttft_ms": 7, "mock_tokens_per_second": 20, "mock_stall_seconds": 0.5})
    text = call(app.test_client()).get_json()["mock"]
    assert "ttft_ms=7" in text and "tokens_per_second=20" in text and "stall_seconds=0.5" in text


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Mock-Status", "abc"), ("X-Mock-Status", "200"), ("X-Mock-Latency-Ms", "-1"),
     ("X-Mock-Fail-Times", "x"), ("X-Mock-Tokens-Per-Second", "0"), ("X-Mock-Upstream-Timeout", "maybe"),
     ("X-Mock-Stream-Cut-After", "1.5")],
)
def test_bad_header_values_answer_400_envelope_naming_the_header(client, name, value):
    resp = call(client, **{name: value})
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["param"] == name and err["type"] == "invalid_request_error"


def test_mock_controls_is_frozen():
    with pytest.raises(AttributeError):
        MockControls().status = 500  # type: ignore[misc]


# ---------------------------------------------------------------- X-Mock-Status, latency, upstream timeout


def test_mock_status_answers_with_envelope(client):
    resp = call(client, **{"X-Mock-Status": "500"})
    assert resp.status_code == 500
    assert set(resp.get_json()["error"]) == {"message", "type", "param", "code"}
    assert "Retry-After" not in resp.headers


@pytest.mark.parametrize("status", [429, 503])
def test_mock_status_429_and_503_carry_retry_after(client, status):
    resp = call(client, **{"X-Mock-Status": str(status), "X-Mock-Retry-After-Ms": "20"})
    assert resp.status_code == status
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["retry-after-ms"] == "20"


@pytest.mark.parametrize(("profile", "limit", "remaining"), [
    ("openai", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests"),
    ("wallet-gateway", "X-RateLimit-Limit", "X-RateLimit-Remaining")])
def test_mock_status_429_carries_the_rate_limit_headers_of_a_real_limit(profile, limit, remaining):
    client = make_client(profile)
    config = client.application.config["SERVER"]
    resp = client.post(f"{config.profile.base_path}/chat/completions", headers={
        **auth_headers(client), "X-Mock-Status": "429"}, json=chat_body(model=config.profile.get("models.default_chat")))
    assert resp.status_code == 429
    assert int(resp.headers[limit]) > 0 and resp.headers[remaining] == "0"


def test_latency_delays_the_answer(client):
    start = time.perf_counter()
    assert call(client, **{"X-Mock-Latency-Ms": "120"}).status_code == 200
    assert time.perf_counter() - start >= 0.11


def test_upstream_timeout_is_504_naming_the_documented_limit_without_waiting():
    base = load_profile("openai")
    profile = Profile(name="t", raw={**base.raw, "timeouts": {"upstream_seconds": 30}})
    start = time.perf_counter()
    resp = call(make_app(profile).test_client(), **{"X-Mock-Upstream-Timeout": "1"})
    assert resp.status_code == 504
    assert "30 seconds" in resp.get_json()["error"]["message"]
    assert time.perf_counter() - start < 1


# ---------------------------------------------------------------- X-Mock-Fail-Times


def test_fail_times_fails_the_first_attempts_of_the_same_request_then_succeeds(client):
    headers = {"X-Mock-Fail-Times": "2"}
    assert [call(client, **headers).status_code for _ in range(3)] == [503, 503, 200]
    # a different body is a different request: its own count
    other = client.post("/v1/_probe", json={"x": 2}, headers={"Authorization": f"Bearer {KEY}", **headers})
    assert other.status_code == 503


def test_fail_key_counts_across_different_bodies_and_status_is_chosen(client):
    headers = {"Authorization": f"Bearer {KEY}", "X-Mock-Fail-Times": "1", "X-Mock-Fail-Key": "k1",
               "X-Mock-Status": "429"}
    first = client.post("/v1/_probe", json={"a": 1}, headers=headers)
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert client.post("/v1/_probe", json={"b": 2}, headers=headers).status_code == 200


def test_reset_restarts_fail_counts(client):
    headers = {"X-Mock-Fail-Times": "1"}
    assert call(client, **headers).status_code == 503
    assert call(client, **headers).status_code == 200
    client.post("/_mock/reset")
    assert call(client, **headers).status_code == 503


# ---------------------------------------------------------------- journal


def test_journal_records_requests_with_redacted_authorization(client):
    call(client, **{"X-Request-Note": "n1"})
    resp = client.get("/_mock/requests")
    entries = resp.get_json()["data"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["method"] == "POST" and entry["path"] == "/v1/_probe"
    assert entry["body"] == {"x": 1}
    assert entry["status"] == 200
    assert entry["headers"]["Authorization"] == f"Bearer {KEY[:6]}***"
    assert KEY not in str(entries)
    assert entry["timestamp"].endswith("+00:00")
    assert entry["request_id"].startswith("req_")  # the journal runs last, after x-request-id is set


def test_journal_limit_and_clear(client):
    for _ in range(3):
        call(client)
    assert len(client.get("/_mock/requests?limit=2").get_json()["data"]) == 2
    assert client.delete("/_mock/requests").status_code == 204
    assert client.get("/_mock/requests").get_json()["data"] == []


def test_journal_is_a_bounded_ring():
    client = make_app(journal_size=2).test_client()
    for n in range(3):
        client.post("/v1/_probe", json={"n": n}, headers={"Authorization": f"Bearer {KEY}"})
    bodies = [e["body"] for e in client.get("/_mock/requests").get_json()["data"]]
    assert bodies == [{"n": 1}, {"n": 2}]


def test_journal_records_injected_failures(client):
    call(client, **{"X-Mock-Status": "502"})
    assert client.get("/_mock/requests").get_json()["data"][-1]["status"] == 502


def test_journal_is_thread_safe():
    journal = RequestJournal(size=50)

    def write(n):
        for i in range(200):
            journal.record({"n": n, "i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(journal) == 50


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("Bearer sk-abcdef123456", "Bearer sk-abc***"), ("sk-abcdef", "sk-abc***"), ("Bearer ", "Bearer ")],
)
def test_redact_secret(raw, shown):
    assert redact_secret(raw) == shown
