"""The key the embedded server seeds for the suite's 429 burst (conformance.embedded.burst_key)."""

from __future__ import annotations

import re

import httpx
import pytest

import gateway_spec
from conformance.embedded import BURST_LIMIT, EmbeddedServer, burst_key


@pytest.mark.parametrize("name", gateway_spec.profile_names())
def test_every_bundled_profile_gets_a_burst_key_its_pattern_accepts(name):
    profile = gateway_spec.load_profile(name)
    key = burst_key(profile)
    assert key, f"no burst key for {name}: its 429 burst would be skipped"
    assert key != profile.test_key and key not in (profile.get("auth.extra_test_keys") or {}).values()
    pattern = profile.get("auth.key_pattern")
    assert not pattern or re.fullmatch(pattern, key)


class _Profile:
    """Just what burst_key reads: a test key and a key pattern."""

    def __init__(self, test_key: str, pattern: str) -> None:
        self.test_key, self.pattern = test_key, pattern

    def get(self, dotted: str, default=None):
        return self.pattern if dotted == "auth.key_pattern" else default


def test_no_burst_key_when_no_candidate_matches_the_pattern():
    assert burst_key(_Profile("only-this-key", r"^only-this-key$")) is None


def test_the_embedded_server_limits_only_the_burst_key():
    profile = gateway_spec.load_profile("unit23")  # a key pattern: the derived key must pass auth, then the limit
    body = {"model": profile.get("models.default_chat"), "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1}
    with EmbeddedServer("unit23") as server, httpx.Client(base_url=server.url + profile.base_path) as http:
        def post(key: str) -> int:
            return http.post("/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}).status_code

        statuses = [post(burst_key(profile)) for _ in range(BURST_LIMIT + 1)]
        assert statuses == [200] * BURST_LIMIT + [429]
        assert post(profile.test_key) == 200  # the run's key keeps its own quota
