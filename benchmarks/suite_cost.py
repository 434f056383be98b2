"""What the conformance suite costs: wall time of a full run against the embedded server, single process and
``-n 2``, and the requests and completion tokens a black-box run spends (``run`` in results.json)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.servers import ROOT

SUITE_TIMEOUT = 600.0


def suite_command(profile: str, report_dir: Path, processes: int) -> list[str]:
    """The documented suite invocation, plus ``-n N`` for xdist."""
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--profile", profile,
           "--report-dir", str(report_dir), "-q", "-p", "no:cacheprovider"]
    return cmd + (["-n", str(processes)] if processes > 1 else [])


def run_suite(profile: str, processes: int) -> dict[str, Any]:
    """One timed suite run: wall seconds, pytest's exit code, and the run totals from results.json."""
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run(suite_command(profile, Path(tmp), processes), cwd=ROOT, capture_output=True,
                              text=True, timeout=SUITE_TIMEOUT, check=False)
        wall = time.perf_counter() - started
        return {"wall_s": wall, "exit_code": proc.returncode, **read_run_totals(Path(tmp) / "results.json"),
                "tail": proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []}


def read_run_totals(results_json: Path) -> dict[str, Any]:
    """``run.requests`` and ``run.completion_tokens`` of a results.json (None when absent)."""
    try:
        run = json.loads(results_json.read_text()).get("run") or {}
    except (OSError, ValueError):
        return {"requests": None, "completion_tokens": None}
    return {"requests": run.get("requests"), "completion_tokens": run.get("completion_tokens")}


def measure_suite(profile: str) -> dict[str, Any]:
    """Both runs; the spend figures come from the single-process run (the parallel one must spend the same)."""
    single = run_suite(profile, 1)
    parallel = run_suite(profile, 2)
    return {"single_s": single["wall_s"], "parallel_s": parallel["wall_s"], "requests": single["requests"],
            "completion_tokens": single["completion_tokens"], "runs": {"single": single, "parallel": parallel}}
