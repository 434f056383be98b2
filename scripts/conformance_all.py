#!/usr/bin/env python3
"""Run the conformance suite against the embedded reference server once per bundled profile, then a matrix.

``python scripts/conformance_all.py [--report-dir DIR] [--with RUN]... [pytest args...]`` writes ``DIR/<profile>/``
for each profile (default ``reports/conformance``), then ``DIR/matrix.html`` and ``DIR/matrix.md``
(``llm-conformance compare``) over those runs and the dated real-gateway runs kept under ``reports/`` (every
other report directory there with a results.json; ``--with`` adds more). Exits non-zero when any profile's run
failed. Each profile runs in its own pytest process, as a user would run it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from conformance import compare
from gateway_spec import profile_names

ROOT = Path(__file__).resolve().parent.parent


def kept_runs(reports: Path, report_dir: Path) -> list[Path]:
    """Report directories under ``reports`` (dated real-gateway summaries) outside this run's report dir."""
    if not reports.is_dir():
        return []
    skip = report_dir.resolve()
    return [p.parent for p in sorted(reports.rglob("results.json"))
            if skip not in p.resolve().parents and "benchmarks" not in p.relative_to(reports).parts]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "conformance")
    parser.add_argument("--with", dest="extra", type=Path, action="append", default=[],
                        help="another run (report dir or folder of them) for the matrix")
    args, pytest_args = parser.parse_known_args(argv)
    failed, ran = [], []
    for profile in profile_names():
        command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--gw-profile", profile,
                   "--gw-report-dir", str(args.report_dir / profile), "-q", *pytest_args]
        print(f"== {profile}", flush=True)
        if subprocess.call(command, cwd=ROOT) != 0:
            failed.append(profile)
        if (args.report_dir / profile / "results.json").is_file():
            ran.append(args.report_dir / profile)
    print(f"profiles failing: {', '.join(failed)}" if failed else "every profile passed", flush=True)
    runs = ran + kept_runs(ROOT / "reports", args.report_dir) + args.extra
    if runs:
        print("== matrix", flush=True)
        compare.main([*map(str, runs), "--out", str(args.report_dir)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
