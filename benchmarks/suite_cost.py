"""What the conformance suite costs: wall time of a full run against the embedded server, single process and
``-n 2``, and the requests and completion tokens a black-box run spends (``run`` in results.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.servers import ROOT

SUITE_TIMEOUT = 600.0


def suite_command(profile: str, report_dir: Path, processes: int, autoload: bool = True) -> list[str]:
    """The documented suite invocation, plus ``-n N`` for xdist. Without ``autoload`` only the plugins the suite
    needs are loaded (``-p conformance.plugin``, ``-p xdist.plugin``), with PYTEST_DISABLE_PLUGIN_AUTOLOAD set."""
    cmd = [sys.executable, "-m", "pytest"]
    if not autoload:
        cmd += ["-p", "conformance.plugin"] + (["-p", "xdist.plugin"] if processes > 1 else [])
    cmd += ["--pyargs", "conformance.suite", "--profile", profile, "--report-dir", str(report_dir), "-q",
            "-p", "no:cacheprovider"]
    return cmd + (["-n", str(processes)] if processes > 1 else [])


def run_suite(profile: str, processes: int, autoload: bool = True) -> dict[str, Any]:
    """One timed suite run: wall seconds, pytest's exit code, and the run totals from results.json."""
    env = {**os.environ, **({} if autoload else {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})}
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run(suite_command(profile, Path(tmp), processes, autoload), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=SUITE_TIMEOUT, check=False)
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
    """Single process and ``-n 2`` as documented, then ``-n 2`` without entry-point plugin autoloading (which
    imports schemathesis and hypothesis into every process: most of a run's start-up). The spend figures come
    from the single-process run."""
    single = run_suite(profile, 1)
    parallel = run_suite(profile, 2)
    lean = run_suite(profile, 2, autoload=False)
    return {"single_s": single["wall_s"], "parallel_s": parallel["wall_s"], "parallel_no_autoload_s": lean["wall_s"],
            "requests": single["requests"], "completion_tokens": single["completion_tokens"],
            "runs": {"single": single, "parallel": parallel, "parallel_no_autoload": lean}}
