#!/usr/bin/env python3
"""Run tox on a fresh machine that has nothing but Python 3.10+.

Creates ``.venv-tox/`` (once) with the standard library's venv, installs tox into it, then runs
``tox`` with the arguments given, e.g. ``python3 scripts/tox.py -e conformance``. Every tox environment
installs the project and its dependencies by itself, so nothing else needs to be set up by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-tox"
TOX_REQUIREMENTS = ("tox>=4.11", "tox-uv>=1.11")  # tox-uv: uv installs each env in seconds instead of minutes


def _python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - this script runs on whatever python3 the machine has
        print("llm-gateway-conformance needs Python 3.10 or newer", file=sys.stderr)
        return 2
    python = _python(VENV)
    if not python.exists():
        print(f"creating {VENV.name}/ with tox (first run only)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    probe = subprocess.run([str(python), "-c", "import tox, tox_uv"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *TOX_REQUIREMENTS],
            check=True,
        )
    return subprocess.call([str(python), "-m", "tox", *argv], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
