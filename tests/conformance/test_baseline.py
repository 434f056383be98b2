"""Vendor baselines: file shapes, case matching, and how they turn verdicts into XFAIL / XPASS."""

import pytest

from conformance.baseline import Baseline, BaselineError
from conformance.expect import Violation
from conformance.outcomes import FAIL, PASS, SKIP, UNTESTABLE, XFAIL, XPASS, grade_case, requirement_verdict
from gateway_spec import Profile, Requirement

REGISTRY = {
    "T-001": Requirement("T-001", "MUST", "must text", "t"),
    "T-002": Requirement("T-002", "SHOULD", "should text", "t"),
}
PROFILE = Profile(name="fake", raw={"features": []})


def _write(tmp_path, text, name="baseline.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_expected_failures_list_with_reasons_and_cases(tmp_path):
    b = Baseline.load(_write(tmp_path, """
expected_failures:
  - {requirement: T-001, reason: known bug}
  - {requirement: T-002, case: "test_x.py::test_one"}
"""))
    assert b.entry_for("T-001", "anything").reason == "known bug"
    assert b.entry_for("T-002", "test_x.py::test_one") is not None
    assert b.entry_for("T-002", "test_x.py::test_two") is None
    assert b.requirement_wide("T-001") is not None and b.requirement_wide("T-002") is None


def test_mapping_and_plain_list_and_json_shapes(tmp_path):
    assert Baseline.load(_write(tmp_path, "T-001: why\n")).entry_for("T-001", "c").reason == "why"
    assert Baseline.load(_write(tmp_path, "- T-001\n- T-002\n")).entry_for("T-002", "c") is not None
    json_path = _write(tmp_path, '{"expected_failures": [{"requirement": "T-001"}]}', "b.json")
    assert Baseline.load(json_path).entry_for("T-001", "c") is not None


def test_case_patterns_match_by_glob_or_suffix(tmp_path):
    b = Baseline.load(_write(tmp_path, "- {requirement: T-001, case: 'test_stream*'}\n"
                                       "- {requirement: T-002, case: 'test_b'}\n"))
    assert b.entry_for("T-001", "test_stream_role") is not None
    assert b.entry_for("T-002", "mod.py::test_b") is not None


@pytest.mark.parametrize("text", ["expected_failures: 3\n", "- {reason: no id}\n", "a: [unclosed\n"])
def test_malformed_baselines_are_rejected(tmp_path, text):
    with pytest.raises(BaselineError):
        Baseline.load(_write(tmp_path, text))


def test_missing_file_is_an_error_and_none_is_empty(tmp_path):
    with pytest.raises(BaselineError):
        Baseline.load(tmp_path / "nope.yaml")
    assert Baseline.load(None).entries == []


def test_baselined_failure_grades_xfail_and_other_requirements_keep_their_verdict(tmp_path):
    b = Baseline.load(_write(tmp_path, "- T-001\n"))
    grade = grade_case("c", ["T-001", "T-002"], REGISTRY, PROFILE,
                       [Violation("T-001", "x", "y")], None, b, {"T-001", "T-002"})
    assert grade.requirements == {"T-001": XFAIL, "T-002": PASS}
    assert grade.outcome == XFAIL


def test_requirement_wide_entry_that_passes_everywhere_is_stale():
    entry = object()
    assert requirement_verdict([PASS, PASS], entry) == XPASS
    assert requirement_verdict([PASS, XFAIL], entry) == XFAIL
    assert requirement_verdict([PASS, FAIL]) == FAIL


def test_case_specific_entry_that_passes_is_xpass_at_once(tmp_path):
    b = Baseline.load(_write(tmp_path, "- {requirement: T-001, case: 'mod.py::test_a'}\n"))
    assert grade_case("mod.py::test_a", ["T-001"], REGISTRY, PROFILE, [], None, b, {"T-001"}).outcome == XPASS
    assert grade_case("mod.py::test_b", ["T-001"], REGISTRY, PROFILE, [], None, b, {"T-001"}).outcome == PASS


def test_a_requirement_without_an_evaluated_expectation_is_untestable_not_pass(tmp_path):
    """Every PASS has evidence: what no expectation judged in the case is UNTESTABLE, with the reason."""
    b = Baseline.load(None)
    grade = grade_case("c", ["T-001", "T-002"], REGISTRY, PROFILE, [], None, b, {"T-001"})
    assert grade.requirements == {"T-001": PASS, "T-002": UNTESTABLE}
    assert grade.outcome == PASS and "T-002" in grade.message and "no expectation" in grade.message
    nothing = grade_case("c", ["T-001"], REGISTRY, PROFILE, [], None, b)
    assert nothing.requirements == {"T-001": UNTESTABLE} and nothing.pytest_outcome("must") == "skipped"
    # a baseline entry never turns a requirement nothing judged into XPASS
    stale = Baseline.load(_write(tmp_path, "- {requirement: T-001, case: c}\n"))
    assert grade_case("c", ["T-001"], REGISTRY, PROFILE, [], None, stale).requirements == {"T-001": UNTESTABLE}
    assert requirement_verdict([PASS, UNTESTABLE]) == PASS and requirement_verdict([UNTESTABLE, SKIP]) == UNTESTABLE
