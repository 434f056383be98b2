#!/usr/bin/env python3
"""Run the conformance suite against the embedded reference server once per bundled profile.

``python scripts/conformance_all.py [--report-dir DIR] [pytest args...]`` writes ``DIR/<profile>/`` for each profile
(default ``reports/conformance``) and exits non-zero when any profile's run failed. Each profile runs in its own
pytest process, as a user would run it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from gateway_spec import profile_names

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "conformance")
    args, pytest_args = parser.parse_known_args(argv)
    failed = []
    for profile in profile_names():
        command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--profile", profile,
                   "--report-dir", str(args.report_dir / profile), "-q", *pytest_args]
        print(f"== {profile}", flush=True)
        if subprocess.call(command, cwd=ROOT) != 0:
            failed.append(profile)
    print(f"profiles failing: {', '.join(failed)}" if failed else "every profile passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
