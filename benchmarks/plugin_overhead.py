"""``python -m benchmarks.plugin_overhead``: what installing the package costs an unrelated pytest run.

Installing the package must not change any other pytest run in the same environment, and must not slow it down:
the target is a trivial test run with the package installed within 10% of the same run without it. Three fresh
virtual environments (uv when present, else venv + pip), outside the checkout:

- ``bare``: pytest alone (the version this interpreter has);
- ``deps``: pytest and the package's runtime dependencies, without the package;
- ``installed``: pytest and the package's wheel (its runtime dependencies, no extras).

Each runs ``pytest -q -p no:cacheprovider test_trivial.py`` in alternated rounds; a run's CPU time (user + sys of
the process, from ``wait4``) is the figure, because wall time moves with the shared machine's other load. Printed:
medians and the ratios ``installed/bare`` and ``installed/deps``. ``installed/deps`` is what this package's own
entry point adds (target <= 1.10); ``installed/bare`` also holds what its dependencies' pytest plugins add (anyio's,
a dependency of httpx; pytest-xdist's), which the package cannot avoid while it needs them. Needs the package index
(or a warm uv cache) to build the environments. A report, never a test: the exit status is 0 unless a step broke.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.10
TRIVIAL = "def test_trivial():\n    assert 1 + 1 == 2\n"


def _run(cmd: list[str], **kwargs) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def _venv(path: Path, packages: list[str]) -> Path:
    """A fresh venv at ``path`` holding ``packages``; returns its python."""
    uv = shutil.which("uv")
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if uv:
        _run([uv, "venv", "-q", "--python", sys.executable, str(path)])
        _run([uv, "pip", "install", "-q", "--python", str(python), *packages])
    else:
        _run([sys.executable, "-m", "venv", str(path)])
        _run([str(python), "-m", "pip", "install", "-q", *packages])
    return python


def _wheel(out: Path) -> Path:
    uv = shutil.which("uv")
    cmd = [uv, "build", "--wheel", "-q", "-o", str(out), str(ROOT)] if uv else [
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)]
    _run(cmd)
    return next(out.glob("*.whl"))


def _runtime_requirements() -> list[str]:
    """The package's ``dependencies`` from pyproject.toml (tomllib on 3.11+, a minimal reader before)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the list is one flat array of quoted strings
        block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
        return [line.strip().strip(",").strip('"') for line in block.splitlines() if line.strip().startswith('"')]
    return list(tomllib.loads(text)["project"]["dependencies"])


def cpu_seconds(python: Path, workdir: Path) -> float:
    """One trivial pytest run: user + sys CPU seconds of the process."""
    proc = subprocess.Popen([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_trivial.py"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{python}: the trivial test run exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def measure(rounds: int, workdir: Path) -> dict:
    pytest_pin = f"pytest=={version('pytest')}"
    started = time.monotonic()
    wheel = _wheel(workdir / "dist")
    pythons = {
        "bare": _venv(workdir / "bare", [pytest_pin]),
        "deps": _venv(workdir / "deps", [pytest_pin, *_runtime_requirements()]),
        "installed": _venv(workdir / "installed", [pytest_pin, str(wheel)]),
    }
    (workdir / "test_trivial.py").write_text(TRIVIAL, encoding="utf-8")
    runs: dict[str, list[float]] = {name: [] for name in pythons}
    for python in pythons.values():  # warm-up: bytecode caches, the file system cache
        cpu_seconds(python, workdir)
    for _ in range(rounds):
        for name, python in pythons.items():
            runs[name].append(cpu_seconds(python, workdir))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    return {
        "rounds": rounds, "setup_s": round(time.monotonic() - started, 1),
        "cpu_s_median": {k: round(v, 3) for k, v in medians.items()},
        "cpu_s_runs": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "ratio_installed_deps": round(medians["installed"] / medians["deps"], 3),
        "ratio_installed_bare": round(medians["installed"] / medians["bare"], 3),
        "target_installed_deps": TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plugin_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="alternated rounds (default 9)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="plugin-overhead-") as tmp:
        result = measure(args.rounds, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    med = result["cpu_s_median"]
    verdict = "meets" if result["ratio_installed_deps"] <= TARGET else "MISSES"
    print(f"trivial pytest run, CPU seconds (median of {args.rounds}): bare {med['bare']}, deps {med['deps']}, "
          f"installed {med['installed']}")
    print(f"installed/deps {result['ratio_installed_deps']} ({verdict} the <= {TARGET} target: what the package's "
          f"entry point adds)")
    print(f"installed/bare {result['ratio_installed_bare']} (adds the dependencies' own pytest plugins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
