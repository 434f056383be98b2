"""The negative-control matrix's shortcut is sound: rerunning only the cases whose requests consulted a fault gives
the verdicts of a whole suite run under that fault (tests/proof/matrix.py, run_fault).

Faults of different surfaces and mechanisms: a non-streamed answer field, a streamed chunk, embeddings, the models
list (a prerequisite many checks stop on), a rate-limit header set by an after_request hook on every response, and a
before_request refusal that only SDK requests meet. The whole matrix compares both modes with ``MATRIX_FULL=1``.
"""

from __future__ import annotations

import pytest

from gateway_spec import load_requirements
from tests.proof import matrix

REGISTRY = load_requirements()
SAMPLE = ("CHAT-008", "CHAT-STREAM-002", "EMBEDDINGS-004", "MODELS-001", "RATE-LIMITS-013", "HEADERS-007")


def _case_verdicts(run: matrix.SuiteResult) -> dict[str, dict[str, str]]:
    return {case["id"]: case["verdicts"] for case in run.cases}


def _differences(traced: matrix.SuiteResult, full: matrix.SuiteResult) -> list[str]:
    lines = [f"  {rid}: traced {traced.verdicts.get(rid)}, full {full.verdicts.get(rid)}"
             for rid in sorted(set(traced.verdicts) | set(full.verdicts))
             if traced.verdicts.get(rid) != full.verdicts.get(rid)]
    mine, theirs = _case_verdicts(traced), _case_verdicts(full)
    lines += [f"  case {cid}: traced {mine.get(cid)}, full {theirs.get(cid)}"
              for cid in sorted(set(mine) | set(theirs)) if mine.get(cid) != theirs.get(cid)]
    return lines


@pytest.mark.parametrize("fault_id", SAMPLE)
def test_traced_fault_run_gives_the_whole_runs_verdicts(fault_id, baselines, matrix_dir):
    profile = matrix.choose_profile(REGISTRY[fault_id], baselines)
    baseline = baselines.get(profile)
    assert baseline.traced and all("faults_consulted" in c for c in baseline.cases)

    def compare(attempt: str) -> tuple[list[str], matrix.SuiteResult, matrix.SuiteResult]:
        traced = matrix.run_fault(baseline, matrix_dir / f"traced-{fault_id}{attempt}", (fault_id,))
        full = matrix.run_fault(baseline, matrix_dir / f"full-{fault_id}{attempt}", (fault_id,), full=True)
        return _differences(traced, full), traced, full

    differences, traced, full = compare("")
    if differences:  # a timing check may move under CPU load: a difference counts when a second try shows it
        again, traced, full = compare("-again")
        differences = [d for d in differences if d in again]
    assert not differences, f"--gw-server-fault {fault_id}: the traced run disagrees with the whole run:\n" + \
        "\n".join(differences)
    assert 0 < traced.executed < full.executed == matrix.suite_cases(baseline.cases), "the fault's own cases rerun, not all"
    assert full.verdicts.get(fault_id) != baseline.verdicts.get(fault_id), "the sample fault moves its requirement"


def test_merging_nothing_gives_the_clean_verdicts(baselines, tmp_path):
    """The recomputation from case records (the plugin's build_results) reproduces the run's own verdicts."""
    baseline = baselines.get("openai")
    merged = matrix.merge(baseline, matrix.SuiteResult("openai", (), (), 0, {}, ()), ())
    assert merged.verdicts == baseline.verdicts
    assert merged.executed == 0
