"""Grading: from what a case observed to per-requirement verdicts, a case verdict and a requirement verdict.

Verdicts, worst first: FAIL, XPASS, ERROR, WARN, XFAIL, PASS, UNTESTABLE, SKIP. A requirement's verdict is its
worst case. MUST (and MAY of a claimed feature) → FAIL; SHOULD → WARN; unclaimed feature → SKIP; a harness exception
→ ERROR; a baselined failure → XFAIL; a baselined case that passes → XPASS.

Every PASS has evidence: a requirement of a case grades PASS only when at least one expectation for it was evaluated
in that case (``Expect.evaluated``); a case that observed nothing about it grades it UNTESTABLE, with the reason.
UNTESTABLE ranks below PASS, so a requirement that passed with evidence in one case and was not reached in another
is PASS, and one no case could judge is UNTESTABLE.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.baseline import Baseline
from conformance.expect import StopCase, Violation

PASS, FAIL, WARN, SKIP, XFAIL, XPASS, ERROR = "PASS", "FAIL", "WARN", "SKIP", "XFAIL", "XPASS", "ERROR"
# Requirement-only verdicts (reports): untestable per the registry; selected but no case ran.
UNTESTABLE, NOT_RUN = "UNTESTABLE", "NOT_RUN"
SEVERITY = {FAIL: 8, XPASS: 7, ERROR: 6, WARN: 5, XFAIL: 4, PASS: 3, UNTESTABLE: 2, SKIP: 1}
VERDICTS = tuple(sorted(SEVERITY, key=SEVERITY.get, reverse=True))


def worst(verdicts: Iterable[str], default: str = SKIP) -> str:
    """The most severe verdict of ``verdicts`` (``default`` when empty)."""
    return max(verdicts, key=SEVERITY.__getitem__, default=default)


@dataclass
class CaseGrade:
    """The grade of one case: per-requirement verdicts, the case verdict and a short reason."""

    requirements: dict[str, str]
    outcome: str
    message: str = ""
    violations: list[Violation] = field(default_factory=list)

    def pytest_outcome(self, fail_on: str) -> str:
        """passed / failed / skipped, as pytest should report the case."""
        if self.outcome in (FAIL, XPASS, ERROR) or (self.outcome == WARN and fail_on == "should"):
            return "failed"
        if self.outcome in (SKIP, XFAIL, UNTESTABLE):
            return "skipped"
        return "passed"


def unclaimed_reason(req_ids: Iterable[str], registry: Mapping[str, Any], profile: Any) -> str | None:
    """Skip reason when none of ``req_ids`` is checkable under the profile (all features unclaimed)."""
    features = [registry[r].feature for r in req_ids]
    if not features or any(profile.claims(f) for f in features):
        return None
    missing = ", ".join(sorted({f for f in features if f}))
    return f"feature {missing} not claimed by profile {profile.name}"


def grade_case(case_id: str, req_ids: Iterable[str], registry: Mapping[str, Any], profile: Any,
               violations: list[Violation], exc: BaseException | None, baseline: Baseline,
               evaluated: Collection[str] = ()) -> CaseGrade:
    """Grade one executed case (its call phase). ``evaluated``: the requirements an expectation was evaluated for;
    a requirement outside it that would PASS is UNTESTABLE (no evidence)."""
    violated = {v.requirement: v for v in violations}
    if isinstance(exc, pytest.fail.Exception):  # pytest.fail() in a check is a failed assertion, not a crash
        exc = AssertionError(str(exc))
    harness = exc is not None and not isinstance(exc, (AssertionError, StopCase))
    verdicts: dict[str, str] = {}
    for rid in req_ids:
        req = registry[rid]
        if not profile.claims(req.feature):
            verdicts[rid] = SKIP
        elif rid in violated or isinstance(exc, AssertionError):
            # "Not testable" is FAIL at any level: a broken prerequisite is never a mere warning.
            untestable = rid in violated and violated[rid].untestable
            verdicts[rid] = WARN if req.level == "SHOULD" and not untestable else FAIL
        elif harness:
            verdicts[rid] = ERROR
        elif rid in evaluated:
            verdicts[rid] = PASS
        else:
            verdicts[rid] = UNTESTABLE
        verdicts[rid] = _apply_baseline(rid, verdicts[rid], case_id, baseline)
    message = ""
    if harness:
        message = f"{type(exc).__name__}: {exc}"
    elif isinstance(exc, AssertionError) and not violations:
        message = f"AssertionError: {exc}".strip()
    unseen = sorted(r for r, v in verdicts.items() if v == UNTESTABLE)
    if unseen and not message:
        message = no_evidence_message(unseen)
    return CaseGrade(verdicts, worst(verdicts.values()), message, list(violations))


def no_evidence_message(req_ids: Iterable[str]) -> str:
    """Why a case's requirements are UNTESTABLE: nothing about them was observed (the check found nothing to judge)."""
    return ("Not testable: no expectation was evaluated for " + ", ".join(req_ids)
            + " in this case (the target gave the check nothing to judge), so there is no evidence for a PASS")


def _apply_baseline(rid: str, verdict: str, case_id: str, baseline: Baseline) -> str:
    if verdict in (FAIL, WARN) and baseline.entry_for(rid, case_id):
        return XFAIL
    if verdict == PASS and baseline.case_specific(rid, case_id):
        return XPASS
    return verdict


def grade_error(req_ids: Iterable[str], registry: Mapping[str, Any], profile: Any, message: str) -> CaseGrade:
    """A case whose setup or teardown broke: ERROR for every checkable requirement."""
    verdicts = {r: (ERROR if profile.claims(registry[r].feature) else SKIP) for r in req_ids}
    return CaseGrade(verdicts, worst(verdicts.values()), message)


def grade_skip(req_ids: Iterable[str], message: str, verdict: str = SKIP) -> CaseGrade:
    """A case that did not run (feature unclaimed, pytest.skip), or that pytest itself marked xfail."""
    return CaseGrade({r: verdict for r in req_ids}, verdict, message)


def requirement_verdict(case_verdicts: Iterable[str], baseline_entry: Any = None) -> str:
    """Worst case; a requirement-wide baseline entry whose requirement passed everywhere is XPASS (stale)."""
    verdict = worst(case_verdicts)
    if baseline_entry is not None and verdict == PASS:
        return XPASS
    return verdict


def xfail_reason(baseline: Baseline, case_id: str, grade: CaseGrade) -> str:
    """The baseline reasons that turned this case's failures into XFAIL."""
    reasons = []
    for rid, verdict in grade.requirements.items():
        entry = baseline.entry_for(rid, case_id) if verdict == XFAIL else None
        if entry is not None:
            reasons.append(f"{rid}: {entry.reason}" if entry.reason else rid)
    return "baseline: " + "; ".join(reasons)


def xpass_message(baseline: Baseline, case_id: str, grade: CaseGrade) -> str:
    """Why an XPASS fails the run: the baseline says this case fails, and it passed."""
    stale = [rid for rid, verdict in grade.requirements.items() if verdict == XPASS]
    return ("XPASS: the baseline expects " + ", ".join(stale) + f" to fail in {case_id}, but it passed. "
            "The baseline is stale: remove the entry.")
