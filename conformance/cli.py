"""``llm-conformance``: run the bundled conformance suite with pytest (any pytest arguments pass through).

    llm-conformance --target-url https://gateway.example/ --api-key $KEY --profile unit23 -n 4

Equivalent to ``pytest --conformance ...``: with no paths, the plugin collects ``conformance/suite``; the results
are the same from any working directory. ``--help`` shows the suite's options first, then pytest's.

    llm-conformance compare RUN_DIR... --out DIR [--fail-on-regression]

writes a matrix of several runs (``conformance.compare``).
"""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

GROUP_TITLE = "LLM gateway conformance:"


def lead_with_suite_options(text: str) -> str:
    """pytest's help with the suite's option group moved up, right after the usage line."""
    lines = text.replace("usage: pytest.main()", "usage: llm-conformance", 1).splitlines()
    try:
        start = lines.index(GROUP_TITLE)
    except ValueError:
        return text
    end = next((i for i in range(start + 1, len(lines))
                if lines[i] and not lines[i].startswith(" ") and lines[i].endswith(":")), len(lines))
    usage_end = next((i for i, line in enumerate(lines) if not line.strip()), 0)
    ours = lines[start:end]
    rest = lines[:start] + lines[end:]
    return "\n".join([*rest[:usage_end], "", *ours, "pytest's own options follow.", "", *rest[usage_end:]]) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns pytest's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["compare"]:
        from conformance.compare import main as compare_main

        return compare_main(args[1:])
    if "--conformance" not in args:
        args.insert(0, "--conformance")
    if "-h" in args or "--help" in args:
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = int(pytest.main(args))
        try:
            sys.stdout.write(lead_with_suite_options(captured.getvalue()))
            sys.stdout.flush()
        except BrokenPipeError:  # `llm-conformance --help | head`
            pass
        return code
    return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main())
