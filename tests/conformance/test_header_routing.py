"""``--gw-header`` reaches every client the suite builds, the official SDK's included.

The target is the reference server behind a gate that refuses, with the gateway's own 400 envelope, every request
without a routing header, as gateways routed by a header do. With ``--gw-header`` the SDK checks pass; without it they
fail on the gate's 400, which shows that the gate is real and that the SDK requests are the ones carrying the header.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from reference_server import ServerConfig, create_app
from tests.proof.test_hostile_targets import suite_plugins

ROUTE_HEADER, ROUTE_VALUE = "X-Gateway-Route", "conformance-route"
GATE_MESSAGE = f"header {ROUTE_HEADER} required"
# SDK checks that reach a real gateway (the X-Mock-* ones skip against --target-url).
SDK_CHECKS = ("SDK-001", "SDK-002", "SDK-003", "SDK-008", "SDK-012")


class RouteGate:
    """WSGI middleware: 400 with the OpenAI envelope unless the routing header carries its value."""

    def __init__(self, app) -> None:
        self.app, self.refused = app, 0

    def __call__(self, environ, start_response):
        if environ.get("HTTP_" + ROUTE_HEADER.upper().replace("-", "_")) != ROUTE_VALUE:
            self.refused += 1
            body = json.dumps({"error": {"message": GATE_MESSAGE, "type": "invalid_request_error",
                                         "param": None, "code": "missing_route"}}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def gated_target():
    gate = RouteGate(create_app(ServerConfig.for_profile("openai")))
    server = make_server("127.0.0.1", 0, gate, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", gate
    server.shutdown()


def _run(target: str, tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONFORMANCE_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    key = ServerConfig.for_profile("openai").profile.test_key
    args = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--target-url", target,
            "--gw-api-key", key, "--gw-profile", "openai", "--gw-report-dir", str(report), "-q", "-p", "no:cacheprovider",
            *suite_plugins(), *extra]
    for rid in SDK_CHECKS:
        args += ["--gw-requirement", rid]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    path = report / "results.json"
    assert path.is_file(), f"no results.json (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}"
    return json.loads(path.read_text(encoding="utf-8"))


def test_sdk_clients_send_the_header(gated_target, tmp_path):
    target, gate = gated_target
    data = _run(target, tmp_path, "--gw-header", f"{ROUTE_HEADER}: {ROUTE_VALUE}")
    verdicts = {rid: data["requirements"][rid]["verdict"] for rid in SDK_CHECKS}
    assert verdicts == dict.fromkeys(SDK_CHECKS, "PASS"), verdicts


def test_without_the_header_the_gate_refuses_the_sdk(gated_target, tmp_path):
    target, _ = gated_target
    data = _run(target, tmp_path)
    verdicts = {rid: data["requirements"][rid]["verdict"] for rid in SDK_CHECKS}
    assert verdicts["SDK-001"] == "FAIL", verdicts
    sdk_case = next(c for c in data["cases"] if c["id"].endswith("test_sdk.py::test_create"))
    # The message says what the violations do not: the gate's refusal is in one or the other.
    said = sdk_case["message"] + " ".join(str(v.get("received")) for v in sdk_case.get("violations", []))
    assert GATE_MESSAGE in said, sdk_case
