"""Discovery mode (``llm-conformance discover`` / ``--gw-discover``) against the embedded reference server.

The reference server serves most chat features under every profile (it is a superset server), and gates a few on
the profile's claims: embeddings, prompt-cache usage, CORS, the Ollama API and the rate-limit header families.
So for every profile: each claimed feature the discovery probes must be discovered (no false negative), and for
the gated ones discovered equals claimed (no false positive either).
"""

import socket

import pytest
import yaml

from conformance.cli import main
from conformance.feature_discovery import OUTPUT, PROBED, PROBES
from conformance.preflight import PREFLIGHT_FAILED
from gateway_spec import load_profile

GATED = {"embeddings", "prompt-cache-usage", "cors", "ollama", "ratelimit-openai-headers", "ratelimit-x-headers"}
REQUESTS = 2 + 1 + len(PROBES) + 1  # the preflight, GET /models, one request per probe, the prompt-cache probe twice


@pytest.mark.parametrize("profile_name", ["openai", "ollama", "openai-compatible"])
def test_discovery_finds_what_the_profile_claims(profile_name, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)
    assert main(["discover", "--profile", profile_name, "--report-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{REQUESTS} requests (not a conformance verdict)" in out
    for feature in PROBED:  # one line per probed feature, with its evidence
        assert any(line.split()[1:2] == [feature] and len(line.split()) > 3 for line in out.splitlines()), feature

    written = load_profile(tmp_path / OUTPUT)  # validated against spec/schemas/profile.schema.json
    discovered = set(written.features)
    claimed = set(load_profile(profile_name).features) & set(PROBED)
    assert claimed <= discovered, f"claimed but not discovered: {claimed - discovered}"
    assert discovered & GATED == claimed & GATED
    assert discovered <= set(PROBED)
    assert written.base_path == load_profile(profile_name).base_path
    assert bool(written.get("cors")) == ("cors" in discovered)
    assert (written.get("ollama") is not None) == ("ollama" in discovered)
    comments = [line for line in (tmp_path / OUTPUT).read_text().splitlines() if line.startswith("#   ")]
    assert len(comments) == len(PROBED)  # the evidence of each finding rides along in the file
    assert yaml.safe_load((tmp_path / OUTPUT).read_text())["name"] == "discovered"


def test_an_unreachable_target_stops_discovery_with_the_preflight_code(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["discover", "--target-url", f"http://127.0.0.1:{port}", "--report-dir", str(tmp_path)])
    assert code == PREFLIGHT_FAILED
    assert "cannot reach the gateway" in capsys.readouterr().err
    assert not (tmp_path / OUTPUT).exists()
