"""The negative-control matrix summary printed at the end of a test run.

Rows are produced on xdist workers; each test attaches its row as a ``matrix_row`` user property (which xdist
carries to the controller), and the controller tallies them in ``terminal_summary``. tests/conftest.py calls these
from its hooks, because only the top conftest is loaded on an xdist controller (which collects nothing).
"""

from __future__ import annotations

import json

import pytest

import gateway_spec
from tests.proof import matrix

_ROWS = pytest.StashKey[list]()


class _RowCollector:
    """Gathers matrix rows from reports; registered on the controller (or a run without xdist)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.rows.extend(json.loads(v) for k, v in report.user_properties if k == "matrix_row")


def register(config: pytest.Config) -> None:
    """Collect matrix rows from test reports on the controller (or in a run without xdist)."""
    if not hasattr(config, "workerinput"):
        collector = _RowCollector()
        config.stash[_ROWS] = collector.rows
        config.pluginmanager.register(collector, "proof-matrix-rows")


def terminal_summary(terminalreporter, config: pytest.Config) -> None:
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
