"""results.json's ``request_ids`` and, with ``--gw-server-trace-faults``, ``faults_consulted`` of every case."""

import json

import pytest

from tests.conformance.test_plugin import inner_suite

pytest_plugins = ["pytester"]

SOURCE = '''
import httpx
import pytest
from conformance.client import GatewayClient, HarnessError


@pytest.fixture(scope="session")
def shared(conformance, target, api_key):
    """A session-cached exchange, as the suite's caches keep them: sent once, its transcript handed out."""
    client = GatewayClient(**conformance.client_settings(target, api_key))
    client.get("/models")
    return client.take_transcript()


@pytest.mark.requirement("T-001")
def test_sends_the_cached_request(shared, expect):
    expect("T-001", True, expected=1, received=1)


@pytest.mark.requirement("T-001")
def test_judges_the_cached_request(shared, make_client, expect):
    make_client().transcript.extend(shared)
    expect("T-001", True, expected=1, received=1)


@pytest.mark.requirement("T-001")
def test_chat(client, expect):
    client.post_json("/chat/completions", {"model": "m1", "messages": [{"role": "user", "content": "hi"}]})
    expect("T-001", True, expected=1, received=1)


@pytest.mark.requirement("T-001")
def test_no_request(expect):
    expect("T-001", True, expected=1, received=1)


@pytest.mark.requirement("T-001")
def test_answer_without_request_id(make_client, expect):
    other = make_client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})))
    other.get("/models")
    expect("T-001", True, expected=1, received=1)


@pytest.mark.requirement("T-001")
def test_harness_error(client):
    client.get("/models")
    raise HarnessError("the connection broke")
'''


@pytest.fixture
def run(pytester, monkeypatch):
    suite = inner_suite(pytester, monkeypatch)

    def run(*args) -> dict:
        suite(*args, source=SOURCE, name="test_traced")
        data = json.loads((pytester.path / "out" / "results.json").read_text())
        return {c["id"].split("::")[-1]: c for c in data["cases"]} | {"run": data["run"]}
    return run


def test_request_ids_name_the_exchanges_a_case_judged(run):
    cases = run()
    assert cases["run"]["server_trace_faults"] is False
    assert cases["test_sends_the_cached_request"]["request_ids"] == []  # the cache kept its exchange
    (cached,) = cases["test_judges_the_cached_request"]["request_ids"]
    (chat,) = cases["test_chat"]["request_ids"]
    assert cached.startswith("req_") and chat.startswith("req_") and cached != chat
    assert cases["test_no_request"]["request_ids"] == []
    assert cases["test_answer_without_request_id"]["request_ids"] == [None]
    assert not any("faults_consulted" in case for name, case in cases.items() if name != "run")


def test_faults_consulted_follow_the_requests_behind_each_verdict(run):
    cases = run("--gw-server-trace-faults")
    assert cases["run"]["server_trace_faults"] is True
    sent, judged = cases["test_sends_the_cached_request"], cases["test_judges_the_cached_request"]
    # Sent while the first case ran (no transcript keeps it there), judged by the second: both depend on it.
    assert "MODELS-001" in sent["faults_consulted"] and "MODELS-001" in judged["faults_consulted"]
    assert not any(f.startswith(("CHAT-", "TOOLS-")) for f in judged["faults_consulted"])
    chat = cases["test_chat"]["faults_consulted"]
    assert {"CHAT-008", "HEADERS-003"} <= set(chat) and "MODELS-001" not in chat and chat == sorted(chat)
    assert cases["test_no_request"]["faults_consulted"] == []
    assert cases["test_answer_without_request_id"]["faults_consulted"] is None  # unknown: rerun it
    assert cases["test_harness_error"]["outcome"] == "ERROR"
    assert cases["test_harness_error"]["faults_consulted"] is None  # an exchange may be missing


def test_tracing_needs_the_embedded_server(pytester, monkeypatch):
    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)
    result = pytester.runpytest("--target-url", "http://127.0.0.1:9", "--gw-server-trace-faults", "--collect-only",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--gw-server-trace-faults" in result.stderr.str() + result.stdout.str()
