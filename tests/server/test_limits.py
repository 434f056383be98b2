"""Rate limits, quotas, billing and allowlists of the reference server (reference_server/policy/limits.py)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flask import jsonify
from werkzeug.serving import make_server

from gateway_spec import Profile, load_profile
from reference_server import ServerConfig, create_app
from reference_server.policy import limits
from reference_server.policy.limits import go_duration, iso_utc, policy_for

GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s)?$|^\d+ms$")


def profile_with(**overrides) -> Profile:
    base = load_profile("openai")
    raw = {**base.raw, **overrides}
    return Profile(name=raw["name"], raw=raw, path=base.path)


def rate_limits(**kw):
    base = {"headers": "openai", "reset_format": "go-duration", "requests_per_minute": 3, "tiers": None,
            "default_tier": None, "retry_after": None}
    return {**base, **kw}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build(profile: Profile, keys=None):
    """App with a probe route that behaves like a model surface: admit() after 'resolving' the model."""
    app = create_app(ServerConfig(profile=profile, keys=keys or {}))
    clock = FakeClock()
    app.extensions["limits"].clock = clock
    app.extensions["limits"].wall_clock = lambda: 1_700_000_000.0

    def probe():
        from flask import request

        limits.admit(request.args.get("model", "gpt-4o-mini"), tokens=int(request.args.get("tokens", 0)))
        return jsonify({"ok": True})

    app.add_url_rule(f"{profile.base_path}/_probe", "probe", probe, methods=["GET"])
    return app, clock


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def small():
    app, clock = build(profile_with(rate_limits=rate_limits()))
    return app.test_client(), clock, app.config["SERVER"].profile.test_key


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.072, "72ms"), (1, "1s"), (59.5, "59.5s"), (360, "6m0s"), (85656.648, "23h47m36.648s")],
)
def test_go_duration_matches_go_time_duration_string(seconds, text):
    assert go_duration(seconds) == text


def test_iso_utc_is_rfc3339_zulu():
    assert iso_utc(1_700_000_000.2) == "2023-11-14T22:13:21Z"


# ---------------------------------------------------------------- policies


def test_policy_tier_comes_from_role_keys_then_settings_then_default():
    prof = profile_with(
        rate_limits=rate_limits(tiers={"starter": 60, "popular": 120}, default_tier="starter",
                                requests_per_minute=60),
        auth={**load_profile("openai").raw["auth"], "extra_test_keys": {"tier-popular": "sk-pop"}},
    )
    keys = ServerConfig(profile=prof).keys
    assert policy_for("sk-pop", keys["sk-pop"], prof).requests_per_minute == 120
    assert policy_for("x-tier-popular", {}, prof).requests_per_minute == 120
    assert policy_for("sk-any", {}, prof).requests_per_minute == 60
    assert policy_for("sk-any", {"tier": "popular"}, prof).requests_per_minute == 120
    assert policy_for("sk-any", {"requests_per_minute": 7}, prof).requests_per_minute == 7


def test_policy_roles_no_balance_and_restricted():
    prof = profile_with(auth={**load_profile("openai").raw["auth"],
                              "extra_test_keys": {"no-balance": "sk-broke", "restricted": "sk-r"}})
    keys = ServerConfig(profile=prof).keys
    assert policy_for("sk-broke", keys["sk-broke"], prof).balance == 0
    assert policy_for("sk-r", keys["sk-r"], prof).allowed_models == frozenset({"gpt-4o-mini"})


# ---------------------------------------------------------------- per-minute limit and headers


def test_openai_headers_on_every_authenticated_response_and_remaining_decreases(small):
    client, _, key = small
    seen = []
    for _ in range(3):
        resp = client.get("/v1/_probe", headers=auth(key))
        assert resp.status_code == 200
        assert resp.headers["x-ratelimit-limit-requests"] == "3"
        assert GO_DURATION.match(resp.headers["x-ratelimit-reset-requests"])
        assert resp.headers["x-ratelimit-limit-tokens"].isdigit()
        assert resp.headers["x-ratelimit-remaining-tokens"].isdigit()
        assert GO_DURATION.match(resp.headers["x-ratelimit-reset-tokens"])
        seen.append(int(resp.headers["x-ratelimit-remaining-requests"]))
    assert seen == [2, 1, 0]


def test_429_after_limit_with_envelope_and_integer_retry_after(small):
    client, clock, key = small
    for _ in range(3):
        client.get("/v1/_probe", headers=auth(key))
    clock.now += 20.4
    resp = client.get("/v1/_probe", headers=auth(key))
    assert resp.status_code == 429
    err = resp.get_json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == "rate_limit_exceeded"
    assert resp.headers["Retry-After"] == "40"  # ceil(60 - 20.4)
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert resp.headers["x-ratelimit-reset-requests"] == "39.6s"


def test_window_resets_after_a_minute_of_the_monotonic_clock(small):
    client, clock, key = small
    for _ in range(4):
        client.get("/v1/_probe", headers=auth(key))
    clock.now += 60
    resp = client.get("/v1/_probe", headers=auth(key))
    assert resp.status_code == 200
    assert resp.headers["x-ratelimit-remaining-requests"] == "2"


def test_documented_retry_after_is_used():
    app, _ = build(profile_with(rate_limits=rate_limits(requests_per_minute=1, retry_after=60)))
    client, key = app.test_client(), app.config["SERVER"].profile.test_key
    client.get("/v1/_probe", headers=auth(key))
    resp = client.get("/v1/_probe", headers=auth(key))
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "60"


def test_mock_reset_restores_the_counters(small):
    client, _, key = small
    for _ in range(4):
        client.get("/v1/_probe", headers=auth(key))
    assert client.post("/_mock/reset").status_code == 200
    assert client.get("/v1/_probe", headers=auth(key)).headers["x-ratelimit-remaining-requests"] == "2"


def test_keys_are_counted_separately():
    app, _ = build(profile_with(rate_limits=rate_limits(requests_per_minute=1)),
                   keys={"sk-other": {}})
    client, key = app.test_client(), app.config["SERVER"].profile.test_key
    assert client.get("/v1/_probe", headers=auth(key)).status_code == 200
    assert client.get("/v1/_probe", headers=auth("sk-other")).status_code == 200
    assert client.get("/v1/_probe", headers=auth(key)).status_code == 429


def test_x_ratelimit_style_headers_with_iso_reset():
    app, clock = build(profile_with(rate_limits=rate_limits(headers="x-ratelimit", reset_format="iso8601",
                                                            requests_per_minute=60, retry_after=60)))
    client, key = app.test_client(), app.config["SERVER"].profile.test_key
    resp = client.get("/v1/_probe", headers=auth(key))
    assert resp.headers["X-RateLimit-Limit"] == "60"
    assert resp.headers["X-RateLimit-Remaining"] == "59"
    assert resp.headers["X-RateLimit-Reset"] == "2023-11-14T22:14:20Z"  # wall clock + 60 s
    assert "x-ratelimit-limit-requests" not in resp.headers


def test_headers_none_sends_no_rate_limit_headers():
    app, _ = build(profile_with(rate_limits=rate_limits(headers="none", reset_format=None)))
    resp = app.test_client().get("/v1/_probe", headers=auth(app.config["SERVER"].profile.test_key))
    assert resp.status_code == 200
    assert not [h for h in resp.headers.keys() if h.lower().startswith("x-ratelimit")]


def test_unauthenticated_control_paths_carry_no_rate_limit_headers(small):
    client, _, key = small
    resp = client.get("/healthz", headers=auth(key))
    assert "x-ratelimit-limit-requests" not in resp.headers


# ---------------------------------------------------------------- admit(): allowlist, wallet, daily, tokens


def keyed_profile(features):
    raw_auth = {**load_profile("openai").raw["auth"], "extra_test_keys": {"no-balance": "sk-broke",
                                                                           "restricted": "sk-restricted"}}
    return profile_with(auth=raw_auth, features=features,
                        billing={"status": 402, "error_type": "insufficient_quota", "error_code": "insufficient_quota"})


def test_allowlist_403_only_when_claimed():
    app, _ = build(keyed_profile(["model-allowlist"]))
    client = app.test_client()
    assert client.get("/v1/_probe?model=gpt-4o-mini", headers=auth("sk-restricted")).status_code == 200
    resp = client.get("/v1/_probe?model=gpt-4o", headers=auth("sk-restricted"))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["type"] == "permission_error"
    assert "x-ratelimit-limit-requests" in resp.headers
    app, _ = build(keyed_profile([]))
    assert app.test_client().get("/v1/_probe?model=gpt-4o", headers=auth("sk-restricted")).status_code == 200


def test_no_balance_key_gets_402_insufficient_quota_when_billing_claimed():
    app, _ = build(keyed_profile(["billing"]))
    resp = app.test_client().get("/v1/_probe", headers=auth("sk-broke"))
    assert resp.status_code == 402
    err = resp.get_json()["error"]
    assert err["type"] == "insufficient_quota" and err["code"] == "insufficient_quota"


def test_wallet_is_spent_request_by_request():
    app, _ = build(keyed_profile(["billing"]), keys={"sk-two": {"balance": 2}})
    client = app.test_client()
    statuses = [client.get("/v1/_probe", headers=auth("sk-two")).status_code for _ in range(3)]
    assert statuses == [200, 200, 402]


def test_daily_limit_and_token_quota_answer_429():
    app, clock = build(profile_with(rate_limits=rate_limits(requests_per_minute=100)),
                       keys={"sk-day": {"daily_requests": 1}, "sk-tok": {"tokens_per_minute": 10}})
    client = app.test_client()
    assert client.get("/v1/_probe", headers=auth("sk-day")).status_code == 200
    resp = client.get("/v1/_probe", headers=auth("sk-day"))
    assert resp.status_code == 429 and "Daily" in resp.get_json()["error"]["message"]
    clock.now += 61  # a new minute is not a new day
    assert client.get("/v1/_probe", headers=auth("sk-day")).status_code == 429
    assert client.get("/v1/_probe?tokens=8", headers=auth("sk-tok")).status_code == 200
    resp = client.get("/v1/_probe?tokens=8", headers=auth("sk-tok"))
    assert resp.status_code == 429
    assert resp.get_json()["error"]["type"] == "tokens"
    assert int(resp.headers["Retry-After"]) >= 1


# ---------------------------------------------------------------- exact under concurrency


@pytest.fixture
def live_limited():
    app, _ = build(profile_with(rate_limits=rate_limits(requests_per_minute=10)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app.config["SERVER"].profile.test_key
    server.shutdown()
    thread.join(5)


def test_parallel_requests_get_exactly_the_limit(live_limited):
    url, key = live_limited

    def call(_):
        with httpx.Client(timeout=10) as http:
            return http.get(f"{url}/v1/_probe", headers=auth(key)).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(40)))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 30
