"""Negative-control matrix: every fault of the reference server is caught by exactly its requirement.

For each fault (in the first profile that claims its requirement's feature and whose clean run judges it) the suite
runs against the embedded server with ``--gw-server-fault ID``: that requirement must FAIL (WARN for a SHOULD), the
fault's declared ``collateral`` may move too, and every other requirement keeps its verdict from the clean run of the
profile. Only the cases whose requests consulted the fault rerun (the others cannot change: see matrix.run_fault);
``MATRIX_FULL=1`` reruns the whole suite per fault.
"""

from __future__ import annotations

import pytest

from gateway_spec import load_requirements
from reference_server.faults import catalogue
from tests.proof import matrix

# A (partial) suite run per fault: ~3 min with -n 2; the 'tests' env (and CI) runs it, '-m "not matrix"' leaves it out.
pytestmark = pytest.mark.matrix

REGISTRY = load_requirements()
FAULTS = catalogue()


@pytest.mark.parametrize("fault_id", list(FAULTS))
def test_fault_fails_its_requirement_and_nothing_else(fault_id, baselines, matrix_dir, exemptions, record_row,
                                                      request):
    fault = FAULTS[fault_id]
    if fault_id in exemptions.known_broken:  # strict: the row that starts holding must leave known_broken:
        request.applymarker(pytest.mark.xfail(reason=exemptions.known_broken[fault_id], strict=True))
    assert fault_id in REGISTRY, f"fault {fault_id} names no requirement of the registry"
    executed_before = baselines.executed  # clean runs this row triggers count as its executions
    variants = matrix.ROW_VARIANTS.get(fault_id, ())
    profile = matrix.choose_profile(REGISTRY[fault_id], baselines, variants)
    assert profile, f"no bundled profile claims feature {REGISTRY[fault_id].feature!r} of {fault_id}"
    baseline = baselines.get(profile, variants)
    full = matrix.full_mode()
    run = matrix.run_fault(baseline, matrix_dir / f"fault-{fault_id}", (fault_id,), full=full)
    executed = run.executed
    stray = _stray(baseline, run, fault)
    flaky: list[str] = []
    if stray:  # a timing check can move under CPU load: a stray counts only when a second run shows it again
        second = matrix.run_fault(baseline, matrix_dir / f"fault-{fault_id}-again", (fault_id,), full=full)
        executed += second.executed
        again = _stray(baseline, second, fault)
        flaky = sorted(set(stray) - set(again))
        stray = {rid: c for rid, c in stray.items() if rid in again}
    before, after = baseline.verdicts.get(fault_id, "NOT_RUN"), run.verdicts.get(fault_id, "NOT_RUN")
    expected = matrix.expected_verdict(REGISTRY[fault_id])
    status = _status(before, after, expected, stray)
    record_row(kind="fault", id=fault_id, profile="+".join((profile, *variants)), verdict=after, flaky=flaky,
               rerun=run.executed,
               executed=executed + baselines.executed - executed_before, suite_cases=matrix.suite_cases(baseline.cases), full=full,
               status=f"{status} (known_broken:)" if status != "holds" and fault_id in exemptions.known_broken
               else status)

    problems = []
    if stray:
        problems.append(f"--gw-server-fault {fault_id} moved requirements it does not declare as collateral "
                        f"(a check firing on the wrong ID, or a fault breaking too much):\n"
                        + matrix.describe_changes(stray, run))
    if status == "missed":
        problems.append(f"{fault_id} is {after} under its fault, expected {expected} (clean run: {before}):\n"
                        + "\n".join(f"      {c}" for c in run.cases_for(fault_id)[:5]))
    if status == "baseline-broken":
        problems.append(f"{fault_id} is {before} in the clean {profile} run: the row proves nothing")
    assert not problems, "\n".join(problems)
    if status == "no check":
        assert fault_id in exemptions.unchecked, (
            f"no check in conformance/suite judges {fault_id}: add one, or list it under unchecked: in "
            f"spec/fault-exemptions.yaml with the reason")
        pytest.skip(f"no check: {fault_id} ({exemptions.unchecked[fault_id][:80]})")


def _stray(baseline: matrix.SuiteResult, run: matrix.SuiteResult, fault) -> dict[str, tuple[str, str]]:
    """Verdicts the fault moved outside its requirement and collateral. A move *to* PASS is no fault's doing: it
    means the clean run itself was not clean, which test_valid_variants.py reports for the profile. A move to
    UNTESTABLE breaks nothing either: the fault hid what a neighbouring check needs to judge (an unreadable
    Retry-After has no ceiling to compare), and that check says so instead of passing blind."""
    return {rid: (old, new) for rid, (old, new) in matrix.changed_verdicts(baseline, run).items()
            if rid not in {fault.requirement, *fault.collateral} and new not in ("PASS", "UNTESTABLE")}


def _status(before: str, after: str, expected: str, stray: dict) -> str:
    """holds | no check | missed | baseline-broken | imprecise: how the row came out."""
    if before == "NOT_RUN" and after == "NOT_RUN":
        return "no check" if not stray else "imprecise"
    if before != "PASS":
        return "baseline-broken"
    if after != expected:
        return "missed"
    return "imprecise" if stray else "holds"
