"""``llm-conformance``: run the bundled conformance suite with pytest (any pytest arguments pass through).

    llm-conformance --target-url https://gateway.example/ --api-key $KEY --profile unit23 -n 4

Equivalent to ``pytest --conformance ...``: with no paths, the plugin collects ``conformance/suite``; the results
are the same from any working directory. ``--help`` shows the suite's options first, then pytest's.

The suite's pytest options are spelled ``--gw-*`` so that they cannot clash with another plugin's; this is our own
command, so it takes the short spellings (``--profile``, ``--api-key``, ``--model``, ...) and hands pytest the
``--gw-`` ones (either spelling works here); its ``--help`` shows the short ones.

    llm-conformance compare RUN_DIR... --out DIR [--fail-on-regression]

writes a matrix of several runs (``conformance.compare``).

    llm-conformance discover --target-url URL --api-key KEY

probes which optional features the gateway offers and writes a starting profile (``conformance.discover``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import sys

import pytest

GROUP_TITLE = "LLM gateway conformance:"
PREFIX = "--gw-"


class _OptionNames:
    """Stands in for pytest's parser to collect the option names the plugin declares."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def getgroup(self, *args, **kwargs) -> _OptionNames:
        return self

    def addoption(self, *names: str, **kwargs) -> None:
        self.names.extend(names)

    def addini(self, *args, **kwargs) -> None:
        pass


@functools.cache
def short_spellings() -> dict[str, str]:
    """``--profile`` -> ``--gw-profile`` for every ``--gw-`` option the plugin declares (conformance.entry)."""
    from conformance.entry import pytest_addoption

    recorder = _OptionNames()
    pytest_addoption(recorder)  # type: ignore[arg-type]
    return {"--" + name[len(PREFIX):]: name for name in recorder.names if name.startswith(PREFIX)}


def to_pytest_args(args: list[str]) -> list[str]:
    """``args`` with each short spelling (``--profile X``, ``--profile=X``) turned into its ``--gw-`` option."""
    aliases = short_spellings()
    out = []
    for arg in args:
        name, sep, value = arg.partition("=")
        out.append(aliases[name] + sep + value if name in aliases else arg)
    return out


def typed_short(args: list[str]) -> frozenset[str]:
    """The ``--gw-`` options the user spelled short in ``args`` (their error messages are shown short too)."""
    aliases = short_spellings()
    return frozenset(aliases[name] for name in (arg.partition("=")[0] for arg in args) if name in aliases)


class _ShortSpelling(io.TextIOBase):
    """A stream in front of stderr that shows the ``--gw-`` options the user typed short (``--profile``) as typed,
    and this command's name for pytest's, so a usage error names what the user wrote. Writes pass straight through:
    nothing is held back."""

    def __init__(self, stream, names: frozenset[str]) -> None:
        self._stream = stream
        alternatives = [re.escape(n) + r"\b(?!-)" for n in sorted(names, key=len, reverse=True)]
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None

    def write(self, text: str) -> int:
        shown = text.replace("pytest.main()", "llm-conformance")
        if self._pattern is not None:
            shown = self._pattern.sub(lambda m: "--" + m[0][len(PREFIX):], shown)
        self._stream.write(shown)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding


def short_help(text: str) -> str:
    """pytest's help with the ``--gw-`` spellings shown short, the help column kept where it was."""
    text = re.sub(r"--gw-(\S+?)(,? {2,}|, )", lambda m: f"--{m[1]}{m[2]}" + ("   " if m[2].endswith("  ") else ""),
                  text)
    return text.replace(PREFIX, "--")


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
    if args[:1] == ["discover"]:
        args = ["--gw-discover", *args[1:]]
    typed = typed_short(args)
    args = to_pytest_args(args)
    if "--conformance" not in args:
        args.insert(0, "--conformance")
    if "-h" in args or "--help" in args:
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = int(pytest.main(args))
        try:
            sys.stdout.write(short_help(lead_with_suite_options(captured.getvalue())))
            sys.stdout.flush()
        except BrokenPipeError:  # `llm-conformance --help | head`
            pass
        return code
    with contextlib.redirect_stderr(_ShortSpelling(sys.stderr, typed)):
        return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main())
