"""Fixtures of the proof matrices, and the matrix summary printed at the end of the run.

Rows are produced on xdist workers; each test attaches its row as a ``matrix_row`` user property (which xdist
carries to the controller), and the controller tallies them in ``pytest_terminal_summary``.
"""

from __future__ import annotations

import json

import pytest

import gateway_spec
from tests.proof import matrix

_ROWS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory):
    """Folder for the report dirs of this process's suite runs."""
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="session")
def baselines(matrix_dir) -> matrix.Baselines:
    """Clean suite runs per profile (and variant set), cached for the process."""
    return matrix.Baselines(matrix_dir)


@pytest.fixture(scope="session")
def exemptions() -> matrix.Exemptions:
    """``spec/fault-exemptions.yaml``."""
    return matrix.load_exemptions()


@pytest.fixture
def record_row(request):
    """Attach a matrix row (``kind``, ``id``, ``profile``, ``status``, ...) to this test's report."""
    def record(**row) -> None:
        request.node.user_properties.append(("matrix_row", json.dumps(row, sort_keys=True)))
    return record


class _RowCollector:
    """Gathers matrix rows from reports; registered on the controller (or a run without xdist)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.rows.extend(json.loads(v) for k, v in report.user_properties if k == "matrix_row")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        collector = _RowCollector()
        config.stash[_ROWS] = collector.rows
        config.pluginmanager.register(collector, "proof-matrix-rows")


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """Matrix size: faults, requirements covered, rows holding, no-check rows, MUSTs without a fault and why."""
    rows = config.stash.get(_ROWS, [])
    if not rows or hasattr(config, "workerinput"):
        return
    write = terminalreporter.write_line
    terminalreporter.section("negative-control matrix")
    faults = [r for r in rows if r["kind"] == "fault"]
    by_status: dict[str, list[dict]] = {}
    for row in faults:
        by_status.setdefault(row["status"], []).append(row)
    holding = by_status.get("holds", [])
    covered = {row["id"] for row in holding}
    write(f"faults run: {len(faults)}; rows holding: {len(holding)}; requirements proven by a fault: {len(covered)}")
    for status in sorted(set(by_status) - {"holds"}):
        listed = ", ".join(f"{r['id']}[{r['profile']}]" for r in by_status[status])
        write(f"{status}: {len(by_status[status])}: {listed}")
    _write_cost(write, faults)
    flaky = sorted({rid for row in faults for rid in row.get("flaky", [])})
    if flaky:
        write(f"moved once but not on a second run (flaky checks, not counted): {', '.join(flaky)}")
    variants = [r for r in rows if r["kind"] == "variant"]
    if variants:
        ok = sum(r["status"] == "holds" for r in variants)
        write(f"valid variants: {ok}/{len(variants)} rows without a false alarm")
    _write_exemption_summary(write)


def _write_cost(write, faults: list[dict]) -> None:
    """What the rows cost in suite-case executions, against a whole suite run per row (the saving of tracing)."""
    if not faults or "rerun" not in faults[0]:
        return
    mode = "full (MATRIX_FULL=1)" if any(r.get("full") for r in faults) else "traced"
    rerun = sum(r["rerun"] for r in faults) / len(faults)
    size = sum(r["suite_cases"] for r in faults) / len(faults)
    write(f"mode {mode}: cases rerun per fault row: {rerun:.1f} on average of {size:.0f} per suite run; "
          f"suite-case executions: {sum(r['executed'] for r in faults)} (clean runs and second runs included; "
          f"a whole suite per row would be {round(size * len(faults))} plus those)")


def _write_exemption_summary(write) -> None:
    registry = gateway_spec.load_requirements()
    exemptions = matrix.load_exemptions()
    musts = [r for r in registry.values() if r.testable and r.level == "MUST"]
    without = [r for r in musts if r.id in exemptions.no_fault]
    write(f"testable MUSTs: {len(musts)}; without a fault (spec/fault-exemptions.yaml): {len(without)}")
    for req in without:
        write(f"  {req.id}: {exemptions.no_fault[req.id][:110]}")
    write(f"requirements without a check yet (unchecked:): {len(exemptions.unchecked)}")
