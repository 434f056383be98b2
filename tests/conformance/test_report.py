"""Report building: requirement verdicts from cases, summaries, markdown and redacted files."""

import json

from conformance.baseline import Baseline, BaselineEntry
from conformance.redact import Redactor
from conformance.report import (
    build_results,
    merge_record,
    render_markdown,
    run_label,
    transcript_name,
    write_reports,
)
from gateway_spec import Requirement

REGISTRY = {
    "T-001": Requirement("T-001", "MUST", "The thing MUST happen.", "alpha"),
    "T-002": Requirement("T-002", "SHOULD", "The thing SHOULD happen.", "alpha"),
    "T-003": Requirement("T-003", "MUST", "Never on the wire.", "beta", untestable="TLS only"),
    "U-001": Requirement("U-001", "MAY", "Maybe.", "gamma", feature="f"),
}
RUN = {"target": "http://gw", "profile": "fake", "requests": 3, "prompt_tokens": 1, "completion_tokens": 2,
       "started": "2026-12-02T10:00:00+00:00", "finished": "2026-12-02T10:01:00+00:00", "suite_version": "0.1.0"}


def case(cid, verdicts, outcome, **extra):
    return {"id": cid, "requirements": verdicts, "outcome": outcome, "message": "", "duration_ms": 1.0, **extra}


CASES = [
    case("a", {"T-001": "PASS", "T-002": "WARN"}, "WARN",
         violations=[{"requirement": "T-002", "expected": "exp-x", "received": "rec-y", "note": None,
                      "untestable": False}], transcript="> GET /x"),
    case("b", {"T-001": "FAIL"}, "FAIL", message="boom",
         violations=[{"requirement": "T-001", "expected": "", "received": "", "note": "no model",
                      "untestable": True}], transcript="> GET /y"),
]


def test_requirement_verdict_is_its_worst_case_and_lists_its_cases():
    results = build_results(CASES, REGISTRY, Baseline(), RUN)
    t1 = results["requirements"]["T-001"]
    assert t1["verdict"] == "FAIL" and [c["id"] for c in t1["cases"]] == ["a", "b"]
    assert t1["level"] == "MUST" and t1["area"] == "alpha" and t1["text"] == "The thing MUST happen."
    assert results["requirements"]["T-002"]["verdict"] == "WARN"
    assert results["requirements"]["T-003"]["verdict"] == "UNTESTABLE"
    assert results["requirements"]["U-001"]["verdict"] == "NOT_RUN"


def test_summary_counts_cases_requirements_and_levels():
    summary = build_results(CASES, REGISTRY, Baseline(), RUN)["summary"]
    assert summary["cases"] == {"WARN": 1, "FAIL": 1}
    assert summary["requirements"] == {"FAIL": 1, "WARN": 1, "UNTESTABLE": 1, "NOT_RUN": 1}
    assert summary["levels"]["MUST"] == {"FAIL": 1, "UNTESTABLE": 1}


def test_requirement_globs_limit_the_listing_to_selected_or_run_requirements():
    results = build_results(CASES[:1], REGISTRY, Baseline(), RUN, ("T-*",))
    assert set(results["requirements"]) == {"T-001", "T-002", "T-003"}


def test_stale_requirement_wide_baseline_entry_is_xpass():
    results = build_results([case("a", {"T-001": "PASS"}, "PASS")], REGISTRY,
                            Baseline([BaselineEntry("T-001", "old bug")]), RUN)
    assert results["requirements"]["T-001"]["verdict"] == "XPASS"


def test_case_entries_point_at_transcripts_only_when_there_is_one():
    cases = build_results(CASES + [case("c::d", {"T-001": "PASS"}, "PASS")], REGISTRY, Baseline(), RUN)["cases"]
    assert cases[0]["transcript"] == "transcripts/a.txt"
    assert cases[2]["transcript"] is None
    assert set(cases[0]) >= {"id", "requirements", "outcome", "message", "duration_ms"}


def test_markdown_shows_findings_with_text_expected_received_and_not_testable():
    md = render_markdown(build_results(CASES, REGISTRY, Baseline(), RUN))
    assert "| MUST |" in md
    assert "### T-001 (MUST): FAIL" in md and "> The thing MUST happen." in md
    assert "Not testable: no model" in md
    assert "Expected: `exp-x`" in md and "Received: `rec-y`" in md


def test_written_files_are_redacted(tmp_path):
    secret = "sk-report-secret-123456"
    cases = [dict(CASES[0], transcript=f"Authorization: Bearer {secret}", message=secret)]
    results = build_results(cases, REGISTRY, Baseline(), dict(RUN, note=secret))
    files = write_reports(tmp_path, results, cases, Redactor([secret]))
    assert {p.name for p in files} == {"results.json", "report.md", "report.html", "a.txt"}
    for path in files:
        assert secret not in path.read_text()
    assert json.loads((tmp_path / "results.json").read_text())["run"]["target"] == "http://gw"


def test_merge_record_keeps_the_worst_of_two_phases():
    merged = merge_record(case("a", {"T-001": "PASS"}, "PASS"),
                          case("a", {"T-001": "ERROR"}, "ERROR", message="teardown failed"))
    assert merged["outcome"] == "ERROR" and merged["requirements"] == {"T-001": "ERROR"}
    assert merged["message"] == "teardown failed"


def test_transcript_names_are_safe_file_names():
    assert transcript_name("test_a.py::test_b[x/y]") == "test_a.py_test_b_x_y.txt"


def test_run_label_names_profile_and_target_stably():
    assert run_label({"profile": "unit23", "target": "https://gw.example.com:8443/"}) == "unit23@gw.example.com:8443"
    assert run_label({"profile": "p", "target": "https://gw.example.com/team-a"}) == "p@gw.example.com/team-a"
    assert run_label({"profile": "openai", "target": "embedded", "server_faults": ["SSE-002"],
                      "server_variants": ["sse-crlf"]}) == "openai@embedded[fault=SSE-002,variant=sse-crlf]"
