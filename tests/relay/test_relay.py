"""The reference relay as a gateway: client auth, routes, retries, streams, aliases, variants and its CLI."""

from __future__ import annotations

import pytest

from gateway_spec import Profile, load_profile
from reference_relay import RelayConfig
from reference_relay.__main__ import main
from reference_relay.faults import catalogue
from reference_relay.stream import sse_data
from tests.relay.checks import user
from tests.relay.harness import CLIENT_KEY, MODEL, UPSTREAM_KEY


def _envelope(result) -> dict:
    assert isinstance(result.json, dict) and set(result.json["error"]) >= {"message", "type", "param", "code"}
    return result.json["error"]


@pytest.mark.parametrize("key", [None, "", "sk-not-a-known-key"])
def test_client_without_a_valid_key_gets_401_and_the_upstream_nothing(relays, key):
    probe = relays.probe(client_keys=(CLIENT_KEY,))
    nonce = probe.nonce()
    result = probe.chat(user(f"auth {nonce}"), key=key)
    assert result.status == 401 and _envelope(result)["code"] == "invalid_api_key"
    assert probe.upstream.attempts(nonce) == []


def test_bad_body_unknown_path_and_method_answer_in_the_envelope(relays):
    probe = relays.probe()
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    bad = probe.client.post(probe.relay + "/v1/chat/completions", content=b"{not json",
                            headers={**auth, "Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    text = probe.client.post(probe.relay + "/v1/chat/completions", content=b"hi",
                             headers={**auth, "Content-Type": "text/plain"})
    assert text.status_code == 415 and "error" in text.json()
    assert probe.get("/v1/nowhere").status == 404
    wrong = probe.client.put(probe.relay + "/v1/chat/completions", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert wrong.status_code == 405 and "error" in wrong.json() and "POST" in wrong.headers["allow"]


def test_models_embeddings_and_upstream_client_errors_are_forwarded(relays, upstream):
    probe = relays.probe()
    listed = probe.get("/v1/models")
    assert listed.status == 200 and MODEL in [m["id"] for m in listed.json["data"]]
    assert probe.get(f"/v1/models/{MODEL}").json["id"] == MODEL
    assert probe.get("/v1/models/no-such-model").status == 404  # the upstream's 404, relayed as it is
    nonce = probe.nonce()
    emb = probe.chat({"model": "text-embedding-3-small", "input": f"vector {nonce}"}, path="/v1/embeddings")
    assert emb.status == 200 and emb.json["usage"]["prompt_tokens"] > 0
    assert len(upstream.attempts(nonce)) == 1


def test_uses_its_own_upstream_key(relays, upstream):
    probe = relays.probe()
    nonce = probe.nonce()
    assert probe.chat(user(f"key {nonce}")).status == 200
    assert [a.headers["Authorization"] for a in upstream.attempts(nonce)] == [f"Bearer {UPSTREAM_KEY}"]


def test_documented_passthrough_sends_the_callers_key(relays, upstream):
    base = load_profile("openai")
    raw = {**base.raw, "name": "openai-passthrough", "upstream": {**base.raw["upstream"], "key_passthrough": True}}
    probe = relays.probe(profile=Profile(name="openai-passthrough", raw=raw))
    nonce = probe.nonce()
    assert probe.chat(user(f"pass {nonce}")).status == 200
    assert [a.headers["Authorization"] for a in upstream.attempts(nonce)] == [f"Bearer {CLIENT_KEY}"]


def test_one_upstream_500_is_retried_once(relays, upstream):
    probe = relays.probe()
    nonce = probe.nonce()
    result = probe.chat(user(f"flaky {nonce}"), {"X-Mock-Status": "500", "X-Mock-Fail-Times": "1",
                                                  "X-Mock-Fail-Key": nonce})
    assert result.status == 200 and len(upstream.attempts(nonce)) == 2


def test_a_retry_after_longer_than_the_relay_waits_goes_back_at_once(relays, upstream):
    probe = relays.probe(max_retry_wait=0.2)
    nonce = probe.nonce()
    result = probe.chat(user(f"slow 429 {nonce}"), {"X-Mock-Status": "429"})  # Retry-After: 1
    assert result.status == 429 and result.headers["retry-after"] == "1"
    assert len(upstream.attempts(nonce)) == 1 and result.elapsed < 0.9


def test_stall_mid_stream_ends_in_one_error_event_without_done(relays):
    probe = relays.probe()
    result = probe.chat({**user(f"stall {probe.nonce()}"), "stream": True}, {"X-Mock-Stream-Stall-After": "2"})
    assert result.status == 200 and not result.done
    assert [e["code"] for e in result.errors()] == ["stream_incomplete"]
    assert len(result.chunks()) == 2


def test_model_aliases_map_both_ways(relays, upstream):
    probe = relays.probe(variants=("model-aliases",))
    nonce = probe.nonce()
    result = probe.chat(user(f"alias {nonce}"))
    assert result.json["model"] == MODEL
    assert [a.body["model"] for a in upstream.attempts(nonce)] == ["gpt-4o"]
    streamed = probe.chat({**user(f"alias {probe.nonce()}"), "stream": True})
    assert {c["model"] for c in streamed.chunks()} == {MODEL}
    assert probe.get(f"/v1/models/{MODEL}").json["id"] == MODEL
    assert sorted(m["id"] for m in probe.get("/v1/models").json["data"]) == sorted(
        m["id"] for m in relays.probe().get("/v1/models").json["data"])


def test_include_usage_injected_upstream_and_stripped(relays, upstream):
    probe = relays.probe(variants=("include-usage-injected",))
    nonce = probe.nonce()
    result = probe.chat({**user(f"inject {nonce}"), "stream": True})
    assert [a.body["stream_options"] for a in upstream.attempts(nonce)] == [{"include_usage": True}]
    assert result.done and all("usage" not in c for c in result.chunks())
    asked = probe.chat({**user(f"asked {probe.nonce()}"), "stream": True, "stream_options": {"include_usage": True}})
    assert asked.chunks()[-1]["usage"]["total_tokens"] > 0


def test_own_headers_and_reframed_bytes(relays):
    own = relays.probe(variants=("own-headers",)).chat(user("own headers"))
    assert own.headers["x-request-id"].startswith("req_relay_own_")
    assert int(own.headers["x-ratelimit-remaining-requests"]) <= int(own.headers["x-ratelimit-limit-requests"])
    reframed = relays.probe(variants=("sse-reframe",)).chat({**user("crlf"), "stream": True})
    assert b"\r\n" in reframed.events[0].raw and reframed.done


@pytest.mark.parametrize("pieces", [
    [b"data: a\r", b"\n\r\n", b"data: b\n\n"],
    [b"da", b"ta: a\n", b": comment\n\ndata:b\r\rdata: c\n"],
])
def test_sse_reader_is_independent_of_chunk_boundaries(pieces):
    assert list(sse_data(pieces)) == ["a", "b"]


def test_cli_lists_faults_and_refuses_bad_settings(capsys):
    assert main(["--list-faults"]) == 0
    assert set(line.split()[0] for line in capsys.readouterr().out.splitlines()) == set(catalogue())
    assert main(["--list-variants"]) == 0
    assert "model-aliases" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["--upstream", "http://127.0.0.1:9", "--fault", "NOT-A-FAULT"]) == 2
    assert "unknown relay fault" in capsys.readouterr().err


@pytest.mark.parametrize("profile, kind, expected", [
    ("unifiedai", "server_error", (502, "provider_error")),
    ("unit23", "server_error", (502, "server_error")),  # documented 502 or 503: the relay answers the first
    ("unit23", "timeout", (504, "server_error")),
    ("unillm", "unreachable", (503, "server_error")),
    ("openai", "auth", (502, "server_error")),
])
def test_failure_answers_follow_the_profile(profile, kind, expected):
    assert RelayConfig.for_profile(profile, "http://127.0.0.1:9").failure(kind) == expected


def test_budget_timeout_and_client_keys_come_from_the_profile():
    unit23 = RelayConfig.for_profile("unit23", "http://127.0.0.1:9/")
    assert unit23.upstream_timeout == 30 and unit23.max_attempts == 2 and unit23.upstream == "http://127.0.0.1:9"
    assert unit23.accepts_client_key(load_profile("unit23").test_key)
    assert not unit23.accepts_client_key("unit23-sk-" + "0" * 48)  # well formed, but not a key it issued
    raw = {**load_profile("openai").raw, "upstream": {**load_profile("openai").raw["upstream"], "max_attempts": 4}}
    assert RelayConfig(Profile(name="openai-4", raw=raw), "http://127.0.0.1:9").max_attempts == 4
