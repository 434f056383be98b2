"""``llm-conformance``: run the bundled conformance suite with pytest (any pytest arguments pass through).

    llm-conformance --target-url https://gateway.example/ --api-key $KEY --profile unit23 -n 4

Equivalent to ``pytest --conformance ...``: with no paths, the plugin collects ``conformance/suite``; the results
are the same from any working directory.

    llm-conformance compare RUN_DIR... --out DIR [--fail-on-regression]

writes a matrix of several runs (``conformance.compare``).
"""

from __future__ import annotations

import sys

import pytest


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns pytest's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["compare"]:
        from conformance.compare import main as compare_main

        return compare_main(args[1:])
    if "--conformance" not in args:
        args.insert(0, "--conformance")
    return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main())
