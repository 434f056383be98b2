"""--gw-claim / --gw-no-claim and the openai-compatible profile's model discovery (against a real reference server)."""

import subprocess
import sys

import pytest

from conformance.discovery import list_models, with_discovered_models
from conformance.embedded import EmbeddedServer
from conformance.options import with_claims
from gateway_spec import load_profile


def test_claims_add_and_remove_features_and_unknown_ones_are_usage_errors():
    compat = load_profile("openai-compatible")
    assert compat.features == frozenset()
    claimed = with_claims(compat, ("streaming", "tools"), ())
    assert claimed.features == {"streaming", "tools"} and claimed.claims("tools")
    assert "streaming" not in with_claims(load_profile("openai"), (), ("streaming",)).features
    with pytest.raises(pytest.UsageError, match="--gw-claim streeming: no such feature.*close: streaming"):
        with_claims(compat, ("streeming",), ())
    with pytest.raises(pytest.UsageError, match="both name tools"):
        with_claims(compat, ("tools",), ("tools",))


def test_discovery_takes_the_chat_models_the_gateway_lists():
    profile = load_profile("unit23")
    with EmbeddedServer("unit23") as server:
        listed = list_models(server.url, "/v1", profile.test_key, (), 10)
        assert list_models(server.url, "/v1", "sk-wrong-key-000000000000", (), 10) is None
    assert [m["id"] for m in listed] == [m["id"] for m in profile.get("models.chat")]
    found = with_discovered_models(load_profile("openai-compatible"), listed, None)
    ids = [m["id"] for m in listed]
    assert found.get("models.default_chat") == ids[0]
    assert [m["id"] for m in found.get("models.chat")] == ids
    assert found.get("models.chat")[0]["owned_by"] == listed[0]["owned_by"]
    chosen = with_discovered_models(load_profile("openai-compatible"), listed, ids[-1])
    assert chosen.get("models.default_chat") == ids[-1]
    assert with_discovered_models(load_profile("openai-compatible"), None, None).get(
        "models.default_chat") == "gpt-4o-mini"  # nothing listed: the profile stays, the preflight speaks


def test_openai_compatible_checks_the_core_contract_of_another_dialect(tmp_path):
    """The generic profile against the reference server in the unit23 dialect: its models are discovered, and the
    core model-list checks pass without any unit23 knowledge."""
    with EmbeddedServer("unit23") as server:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--gw-profile", "openai-compatible",
             "--target-url", server.url, "--gw-api-key", load_profile("unit23").test_key, "--gw-requirement", "MODELS-00*",
             "--gw-report-dir", str(tmp_path / "out"), "-p", "no:cacheprovider", "-q"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
