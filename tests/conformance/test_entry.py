"""The pytest11 entry point leaves unrelated pytest runs alone: no fixture, no hook, no heavy import."""

import os
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

PROBE = '''
import sys

def test_probe():
    loaded = sorted(m for m in ("conformance.plugin", "conformance.fixtures", "conformance.client", "httpx",
                                "werkzeug", "yaml", "schemathesis", "hypothesis", "allure") if m in sys.modules)
    print("LOADED", loaded)
'''


def run_isolated(tmp_path, source: str, *args: str) -> subprocess.CompletedProcess:
    """A pytest run with only this package's entry point (as an unrelated project would see it)."""
    (tmp_path / "test_unrelated.py").write_text(source)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.entry", "-p", "no:cacheprovider",
                           "-q", "-s", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_an_unrelated_run_imports_nothing_heavy(tmp_path):
    proc = run_isolated(tmp_path, PROBE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED []" in proc.stdout


@pytest.mark.parametrize("name", ["client", "expect", "profile", "target", "api_key", "requirements",
                                  "conformance", "make_client"])
def test_an_unrelated_run_gets_none_of_the_suite_fixtures(tmp_path, name):
    proc = run_isolated(tmp_path, f"def test_x({name}):\n    pass\n")
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED
    assert f"fixture '{name}' not found" in proc.stdout


def test_an_unrelated_requirement_marker_is_left_alone(tmp_path):
    source = ('import pytest\n\n@pytest.mark.requirement("not-a-registry-id")\ndef test_x():\n    pass\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    requirement: a project's own marker\n")
    proc = run_isolated(tmp_path, source)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_conformance_run_loads_the_plugin_and_its_fixtures(tmp_path):
    source = '''
import sys

def test_x(profile, conformance):
    assert "conformance.plugin" in sys.modules and profile.name == "openai"
'''
    proc = run_isolated(tmp_path, source, "--gw-profile", "openai", "--gw-report-dir", str(tmp_path / "out"),
                        "test_unrelated.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fuzz_without_schemathesis_is_a_usage_error(tmp_path):
    source = "def test_x():\n    pass\n"
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['schemathesis'] = None\n")
    env_path = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    (tmp_path / "test_unrelated.py").write_text(source)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": env_path}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.entry", "-p", "no:cacheprovider",
                           "--gw-fuzz", "--gw-profile", "openai", "--gw-report-dir", "out", "test_unrelated.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "pip install 'llm-gateway-conformance[fuzz]'" in proc.stderr
