"""The preflight against real local servers: the reference server, one mounted under a prefix, a closed port."""

import json
import socket
import subprocess
import sys
import threading

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from conformance.embedded import EmbeddedServer
from conformance.preflight import PREFLIGHT_FAILED, Preflight, PreflightError, check_url
from gateway_spec import load_profile

PROFILE = load_profile("openai")
KEY = PROFILE.test_key
MODEL = PROFILE.get("models.default_chat")


@pytest.fixture(scope="module")
def reference():
    with EmbeddedServer("openai") as server:
        yield server.url


@pytest.fixture(scope="module")
def mounted():
    """The reference server mounted under /gateway (a reverse proxy's prefix); the root answers 404."""
    from reference_server import ServerConfig, create_app

    app = DispatcherMiddleware(Response("not here", status=404),
                               {"/gateway": create_app(ServerConfig.for_profile("openai"))})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def preflight(url, key=KEY, model=MODEL) -> list[str]:
    return Preflight(url, base_path=PROFILE.base_path, api_key=key, model=model, timeout=10).run()


def diagnosis(url, **kwargs) -> str:
    with pytest.raises(PreflightError) as info:
        preflight(url, **kwargs)
    return str(info.value)


def test_a_well_configured_target_passes(reference, mounted):
    assert preflight(reference) == []
    assert preflight(mounted + "/gateway") == []


@pytest.mark.parametrize("url", ["localhost:8080", "127.0.0.1:8080/v1", "ftp://host/", "http://"])
def test_a_url_without_scheme_or_host_is_refused_before_any_request(url):
    with pytest.raises(PreflightError, match="not an http:// or https:// URL"):
        check_url(url)
    if "://" not in url:
        assert f"http://{url}" in diagnosis(url)


def test_an_unreachable_port_names_the_url_called():
    port = closed_port()
    message = diagnosis(f"http://127.0.0.1:{port}")
    assert f"cannot reach the gateway: GET http://127.0.0.1:{port}/v1/models failed" in message


def test_a_doubled_base_path_says_drop_it(reference, mounted):
    message = diagnosis(reference + "/v1")
    assert f"GET {reference}/v1/v1/models answered HTTP 404" in message
    assert f"Drop /v1: --target-url {reference}" in message
    assert f"Drop /v1: --target-url {mounted}/gateway" in diagnosis(mounted + "/gateway/v1")


def test_a_doubled_base_path_without_key_says_both(reference):
    message = diagnosis(reference + "/v1/", key=None)
    assert message.startswith("no API key was given")
    assert f"you probably mean --target-url {reference}" in message


def test_a_server_mounted_elsewhere_is_not_at_the_base_path(mounted):
    message = diagnosis(mounted)
    assert "nothing answers at the profile's base path" in message
    assert f"GET {mounted}/v1/models answered HTTP 404" in message
    assert f"POST {mounted}/v1/chat/completions answered HTTP 404" in message


def test_a_missing_or_refused_key_stops_and_the_key_is_never_printed(reference):
    assert diagnosis(reference, key=None).startswith("no API key was given and the gateway requires one")
    wrong = "sk-preflight-wrong-key-0123456789"
    message = diagnosis(reference, key=wrong)
    assert message.startswith(f"the API key was refused: GET {reference}/v1/models answered HTTP 401")
    assert wrong not in message


def test_an_unknown_model_lists_the_gateway_models(reference):
    message = diagnosis(reference, model="no-such-model")
    assert message.startswith(f"the model 'no-such-model' does not exist at the gateway: POST {reference}/v1/chat")
    assert "GET /models lists: gpt-4o-mini" in message and "--gw-model" in message


def test_a_model_alias_or_other_case_the_gateway_accepts_passes(reference):
    assert preflight(reference, model=MODEL.upper()) == []


def run_suite(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--gw-profile", "openai",
                           "--gw-report-dir", str(tmp_path / "out"), "-p", "no:cacheprovider", "-q", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_the_plugin_stops_a_misconfigured_run_with_its_own_exit_code(reference, tmp_path):
    proc = run_suite("--target-url", reference + "/v1", "--gw-api-key", KEY, tmp_path=tmp_path)
    assert proc.returncode == PREFLIGHT_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.count("Drop /v1") == 1
    assert KEY not in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()  # no check ran, so no verdict was written


def test_no_preflight_lets_the_checks_judge(tmp_path):
    proc = run_suite("--target-url", f"http://127.0.0.1:{closed_port()}", "--gw-no-preflight",
                     "--gw-requirement", "MODELS-001", tmp_path=tmp_path)
    # No preflight: the first check reaches the closed port itself, and the run then stops as the target is down
    # (exit 2, verdicts incomplete) instead of letting every later check fail the same way.
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "conformance preflight" not in proc.stderr
    assert "conformance: target down: " in proc.stdout + proc.stderr


def test_collect_only_and_the_embedded_server_probe_nothing(tmp_path):
    proc = run_suite("--target-url", f"http://127.0.0.1:{closed_port()}", "--collect-only", tmp_path=tmp_path)
    assert proc.returncode == pytest.ExitCode.OK, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_the_two_probes_go_out_together():
    """The preflight costs one request latency, not two: /models is answered only once the chat probe arrived
    (or after 5 s, when the probes went one after the other)."""
    from werkzeug.wrappers import Request

    chat_arrived = threading.Event()
    overlapped: list[bool] = []

    @Request.application
    def app(request):
        if request.path.endswith("/chat/completions"):
            chat_arrived.set()
            return Response('{"object": "chat.completion", "choices": []}', content_type="application/json")
        overlapped.append(chat_arrived.wait(5))
        return Response(json.dumps({"object": "list", "data": [{"id": MODEL}]}), content_type="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert preflight(f"http://127.0.0.1:{server.server_port}") == []
    finally:
        server.shutdown()
        server.server_close()
    assert overlapped == [True]
