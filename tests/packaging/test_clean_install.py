"""Packaging truth: the wheel, installed into a fresh virtual environment outside the checkout, runs the suite, the
reference server and the documented gunicorn command; the sdist holds what its own tests read.

Slow (a wheel build, a fresh environment, a whole suite run), and it needs the package index or a warm uv cache to
install the dependencies; it runs in the tests environment like every other test.
"""

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")
pytestmark = pytest.mark.slow


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user's shell with the fresh venv first on PATH: nothing of this checkout or this run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "CONFORMANCE_", "REFERENCE_SERVER_", "PYTHON", "VIRTUAL_ENV", "TOX_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    if UV:
        _run([UV, "build", "-q", "--sdist", "--wheel", "-o", out, ROOT])
    else:
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT])
        _run([sys.executable, "-m", "build", "--sdist", "-o", out, ROOT])
    return out


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with the wheel and its [serve] extra (gunicorn)."""
    path = tmp_path_factory.mktemp("fresh") / "venv"
    wheel = next(dist.glob("*.whl"))
    python = path / "bin" / "python"
    if UV:
        _run([UV, "venv", "-q", "--python", sys.executable, path])
        _run([UV, "pip", "install", "-q", "--python", python, f"{wheel}[serve]"])
    else:
        _run([sys.executable, "-m", "venv", path])
        _run([python, "-m", "pip", "install", "-q", f"{wheel}[serve]"])
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, deadline_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_the_installed_package_is_not_the_checkout(venv, tmp_path):
    proc = _run([venv / "bin" / "python", "-c", "import conformance, gateway_spec; "
                 "print(conformance.__file__); print(gateway_spec.spec_dir())"], cwd=tmp_path, env=_clean_env(venv))
    for line in proc.stdout.splitlines():
        assert str(ROOT) not in line and str(venv) in line, line


def test_the_suite_runs_from_the_installed_wheel(venv, tmp_path):
    proc = _run([venv / "bin" / "llm-conformance", "--profile", "openai", "--report-dir", tmp_path / "out",
                 "-p", "no:cacheprovider", "-q"], cwd=tmp_path, env=_clean_env(venv))
    assert "llm-gateway-conformance" in proc.stdout and "warnings summary" not in proc.stdout
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "junit.xml").is_file()


def test_the_reference_server_and_the_gunicorn_command_serve_from_the_installed_wheel(venv, tmp_path):
    env = _clean_env(venv)
    port = _free_port()
    server = subprocess.Popen([venv / "bin" / "llm-reference-server", "--port", str(port), "--profile", "unit23"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_healthy(f"http://127.0.0.1:{port}/healthz", server).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    port = _free_port()
    env.update(REFERENCE_SERVER_BIND=f"127.0.0.1:{port}", REFERENCE_SERVER_PROFILE="openai")
    # The README's command, word for word, from a directory that holds no reference_server/ folder.
    gunicorn = subprocess.Popen([venv / "bin" / "gunicorn", "-c", "python:reference_server.gunicorn_conf",
                                 "reference_server.wsgi:app"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_healthy(f"http://127.0.0.1:{port}/healthz", gunicorn).status_code == 200
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5,
                           headers={"Authorization": "Bearer sk-conformance-test"})
        assert models.status_code == 200 and models.json()["object"] == "list"
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=20)


def test_the_sdist_holds_what_its_tests_read(dist):
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in ("LICENSE", "pyproject.toml", "README.md", "docs/profiles.md", "scripts/conformance_all.py",
                   "spec/openapi.yaml", "tests/conftest.py", "tests/spec/test_profiles.py", "tox.ini"):
        assert needed in names, f"{needed} missing from {sdist.name}"
