"""The reference server on a Redis state store (reference_server/state): two apps sharing one Redis behave like
one server, and Redis going away is a 503 envelope naming the store, not a traceback."""

from __future__ import annotations

import pytest

from reference_server import ServerConfig, create_app
from reference_server.state import StateStoreUnavailable
from tests.redis_server import RedisServer
from tests.server.conftest import assert_envelope, chat_body


def app_on(url: str, **kwargs):
    return create_app(ServerConfig.for_profile("openai", state=url, **kwargs))


def test_two_apps_share_scripts_counters_journal_and_limits(redis_url):
    keys = {"sk-three-a-minute": {"requests_per_minute": 3}}
    one, two = (app_on(redis_url, keys=keys).test_client() for _ in range(2))
    headers = {"Authorization": "Bearer sk-three-a-minute"}
    assert one.post("/_mock/scripts", json={"rules": [{"match": {"nonce": "shared-1"}, "times": 1,
                                                       "respond": {"status": 502}}]}).status_code == 201
    marked = chat_body("x [[mock:shared-1]]")
    assert two.post("/v1/chat/completions", json=marked, headers=headers).status_code == 502
    assert one.post("/v1/chat/completions", json=marked, headers=headers).status_code == 200  # times 1, shared
    statuses = [c.post("/v1/chat/completions", json=chat_body("y"), headers=headers) for c in (one, two)]
    assert [r.status_code for r in statuses] == [200, 429]  # 3 a minute over both apps
    assert statuses[0].headers["x-ratelimit-remaining-requests"] == "0"
    entries = one.get("/_mock/requests").get_json()["data"]
    assert [e["status"] for e in entries] == [502, 200, 200, 429]
    assert [e["attempt"] for e in two.get("/_mock/requests?nonce=shared-1").get_json()["data"]] == [1, 2]
    assert two.post("/_mock/reset").status_code == 200
    assert one.get("/_mock/requests").get_json()["data"] == []
    assert one.post("/v1/chat/completions", json=chat_body("y"), headers=headers).status_code == 200


def test_fail_times_counts_across_apps(redis_url):
    one, two = (app_on(redis_url).test_client() for _ in range(2))
    key = one.application.config["SERVER"].profile.test_key
    headers = {"Authorization": f"Bearer {key}", "X-Mock-Fail-Times": "2", "X-Mock-Fail-Key": "shared"}
    statuses = [c.post("/v1/chat/completions", json=chat_body(), headers=headers).status_code
                for c in (one, two, one, two)]
    assert statuses == [503, 503, 200, 200]


def test_startup_rules_are_registered_once_per_store(redis_url):
    rules = [{"id": "script-0", "match": {"prompt_contains": "z"}, "respond": {"status": 500}}]
    for _ in range(3):
        app_on(redis_url, scripts=rules)
    assert len(app_on(redis_url).test_client().get("/_mock/scripts").get_json()["rules"]) == 1


def test_unreachable_store_at_start_names_the_url():
    url = f"redis://127.0.0.1:{RedisServer().port}/0"
    with pytest.raises(StateStoreUnavailable, match=url):
        app_on(url)


def test_redis_going_away_is_a_503_envelope_and_the_server_recovers():
    server = RedisServer().start()
    try:
        client = app_on(server.url).test_client()
        headers = {"Authorization": f"Bearer {client.application.config['SERVER'].profile.test_key}"}
        assert client.post("/v1/chat/completions", json=chat_body(), headers=headers).status_code == 200
        server.stop()
        for call in (lambda: client.post("/v1/chat/completions", json=chat_body(), headers=headers),
                     lambda: client.get("/_mock/requests"), lambda: client.post("/_mock/reset"),
                     lambda: client.post("/_mock/scripts", json={"rules": [{"respond": {}}]})):
            error = assert_envelope(call(), 503, code="state_store_unavailable")
            assert server.url in error["message"] and "state store" in error["message"]
        server.start()
        assert client.post("/v1/chat/completions", json=chat_body(), headers=headers).status_code == 200
        assert client.get("/_mock/requests").status_code == 200
    finally:
        server.stop()
