"""How much the reference-server fuzz proof sent: cases per operation, mode and profile, printed after the run.

``FuzzTally`` is a small pytest plugin object: the proof's module fixture registers it once, each case adds its
counts, and ``pytest_terminal_summary`` prints the table. Under xdist each worker keeps its own tally (workers
print no terminal summary), so the cases also record ``fuzz_requests`` in JUnit XML and print their line.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

PLUGIN_NAME = "llm-gateway-conformance-fuzz-tally"


@dataclass
class FuzzRow:
    """One (profile, operation, mode): how many requests went out and the statuses that came back."""

    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        statuses = " ".join(f"{status}x{count}" for status, count in sorted(self.statuses.items()))
        return f"{self.cases:>4} cases {self.seconds:6.2f}s  {statuses}"


class FuzzTally:
    """Counts per (profile, operation, mode), printed as a table in the terminal summary."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], FuzzRow] = {}
        self.started = time.monotonic()

    def add(self, profile: str, operation: str, mode: str, statuses: list[int], seconds: float) -> FuzzRow:
        """Record one case's requests; returns the row."""
        row = self.rows.setdefault((profile, operation, mode), FuzzRow())
        row.cases += len(statuses)
        row.statuses.update(statuses)
        row.seconds += seconds
        return row

    def table(self) -> list[str]:
        total = sum(row.cases for row in self.rows.values())
        seconds = sum(row.seconds for row in self.rows.values())
        lines = [f"{p:<20} {o:<22} {m:<9} {row.line()}" for (p, o, m), row in sorted(self.rows.items())]
        return [*lines, f"{total} fuzzed requests in {seconds:.1f}s of case time"]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.rows:
            terminalreporter.section("schemathesis fuzzing of the reference server")
            for line in self.table():
                terminalreporter.write_line(line)


def tally_for(config) -> FuzzTally:
    """The run's tally, registered as a plugin on first use."""
    tally = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if tally is None:
        tally = FuzzTally()
        config.pluginmanager.register(tally, PLUGIN_NAME)
    return tally
