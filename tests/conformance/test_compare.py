"""llm-conformance compare: the matrix across runs, regressions and fixes, exit codes."""

import json
from pathlib import Path

import pytest

from conformance import cli, compare


def write_run(root: Path, name: str, verdicts: dict[str, str], *, target="http://gw:4000", profile="openai",
              started="2026-12-01T10:00:00+00:00", report=True, version="1.0") -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    requirements = {rid: {"level": "SHOULD" if v == "WARN" else "MUST", "area": "alpha", "feature": None,
                          "text": f"Text of {rid}.", "verdict": v, "untestable": None, "cases": []}
                    for rid, v in verdicts.items()}
    run = {"target": target, "profile": profile, "started": started, "finished": started, "suite_version": "0.1.0"}
    (run_dir / "results.json").write_text(json.dumps({"schema_version": version, "run": run, "summary": {},
                                                       "requirements": requirements, "cases": []}))
    if report:
        (run_dir / "report.html").write_text("<html></html>")
    return run_dir


@pytest.fixture
def two_runs(tmp_path):
    old = write_run(tmp_path, "old", {"T-001": "PASS", "T-002": "FAIL", "T-003": "WARN", "T-004": "PASS"},
                    started="2026-12-01T10:00:00+00:00")
    new = write_run(tmp_path, "new", {"T-001": "FAIL", "T-002": "PASS", "T-003": "WARN", "T-004": "ERROR"},
                    started="2026-12-02T10:00:00+00:00")
    return old, new


def test_marks_regressions_and_fixes_against_the_earlier_run_of_the_same_target(tmp_path, two_runs):
    old, new = two_runs
    runs, marks, _ = compare.compare([new, old], tmp_path / "out")  # argument order does not matter: dates do
    assert [r.path.parent.name for r in runs] == ["old", "new"]
    assert marks == {(1, "T-001"): ("regressed", "PASS"), (1, "T-002"): ("fixed", "FAIL")}  # ERROR is no verdict


def test_runs_of_other_targets_are_columns_but_never_compared(tmp_path):
    write_run(tmp_path, "a", {"T-001": "PASS"}, started="2026-12-01T10:00:00+00:00")
    write_run(tmp_path, "b", {"T-001": "FAIL"}, target="http://other:1", started="2026-12-02T10:00:00+00:00")
    runs, marks, _ = compare.compare([tmp_path], tmp_path / "out")  # a folder of report dirs
    assert len(runs) == 2 and marks == {}


def test_matrix_md_and_html_link_each_cell_to_its_run_report(tmp_path, two_runs):
    out = tmp_path / "out"
    compare.compare(list(two_runs), out)
    md = (out / "matrix.md").read_text()
    assert "| T-001 (MUST) | [PASS](../old/report.html#req-T-001) | [FAIL](../new/report.html#req-T-001) (regressed) |" in md
    assert "1 regressions, 1 fixes" in md and "Regression in run 2 (openai@gw:4000): T-001 PASS to FAIL" in md
    html = (out / "matrix.html").read_text()
    assert 'href="../new/report.html#req-T-002"' in html and 'class="mark fixed"' in html
    assert '<span id="regressions">1</span>' in html


def test_fail_on_regression_exit_code_through_the_cli(tmp_path, two_runs, capsys):
    args = ["compare", *map(str, two_runs), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 0
    assert cli.main([*args, "--fail-on-regression"]) == 1
    assert "regression: openai@gw:4000 T-001 PASS -> FAIL" in capsys.readouterr().out


def test_only_the_newest_run_of_a_target_decides_the_exit_code(tmp_path):
    write_run(tmp_path, "r1", {"T-001": "PASS"}, started="2026-12-01T10:00:00+00:00")
    write_run(tmp_path, "r2", {"T-001": "FAIL"}, started="2026-12-02T10:00:00+00:00")
    write_run(tmp_path, "r3", {"T-001": "FAIL"}, started="2026-12-03T10:00:00+00:00")
    assert compare.main([str(tmp_path), "--out", str(tmp_path / "out"), "--fail-on-regression"]) == 0


def test_unreadable_input_is_exit_2_with_the_file_named(tmp_path, capsys):
    assert compare.main([str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    write_run(tmp_path, "future", {"T-001": "PASS"}, version="2.0")
    assert compare.main([str(tmp_path / "future"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing: no such file" in err and "schema_version 2.0 is newer" in err


def test_hostile_labels_and_texts_are_escaped(tmp_path):
    write_run(tmp_path, "x", {"T-001": "PASS"}, target='http://gw/"><script>alert(1)</script>',
              profile="<img src=x onerror=alert(1)>")
    compare.compare([tmp_path / "x"], tmp_path / "out")
    html = (tmp_path / "out" / "matrix.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
