"""CLI, keys parsing, environment config, and real servers (werkzeug CLI and gunicorn) answering on loopback."""

from __future__ import annotations

import gc
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reference_server.__main__ import main
from reference_server.policy.keys import parse_keys
from reference_server.settings import config_from_env
from tests.server_process import free_port, stop, wait_healthy


def test_listings(capsys):
    assert main(["--list-faults"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^CHAT-STREAM-001 +The first chunk", out, re.M) and "[also breaks:" in out
    assert main(["--list-variants"]) == 0 and "sse-crlf" in capsys.readouterr().out
    assert main(["--list-profiles"]) == 0 and "unit23" in capsys.readouterr().out.split()


@pytest.mark.parametrize("argv", [["--fault", "NOPE-001"], ["--variant", "nope"], ["--profile", "nope"]])
def test_bad_startup_options_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"sk-a": {"tier": "popular"}, "sk-b": null}', {"sk-a": {"tier": "popular"}, "sk-b": {}}),
        ("sk-a:\n  balance: 0\n", {"sk-a": {"balance": 0}}),
        ('["sk-a", "sk-b"]', {"sk-a": {}, "sk-b": {}}),
        ("# comment\nsk-a, sk-b\nsk-c", {"sk-a": {}, "sk-b": {}, "sk-c": {}}),
        ("", {}),
    ],
)
def test_parse_keys_forms(text, expected):
    assert parse_keys(text) == expected


def test_parse_keys_rejects_bad_settings():
    with pytest.raises(ValueError):
        parse_keys('{"sk-a": 5}')


def test_config_from_env(tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("sk-from-file\n")
    config = config_from_env({"REFERENCE_SERVER_PROFILE": "unit23", "REFERENCE_SERVER_FAULTS": "SSE-002, SSE-005",
                              "REFERENCE_SERVER_VARIANTS": "sse-crlf", "REFERENCE_SERVER_KEYS_FILE": str(keys_file),
                              "REFERENCE_SERVER_KEYS": "sk-from-env", "REFERENCE_SERVER_CLOCK": "1234"})
    assert config.profile.name == "unit23" and config.faults == {"SSE-002", "SSE-005"}
    assert config.variants == {"sse-crlf"} and config.clock == 1234
    assert {"sk-from-file", "sk-from-env", config.profile.test_key} <= set(config.keys)


@pytest.mark.slow
def test_cli_serves_profile_with_fault():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "reference_server", "--port", str(port), "--profile", "unit23",
                             "--fault", "SSE-002"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(proc, url).json()["profile"] == "unit23"
        key = "unit23-sk-482d0f3ffd1c7284273f58ff6373fa8663e9750fbee03cc7"
        resp = httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                          json={"model": "deepseek-v3", "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200 and "[DONE]" not in resp.text
    finally:
        stop(proc)


@pytest.mark.slow
def test_gunicorn_starts_and_answers():
    pytest.importorskip("gunicorn")
    port = free_port()
    env = {**os.environ, "REFERENCE_SERVER_BIND": f"127.0.0.1:{port}", "REFERENCE_SERVER_PROFILE": "openai",
           "REFERENCE_SERVER_THREADS": "4"}
    conf = os.path.join(os.path.dirname(__file__), "..", "..", "reference_server", "gunicorn_conf.py")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", conf, "reference_server.wsgi:app"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(proc, url).json()["profile"] == "openai"
        with httpx.stream("POST", url + "/v1/chat/completions",
                          headers={"Authorization": "Bearer sk-conformance-test"},
                          json={"model": "gpt-4o-mini", "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]}) as resp:
            assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
            # per-request headers reach gunicorn through ReferenceResponse's sent groups, past its own header checks
            assert resp.headers["x-request-id"].startswith("req_")
            assert resp.headers["x-ratelimit-remaining-requests"].isdigit()
            assert "".join(resp.iter_text()).endswith("data: [DONE]\n\n")
    finally:
        stop(proc)


def test_the_production_config_freezes_what_the_worker_loaded():
    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "reference_server" / "gunicorn_conf.py"))
    before = gc.get_freeze_count()
    try:
        conf["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
