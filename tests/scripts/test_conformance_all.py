"""scripts/conformance_all.py: one embedded conformance run per bundled profile, failing when any fails."""

from __future__ import annotations

import importlib.util
import json
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
    assert [c[c.index("--gw-profile") + 1] for c in calls] == list(profile_names())
    assert all(c[c.index("--gw-report-dir") + 1] == str(tmp_path / c[c.index("--gw-profile") + 1]) for c in calls)
    assert all(c[-2:] == ["-k", "sse"] for c in calls)


def test_exits_non_zero_naming_the_failing_profile(monkeypatch, capsys, tmp_path):
    module = _load()
    monkeypatch.setattr(subprocess, "call", lambda command, cwd: int(command[command.index("--gw-profile") + 1] == "unit23"))
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
    matrix = (tmp_path / "matrix.md").read_text()
    assert "openai@embedded" in matrix and "[PASS](openai/report.html#req-SSE-001)" in matrix


def test_ends_with_a_matrix_of_the_runs_and_the_kept_real_gateway_runs(monkeypatch, tmp_path, capsys):
    """The matrix covers each profile's run and every dated run kept under reports/ (outside the report dir)."""
    module = _load()
    run = {"schema_version": "1.0", "summary": {}, "cases": [],
           "requirements": {"SSE-001": {"level": "MUST", "area": "sse", "text": "t", "verdict": "PASS", "cases": []}}}

    def fake_call(command, cwd):
        out = Path(command[command.index("--gw-report-dir") + 1])
        out.mkdir(parents=True)
        profile = command[command.index("--gw-profile") + 1]
        (out / "results.json").write_text(json.dumps({**run, "run": {"profile": profile, "target": "embedded"}}))
        return 0

    kept = tmp_path / "reports" / "gateways" / "2026-12-01-somegw"
    kept.mkdir(parents=True)
    (kept / "results.json").write_text(json.dumps({**run, "run": {"profile": "openai", "target": "http://gw:4000",
                                                                 "started": "2026-12-01T10:00:00+00:00"}}))
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(subprocess, "call", fake_call)
    assert module.main(["--report-dir", str(tmp_path / "reports" / "conformance")]) == 0
    matrix = (tmp_path / "reports" / "conformance" / "matrix.md").read_text()
    assert "openai@gw:4000" in matrix
    assert all(f"{p}@embedded" in matrix for p in profile_names())
