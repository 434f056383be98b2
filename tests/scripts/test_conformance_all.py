"""scripts/conformance_all.py: one embedded conformance run per bundled profile, failing when any fails."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from gateway_spec import profile_names

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "conformance_all.py"


def _load():
    spec = importlib.util.spec_from_file_location("conformance_all", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_every_profile_into_its_own_report_dir(monkeypatch, tmp_path):
    module = _load()
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command, cwd: calls.append(command) or 0)
    assert module.main(["--report-dir", str(tmp_path), "-k", "sse"]) == 0
    assert [c[c.index("--profile") + 1] for c in calls] == list(profile_names())
    assert all(c[c.index("--report-dir") + 1] == str(tmp_path / c[c.index("--profile") + 1]) for c in calls)
    assert all(c[-2:] == ["-k", "sse"] for c in calls)


def test_exits_non_zero_naming_the_failing_profile(monkeypatch, capsys, tmp_path):
    module = _load()
    monkeypatch.setattr(subprocess, "call", lambda command, cwd: int(command[command.index("--profile") + 1] == "unit23"))
    assert module.main(["--report-dir", str(tmp_path)]) == 1
    assert "profiles failing: unit23" in capsys.readouterr().out


@pytest.mark.slow
def test_a_real_run_of_one_profile_passes(tmp_path):
    module = _load()
    original = module.profile_names
    module.profile_names = lambda: ["openai"]
    try:
        assert module.main(["--report-dir", str(tmp_path), "-k", "sse", "-p", "no:randomly"]) == 0
    finally:
        module.profile_names = original
    assert (tmp_path / "openai" / "results.json").is_file()
