"""The conformance plugin: collection redirection and selection, preflight, grading, reports.

Registered by the pytest11 entry point (``conformance/entry.py``) only in a conformance run (a conformance option on
the command line, or the suite among the paths); the entry point declares the options, and the generic fixtures
live in ``conformance/fixtures.py``, registered with this module.
"""

from __future__ import annotations

import fnmatch
import shutil
import sys

import pytest

from conformance import allure_writer
from conformance import report as reports
from conformance.case_trace import request_ids
from conformance.client import HarnessError
from conformance.expect import StopCase, Violation, failure_message
from conformance.fixtures import (
    EXPECT,
    IDS,
    STATE,
    TARGET_DOWN_EXIT,
    TRACER,
    WIRE,
    _marker_ids,
    case_transcript,
    run_state,
)
from conformance.junit import CASE_PROPERTY
from conformance.options import SANDWICH, SANDWICH_HINT, SUITE_DIR, ConformanceOptions, RunState
from conformance.outcomes import (
    ERROR,
    UNTESTABLE,
    WARN,
    XFAIL,
    XPASS,
    grade_case,
    grade_error,
    grade_skip,
    unclaimed_reason,
    xfail_reason,
    xpass_message,
)
from conformance.preflight import run_preflight
from conformance.schema_sweep import case_findings
from conformance.wire import RECORDING_DIR


def case_id(item: pytest.Item) -> str:
    """Stable case id: suite-relative for the bundled suite (same from any directory), else the node id."""
    try:
        rel = item.path.resolve().relative_to(SUITE_DIR)
    except ValueError:
        return item.nodeid
    return f"{rel.as_posix()}::{item.nodeid.split('::', 1)[1]}" if "::" in item.nodeid else rel.as_posix()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# -- configuration -----------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config):
    """``--gw-list-requirements``: a dry run listing (h2spec ``--dryrun``), then exit."""
    if not config.option.gw_list_requirements:
        return None
    state = RunState(ConformanceOptions.from_config(config), config)
    sys.stdout.write(state.requirement_listing())
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: junitxml and allure read their output options in their own pytest_configure.
    config.addinivalue_line("markers", "requirement(*ids): requirement IDs a conformance case checks")
    options = ConformanceOptions.from_config(config)
    if options.explicit and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [str(SUITE_DIR)]  # `pytest --target-url URL` with no paths runs the suite
        config.args_source = pytest.Config.ArgsSource.ARGS
    state = RunState(options, config)
    config.stash[STATE] = state
    if not state.active:
        return
    state.validate()
    config.pluginmanager.register(ShortHarnessErrorReports(), "llm-gateway-conformance-short-errors")
    _enable_outputs(config, state)


def _enable_outputs(config: pytest.Config, state: RunState) -> None:
    """JUnit XML and Allure results into the report dir (unless the user chose), results recorder on the controller."""
    worker = _is_worker(config)
    if not worker and not config.option.xmlpath:
        config.option.xmlpath = str(state.report_dir / "junit.xml")
    if hasattr(config.option, "allure_report_dir"):
        if not config.option.allure_report_dir:
            allure_dir = state.report_dir / "allure-results"
            if not worker and allure_dir.is_dir():
                shutil.rmtree(allure_dir)  # ours: clean it here, never per worker (they would race)
            config.option.allure_report_dir = str(allure_dir)
        state.allure_enabled = True
    if not worker and not state.options.replay:
        recordings = state.report_dir / RECORDING_DIR
        if recordings.is_dir():
            shutil.rmtree(recordings)  # a recording is one run's: never mix two (cleaned once, by the controller)
    if not worker:
        config.pluginmanager.register(reports.ResultsRecorder(state), "llm-gateway-conformance-results")
        config.pluginmanager.register(TargetDownWatch(state), "llm-gateway-conformance-target-down")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # tryfirst: before xdist starts its workers, so a misconfigured target stops the run with nothing started.
    state = run_state(session.config)
    if state.active and state.allure_enabled and not session.config.option.collectonly:
        allure_writer.install(session.config)  # allure-pytest's logger is registered by now (its pytest_configure)
    if state.active and not _is_worker(session.config) and not session.config.option.collectonly:
        state.start_upstream()  # --upstream-listen: before the preflight, which routes a probe through it
    run_preflight(session.config, state)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is not loaded
def pytest_configure_node(node) -> None:
    """Workers share the controller's sandwich nonce token (one recording, one token) and its preflight's verdict."""
    state = node.config.stash.get(STATE, None)
    if state is not None and state.active and state.sandwich_url:
        node.workerinput["conformance_sandwich_token"] = state.sandwich_token
    if state is not None and state.active:
        node.workerinput["conformance_preflight_passed"] = state.preflight_passed


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.stop_upstream()


def pytest_report_header(config: pytest.Config):
    state = config.stash.get(STATE, None)
    return state.header_line() if state is not None and state.active else None


# -- collection -------------------------------------------------------------------------------------------
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Validate requirement IDs, apply ``--gw-requirement`` selection, skip unclaimed features, tag JUnit."""
    state = run_state(config)
    globs = state.options.requirement_globs
    keep, drop, unknown = [], [], []
    for item in items:
        ids = _marker_ids(item)
        if not ids:
            (drop if globs else keep).append(item)
            continue
        registry = state.registry
        missing = [i for i in ids if i not in registry]
        if missing:
            unknown.append(f"{item.nodeid}: {', '.join(missing)}")
            continue
        if globs and not any(fnmatch.fnmatchcase(i, g) for i in ids for g in globs):
            drop.append(item)
            continue
        item.stash[IDS] = ids
        item.user_properties.append((CASE_PROPERTY, case_id(item)))  # conformance.junit finds the case by it
        for rid in ids:  # JUnit XML only sees properties set at collection
            item.user_properties.append(("requirement", rid))
            item.user_properties.append((f"{rid}.level", registry[rid].level))
        reason = unclaimed_reason(ids, registry, state.profile)
        if reason and SANDWICH in {registry[i].feature for i in ids} and not state.sandwich_url:
            reason = SANDWICH_HINT
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
        keep.append(item)
    if unknown:
        raise pytest.UsageError("requirement marker names unknown requirement IDs:\n  " + "\n  ".join(unknown))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- grading ------------------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Requests sent from here on belong to this case (recording and replay scope)."""
    state = run_state(item.config)
    state.case_scope = f"case:{case_id(item)}"
    shared = item.config.stash.get(WIRE, None)
    if shared is not None:
        shared.case_scope = state.case_scope


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    state = run_state(item.config)
    if IDS in item.stash and state.allure_enabled:
        reports.allure_label([state.registry[r] for r in item.stash[IDS]])


class ShortHarnessErrorReports:
    """Builds a HarnessError's report with a one-line longrepr, before pytest formats a traceback.

    pytest's long traceback walks httpx's chained exceptions: 1-3 s of CPU per ERROR case (a whole suite against
    a target answering garbage took 58 s of CPU by default against 8 s with --tb=line). The kind and message say
    all a transport failure needs to; the line of the test module that raised it is kept. A class, because
    pytest only takes hooks named ``pytest_*`` and the module already wraps ``pytest_runtest_makereport``.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        exc = call.excinfo.value if call.excinfo is not None else None
        if IDS not in item.stash or not isinstance(exc, HarnessError):
            return None
        exc.__cause__ = exc.__context__ = None
        exc.__suppress_context__ = True
        line = f"{type(exc).__name__}: {exc}"
        here = [e for e in call.excinfo.traceback if e.path == item.path]
        if here:
            line += f"  ({item.path.name}:{here[-1].lineno + 1})"
        # from_item_and_call takes a non-ExceptionInfo excinfo as the longrepr itself (pytest's own contract).
        short = pytest.CallInfo(None, line, call.start, call.stop, call.duration, call.when, _ispytest=True)
        return pytest.TestReport.from_item_and_call(item, short)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # trylast: innermost wrapper, so junitxml/allure wrappers see the graded, redacted report.
    report = yield
    if IDS not in item.stash:
        return report
    state = run_state(item.config)
    shared = item.config.stash.get(WIRE, None)
    if shared is not None and shared.health.down and not state.target_down:
        state.target_down = shared.health.down
        item.session.shouldstop = f"{shared.health.down} (the run stops here: every later request would fail)"
    report.sections = [(name, state.redactor.text(text)) for name, text in report.sections]  # captured output
    grade = _grade_phase(item, call, report)
    if grade is not None:
        _apply_grade(item, report, grade)
    if call.excinfo is not None:
        # Allure reads the message from the exception itself (after this wrapper): mask secrets at the source.
        exc = call.excinfo.value
        exc.args = tuple(state.redactor.text(a) if isinstance(a, str) else a for a in exc.args)
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = str(report.longrepr)
        redacted = state.redactor.text(text)
        if redacted != text:  # keep pytest's rich traceback unless it would show a secret
            report.longrepr = redacted
    if grade is not None and state.allure_enabled:
        reports.allure_outcome(call, report, bool(grade.violations) or grade.outcome == XPASS)
    return report


def _grade_phase(item, call, report):
    """The grade decided by this phase, or None (a passing setup or teardown decides nothing)."""
    state, ids = run_state(item.config), item.stash[IDS]
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, pytest.xfail.Exception):  # pytest.xfail(): not a baseline, but an expected failure
        return grade_skip(ids, str(exc) or "xfail", XFAIL)
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(exc or "")
        return grade_skip(ids, reason.removeprefix("Skipped: "))
    if call.when == "call" or (call.when == "setup" and isinstance(exc, StopCase)):
        # A StopCase in setup (a fixture's expect.fatal) is the gateway's fault, graded like in the call phase.
        recorder = item.stash.get(EXPECT, None)
        violations = recorder.violations if recorder is not None else []
        evaluated = recorder.evaluated if recorder is not None else set()
        if isinstance(exc, StopCase) and call.when == "setup":
            violations = violations + _setup_stop_violations(exc, ids, violations, state.redactor)
        return grade_case(case_id(item), ids, state.registry, state.profile, violations, exc, state.baseline,
                          evaluated)
    if report.failed:  # setup or teardown broke: the harness (or a fixture) failed, not the gateway
        return grade_error(ids, state.registry, state.profile, f"{call.when} failed: {type(exc).__name__}: {exc}")
    return None


def _setup_stop_violations(exc: StopCase, ids, recorded, redactor) -> list[Violation]:
    """What a StopCase raised in fixture setup means for this test's requirements (besides what was recorded).

    The named requirement, when this test checks it: the violation the exception carries (a shared fixture's),
    else "Not testable". A requirement this test does not name: its own requirements are not testable.
    """
    rid, carried = exc.requirement, exc.violation
    if any(v.requirement == rid for v in recorded):
        return []
    if carried is not None:
        carried = Violation(rid, redactor.text(carried.expected), redactor.text(carried.received),
                            redactor.text(carried.note) if carried.note else None)
    if rid in ids:
        return [carried or Violation(rid, "", "", "stopped in fixture setup", untestable=True)]
    why = f"prerequisite {rid or 'check'} broke in fixture setup"
    if carried is not None:
        why += f" (expected {carried.expected}, received {carried.received})"
    return [Violation(r, "", "", why, untestable=True) for r in ids]


def _apply_grade(item, report, grade) -> None:
    """Turn the grade into the pytest outcome and attach the JSON-able record (it survives xdist)."""
    state = run_state(item.config)
    exchanges = case_transcript(item).take()
    transcript = "\n\n".join(ex.render() for ex in exchanges)
    hint = (str(state.report_dir / "transcripts" / reports.transcript_name(case_id(item))) if transcript
            else "no HTTP exchange was recorded")
    message = grade.message
    if grade.violations:
        message = failure_message(grade.violations, state.registry, hint) + (f"\n{grade.message}" * bool(grade.message))
    if report.when == "call" or grade.violations:
        outcome = grade.pytest_outcome(state.options.fail_on)
        if grade.outcome == XPASS:
            message = xpass_message(state.baseline, case_id(item), grade)
        if outcome == "failed" and (grade.violations or grade.outcome == XPASS):
            report.longrepr = message
        if grade.outcome == XFAIL and not hasattr(report, "wasxfail"):
            report.wasxfail = state.redactor.text(xfail_reason(state.baseline, case_id(item), grade))
        elif grade.outcome == WARN and outcome == "passed":
            report.sections.append(("conformance warnings", state.redactor.text(message)))
        if report.when == "setup" and outcome == "passed":  # a SHOULD stopped the setup: the test cannot run
            outcome = "skipped"
            report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"WARN: {message}")
        if grade.outcome == UNTESTABLE:  # nothing observed: shown as a skip with its reason, never as a pass
            report.longrepr = (str(item.path), (item.location[1] or 0) + 1, state.redactor.text(message))
        report.outcome = outcome
        if (outcome == "failed" or grade.outcome == WARN) and state.allure_enabled:
            reports.allure_attach(transcript, exchanges, state.redactor, message if grade.outcome == WARN else "")
    if transcript:
        report.sections.append(("conformance transcript", transcript))
    report.conformance = reports.case_record(case_id(item), grade, message, report.duration, transcript,
                                             state.redactor, exchanges)
    report.conformance["request_ids"] = ids = request_ids(exchanges)
    # What the controller's schema sweep needs (conformance/schema_sweep.py): every JSON answer and chunk this case
    # judged, validated against its schema; the record carries the findings, not the exchanges.
    report.conformance["schema"] = case_findings(exchanges, state.redactor.text, state.profile.get("ollama.base_path"))
    if state.options.server_trace_faults:
        tracer = item.config.stash.get(TRACER, None)
        # No tracer yet: the embedded server has not started, so a case without exchanges consulted nothing.
        report.conformance["faults_consulted"] = (tracer.faults_consulted(ids, grade.outcome) if tracer else
                                                  [] if not ids and grade.outcome != ERROR else None)


def pytest_report_teststatus(report, config):
    record = getattr(report, "conformance", None)
    if not record or report.when == "teardown" or (report.when == "setup" and not record["violations"]):
        return None
    if record["outcome"] == ERROR and report.failed:
        return "error", "E", "ERROR"
    if report.when == "setup" and report.failed:  # a fixture's expect.fatal: the gateway failed, not setup
        return "failed", "F", "FAILED"
    if record["outcome"] == WARN and not report.failed:
        return "warned", "W", ("WARN", {"yellow": True})
    if record["outcome"] == XPASS and report.failed:
        return "failed", "X", ("XPASS (stale baseline)", {"red": True})
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand the request/token counts (and a target found down) to the controller."""
    state = session.config.stash.get(STATE, None)
    if state is not None and state.active and _is_worker(session.config):
        session.config.workeroutput["conformance_accounting"] = state.accounting.as_dict()
        session.config.workeroutput["conformance_target_down"] = state.target_down


class TargetDownWatch:
    """Controller side: a target that stopped answering ends the run with ``TARGET_DOWN_EXIT`` and one line
    saying why, instead of one timeout per remaining case."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    @pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is not loaded
    def pytest_testnodedown(self, node, error) -> None:
        down = getattr(node, "workeroutput", {}).get("conformance_target_down")
        if down and not self.state.target_down:
            self.state.target_down = down

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.state.target_down:
            session.exitstatus = TARGET_DOWN_EXIT

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.target_down:
            terminalreporter.write_line(f"conformance: {self.state.target_down}; verdicts incomplete "
                                        f"(exit code {int(TARGET_DOWN_EXIT)})", red=True, bold=True)
