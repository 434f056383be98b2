"""The end of a run, on the controller: one line per requirement that did not pass, and ``--gw-write-baseline``.

Registered by the entry point in a conformance run (never on an xdist worker). Both read the results the results
recorder (``conformance.report.ResultsRecorder``) built at session finish, so they run ``trylast``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

RESULTS_PLUGIN = "llm-gateway-conformance-results"
LISTED = ("FAIL", "ERROR", "WARN")  # the verdicts the closing summary names, worst first
BASELINED = ("FAIL", "WARN", "XFAIL")  # what --gw-write-baseline records: still failing, already expected or not
TEXT_WIDTH = 90


def _results(config: pytest.Config) -> dict | None:
    recorder = config.pluginmanager.get_plugin(RESULTS_PLUGIN)
    return getattr(recorder, "results", None)


def failing_lines(results: dict) -> list[tuple[str, str]]:
    """``(verdict, line)`` for each requirement whose verdict is FAIL, ERROR or WARN, worst first."""
    rows = []
    for rid, req in results.get("requirements", {}).items():
        if req["verdict"] not in LISTED:
            continue
        text = req["text"] if len(req["text"]) <= TEXT_WIDTH else req["text"][: TEXT_WIDTH - 3] + "..."
        rows.append((LISTED.index(req["verdict"]), rid, req["verdict"],
                     f"{req['verdict']:<5} {rid:<22} {req['level']:<6} {text}"))
    return [(verdict, line) for _, _, verdict, line in sorted(rows)]


def baseline_document(results: dict, redact) -> str:
    """A baseline (conformance/baseline.py's format) expecting every FAIL/WARN/XFAIL requirement of ``results``."""
    import yaml

    entries = []
    for rid, req in results.get("requirements", {}).items():
        case = next((c for c in req["cases"] if c["verdict"] in BASELINED), None)
        if case is None:  # judged by its cases: a requirement both FAILing and ERRORing is graded ERROR
            continue
        reason = f"{case['verdict']} at the time of writing (first in {case['id']})"
        entries.append({"requirement": rid, "reason": redact(reason)})
    run = results.get("run", {})
    written = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    head = (f"# Written by --gw-write-baseline from a run of profile {run.get('profile')} at {run.get('target')} "
            f"({written}).\n# Each entry expects its requirement to fail; replace each reason with the real one, and "
            f"remove an entry once it passes\n# (a baselined requirement that passes fails the run: XPASS).\n")
    return head + yaml.safe_dump({"expected_failures": entries}, sort_keys=False, width=120)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    path = getattr(session.config.option, "gw_write_baseline", None)
    results = _results(session.config)
    if not path or results is None or hasattr(session.config, "workerinput"):
        return
    state = getattr(session.config.pluginmanager.get_plugin(RESULTS_PLUGIN), "state", None)
    redact = state.redactor.text if state is not None else (lambda text: text)
    target = session.config.invocation_params.dir / Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(baseline_document(results, redact), encoding="utf-8")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = _results(config)
    if results is None:
        return
    for verdict, line in failing_lines(results):
        terminalreporter.line(line, red=verdict in ("FAIL", "ERROR"), yellow=verdict == "WARN")
    path = getattr(config.option, "gw_write_baseline", None)
    if path:
        count = sum(1 for r in results.get("requirements", {}).values()
                    if any(c["verdict"] in BASELINED for c in r["cases"]))
        terminalreporter.line(f"baseline of {count} expected failures written to {path} (--gw-baseline {path})")
