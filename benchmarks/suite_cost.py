"""What the conformance suite costs: wall time of a full run against the embedded server, single process and
``-n 2``, and the requests and completion tokens a black-box run spends (``run`` in results.json).

The black-box run is the suite against the reference server served by gunicorn as a separate process, through
``--target-url`` and the profile's test key: what a gateway team's CI run costs. It leaves out what only the embedded
server allows (X-Mock-* probes, the free 429 burst), which the embedded run's figures include. With a latency
(``benchmarks.delayed_app``: every answer waits that long, as a real model would) its wall time is reported as a
multiple of the latency: the number of request latencies the run waits one after another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gateway_spec
from benchmarks.delayed_app import LATENCY_ENV
from benchmarks.servers import REFERENCE_APP, ROOT, GunicornServer, production_config, reference_env

SUITE_TIMEOUT = 600.0
DELAYED_APP = "benchmarks.delayed_app:app"
BLACK_BOX_LATENCY_MS = 500.0


def suite_command(profile: str, report_dir: Path, processes: int, autoload: bool = True,
                  target: tuple[str, str] | None = None) -> list[str]:
    """The documented suite invocation, plus ``-n N`` for xdist. Without ``autoload`` only the plugins the suite
    needs are loaded (``-p conformance.entry``, ``-p xdist.plugin``), with PYTEST_DISABLE_PLUGIN_AUTOLOAD set."""
    cmd = [sys.executable, "-m", "pytest"]
    if not autoload:
        cmd += ["-p", "conformance.entry"] + (["-p", "xdist.plugin"] if processes > 1 else [])
    cmd += ["--pyargs", "conformance.suite", "--gw-profile", profile, "--gw-report-dir", str(report_dir), "-q",
            "-p", "no:cacheprovider"]
    if target is not None:  # (url, key): a black-box run; the key goes by environment, never on a command line
        cmd += ["--target-url", target[0]]
    return cmd + (["-n", str(processes)] if processes > 1 else [])


def run_suite(profile: str, processes: int, autoload: bool = True,
              target: tuple[str, str] | None = None) -> dict[str, Any]:
    """One timed suite run: wall seconds, pytest's exit code, and the run totals from results.json."""
    env = {**os.environ, **({} if autoload else {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})}
    # As an installed package runs: with Python's bytecode cache (pip writes it at install time). A
    # PYTHONDONTWRITEBYTECODE in the benchmark's environment (CI sets it) would make every run compile every
    # imported module again, about 2 s of each run's start-up on a 2-core machine; the first run writes the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if target is not None:
        env["CONFORMANCE_API_KEY"] = target[1]
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run(suite_command(profile, Path(tmp), processes, autoload, target), cwd=ROOT, env=env,
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


def run_black_box(profile: str, latency_ms: float = 0.0) -> dict[str, Any]:
    """The suite, single process, against the reference server in its own gunicorn (production configuration),
    each answer delayed ``latency_ms``; with a latency the result has ``latency_multiple`` (wall / latency)."""
    key = gateway_spec.load_profile(profile).test_key
    app, env = REFERENCE_APP, reference_env(profile)
    if latency_ms > 0:
        app, env = DELAYED_APP, {**env, LATENCY_ENV: str(latency_ms)}
    with GunicornServer(app, production_config(), env=env) as server:
        result = run_suite(profile, 1, target=(f"http://{server.host}:{server.port}", key))
    if latency_ms > 0:
        result["latency_ms"] = latency_ms
        result["latency_multiple"] = result["wall_s"] / (latency_ms / 1000)
    return result


def measure_suite(profile: str, latency_ms: float = BLACK_BOX_LATENCY_MS) -> dict[str, Any]:
    """Single process and ``-n 2`` as documented, then ``-n 2`` without entry-point plugin autoloading (which
    imports schemathesis and hypothesis into every process: most of a run's start-up), all against the embedded
    server; then the black-box run, whose spend is the target's figure (the embedded run's is kept beside it), and
    the black-box run again against answers delayed ``latency_ms`` (0: left out)."""
    single = run_suite(profile, 1)
    parallel = run_suite(profile, 2)
    lean = run_suite(profile, 2, autoload=False)
    black = run_black_box(profile)
    runs = {"single": single, "parallel": parallel, "parallel_no_autoload": lean, "black_box": black}
    out = {"single_s": single["wall_s"], "parallel_s": parallel["wall_s"], "parallel_no_autoload_s": lean["wall_s"],
           "requests": black["requests"], "completion_tokens": black["completion_tokens"],
           "embedded_requests": single["requests"], "embedded_completion_tokens": single["completion_tokens"],
           "runs": runs}
    if latency_ms > 0:
        delayed = runs["black_box_delayed"] = run_black_box(profile, latency_ms)
        out.update(black_box_latency_ms=latency_ms, black_box_delayed_s=delayed["wall_s"],
                   latency_multiple=delayed["latency_multiple"])
    return out
