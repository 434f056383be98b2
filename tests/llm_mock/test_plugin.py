"""The ``llm_mock`` pytest plugin: isolation between tests, profile choice, the scripting API, plugin hygiene."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from llm_mock import LlmMock, ScriptError


def chat(mock: LlmMock, text: str, **extra) -> httpx.Response:
    return httpx.post(mock.base_url + "/chat/completions", headers={"Authorization": f"Bearer {mock.api_key}"},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra})


class TestIsolation:
    """Two tests in a row on the same session server: the second sees nothing of the first."""

    def test_first_leaves_state_behind(self, llm_mock):
        llm_mock.add_rule({"status": 500}, prompt_contains="x")
        chat(llm_mock, "x", stream=False)
        fail = {"Authorization": f"Bearer {llm_mock.api_key}", "X-Mock-Fail-Times": "1", "X-Mock-Fail-Key": "iso"}
        assert httpx.post(llm_mock.base_url + "/chat/completions", headers=fail,
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "y"}]}
                          ).status_code == 503
        assert len(llm_mock.journal) == 2

    def test_second_starts_clean(self, llm_mock):
        assert llm_mock.journal == [] and llm_mock.rules() == []
        assert chat(llm_mock, "x").status_code == 200
        fail = {"Authorization": f"Bearer {llm_mock.api_key}", "X-Mock-Fail-Times": "1", "X-Mock-Fail-Key": "iso"}
        assert httpx.post(llm_mock.base_url + "/chat/completions", headers=fail,
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "y"}]}
                          ).status_code == 503  # the fail-times count started again


@pytest.mark.llm_mock(profile="unit23")
def test_marker_picks_the_profile(llm_mock):
    assert llm_mock.profile == "unit23" and llm_mock.api_key.startswith("unit23-sk-")
    assert httpx.get(llm_mock.url + "/healthz").json()["profile"] == "unit23"


@pytest.mark.parametrize("llm_mock", ["openai", "unit23"], indirect=True)
def test_parameter_picks_the_profile(llm_mock):
    assert httpx.get(llm_mock.url + "/healthz").json()["profile"] == llm_mock.profile


def test_script_api_nonce_and_errors(llm_mock):
    nonce = llm_mock.new_nonce()
    ids = llm_mock.script({"id": "tool", "match": {"nonce": nonce},
                           "respond": {"tool_calls": [{"name": "lookup", "arguments": "{}"}]}})
    assert ids == ["tool"]
    body = chat(llm_mock, f"call it {llm_mock.marker(nonce)}").json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert [e["attempt"] for e in llm_mock.requests(nonce=nonce)] == [1]
    with pytest.raises(ScriptError, match=r"rules\[0\]\.respond\.status"):
        llm_mock.add_rule({"status": 42})


def test_loading_the_plugin_imports_nothing_heavy():
    code = "import sys, llm_mock.plugin; print(sorted(m for m in ('flask', 'werkzeug', 'reference_server', " \
           "'conformance', 'openai', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_plugin_adds_one_fixture_and_one_marker(pytestconfig):
    import llm_mock.plugin as plugin

    fixtures = [name for name, value in vars(plugin).items() if type(value).__name__ == "FixtureFunctionDefinition"]
    hooks = [name for name in vars(plugin) if name.startswith("pytest_")]
    assert fixtures == ["llm_mock"] and hooks == ["pytest_configure"]  # no options, no autouse fixtures
    assert any(line.startswith("llm_mock(profile=") for line in pytestconfig.getini("markers"))
