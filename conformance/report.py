"""Run reports: ``results.json`` (machine), ``report.md`` and ``report.html`` (people), per-case transcripts, JUnit
touch-ups, Allure labels/attachments.

Everything here runs on the controller from plain dict case records (they crossed xdist as JSON), except the
Allure helpers, which run inside the test process.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conformance import case_trace, junit
from conformance.baseline import Baseline
from conformance.expect import StopCase
from conformance.outcomes import NOT_RUN, UNTESTABLE, requirement_verdict, worst
from conformance.redact import Redactor
from conformance.report_html import render_html
from conformance.report_md import render_markdown
from conformance.results_schema import SCHEMA_VERSION
from conformance.schema_sweep import CASE_PREFIX, sweep_records

ALLURE_SEVERITY = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor"}
STREAM_BYTES = 16384  # raw SSE bytes kept per streamed exchange of a case that did not pass


def case_record(case_id: str, grade: Any, message: str, duration_s: float, transcript: str,
                redactor: Redactor, exchanges: list | None = None) -> dict:
    """The JSON-able record of one graded case; it rides on the test report (survives xdist).

    ``message`` is what pytest shows; the record keeps only what the violations do not already say (a harness
    error, an assertion's text, the XPASS explanation), so a report lists each finding once. A case that did not
    pass keeps its transcript and, for streamed exchanges, the raw SSE bytes with their arrival times.
    """
    shown = grade.outcome not in ("PASS", "SKIP")
    return {"id": case_id, "requirements": dict(grade.requirements), "outcome": grade.outcome,
            "message": redactor.text(grade.message if grade.violations else message),
            "duration_ms": duration_s * 1000,
            "violations": [v.as_dict() for v in grade.violations],
            "transcript": redactor.text(transcript) if shown else "",
            "streams": stream_records(exchanges or [], redactor) if shown else []}


def stream_records(exchanges: list, redactor: Redactor, limit: int = STREAM_BYTES) -> list[dict]:
    """Raw SSE bytes of each streamed exchange, split as they arrived: ``[{ms, text}]`` plus the exchange's timings.

    The bytes are redacted as a whole; when redaction changed them, chunk borders no longer line up with the
    redacted text, and the stream is kept as one piece (a secret split across two chunks is never shown in part).
    Non-UTF-8 bytes appear as ``\\xNN``.
    """
    out = []
    for ex in exchanges:
        if not getattr(ex, "streamed", False):
            continue
        raw = bytes(ex.raw_body[:limit])
        shown = ex.body_excerpt(limit)
        shown = redactor.bytes(shown)
        chunks, start = [], 0
        marks = getattr(ex, "marks", None) or []  # (seconds since sent, body length so far), kept by the client
        if shown == raw and marks:
            for seconds, end in marks:
                end = min(end, len(shown))
                if end > start:
                    chunks.append({"ms": round(seconds * 1000, 1), "text": shown[start:end].decode("utf-8", "backslashreplace")})
                start = end
        elif shown:
            chunks.append({"ms": round(ex.elapsed_ms or 0.0, 1), "text": shown.decode("utf-8", "backslashreplace")})
        out.append({"request": redactor.text(f"{ex.method} {ex.url}"), "status": ex.status,
                    "headers_ms": _ms(ex.headers_ms), "first_byte_ms": _ms(ex.first_byte_ms),
                    "elapsed_ms": _ms(ex.elapsed_ms), "bytes": len(ex.raw_body),
                    "truncated": len(ex.raw_body) > limit, "chunks": chunks})
    return out


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def merge_record(old: dict | None, new: dict) -> dict:
    """Combine records of one case from several phases (call, then a teardown error): the worst wins."""
    if old is None:
        return new
    merged = dict(old)
    merged["requirements"] = {r: worst([v, new["requirements"].get(r, v)]) for r, v in old["requirements"].items()}
    merged["outcome"] = worst([old["outcome"], new["outcome"]])
    merged["message"] = "\n".join(m for m in (old.get("message"), new.get("message")) if m)
    merged["duration_ms"] = old.get("duration_ms", 0) + new.get("duration_ms", 0)
    merged["transcript"] = old.get("transcript") or new.get("transcript", "")
    merged["streams"] = old.get("streams") or new.get("streams", [])
    merged.update(case_trace.merge(old, new))
    return merged


def transcript_name(case_id: str) -> str:
    """File name of a case's transcript inside ``<report-dir>/transcripts``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id).strip("_")[:180] + ".txt"


def selected(rid: str, globs: tuple[str, ...]) -> bool:
    return not globs or any(fnmatch.fnmatchcase(rid, g) for g in globs)


def build_results(cases: list[dict], registry: Mapping[str, Any], baseline: Baseline, run: dict,
                  globs: tuple[str, ...] = ()) -> dict:
    """The ``results.json`` document."""
    per_req: dict[str, list[tuple[str, str]]] = {}
    for case in cases:
        for rid, verdict in case["requirements"].items():
            per_req.setdefault(rid, []).append((case["id"], verdict))
    requirements = {}
    for rid, req in registry.items():
        if not (rid in per_req or selected(rid, globs)):
            continue
        runs = per_req.get(rid, [])
        if req.untestable:
            verdict = UNTESTABLE
        elif runs:
            verdict = requirement_verdict([v for _, v in runs], baseline.requirement_wide(rid))
        else:
            verdict = NOT_RUN
        requirements[rid] = {"level": req.level, "area": req.area, "feature": req.feature, "text": req.text,
                             "verdict": verdict, "untestable": req.untestable,
                             "cases": [{"id": c, "verdict": v} for c, v in runs]}
    return {"schema_version": SCHEMA_VERSION, "run": {**run, "label": run_label(run)},
            "summary": summarize(cases, requirements), "requirements": requirements,
            "cases": [_case_entry(c) for c in cases]}


def run_label(run: Mapping[str, Any]) -> str:
    """A short, stable name for what was tested: ``<profile>@<host[:port]>[/path]`` (``@embedded`` for the embedded
    reference server, plus its faults and variants). Two runs of one target share it; JUnit names carry it."""
    target = str(run.get("target") or "embedded")
    parts = urlsplit(target)
    host = parts.netloc + parts.path.rstrip("/") if "://" in target else target
    label = f"{run.get('profile')}@{host or target}"
    extras = [f"fault={f}" for f in run.get("server_faults") or []]
    extras += [f"variant={v}" for v in run.get("server_variants") or []]
    return label + (f"[{','.join(extras)}]" if extras else "")


def _case_entry(case: dict) -> dict:
    return {"id": case["id"], "requirements": list(case["requirements"]), "verdicts": case["requirements"],
            "outcome": case["outcome"], "message": case.get("message", ""),
            "duration_ms": round(case.get("duration_ms", 0.0), 1), "violations": case.get("violations", []),
            "transcript": f"transcripts/{transcript_name(case['id'])}" if case.get("transcript") else None,
            "request_ids": case.get("request_ids", []), "streams": case.get("streams", []),
            **({"faults_consulted": case["faults_consulted"]} if "faults_consulted" in case else {})}


def summarize(cases: list[dict], requirements: dict) -> dict:
    """Counts of case outcomes, requirement verdicts, and requirement verdicts per level."""
    levels: dict[str, Counter] = {}
    for entry in requirements.values():
        levels.setdefault(entry["level"], Counter())[entry["verdict"]] += 1
    return {"cases": dict(Counter(c["outcome"] for c in cases)),
            "requirements": dict(Counter(e["verdict"] for e in requirements.values())),
            "levels": {level: dict(counts) for level, counts in levels.items()}}


def write_reports(report_dir: Path, results: dict, cases: list[dict], redactor: Redactor) -> list[Path]:
    """Write results.json, report.md, report.html and transcripts (everything through the redactor)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    tdir = report_dir / "transcripts"
    transcripts = {}
    for case in cases:
        if case.get("transcript"):
            tdir.mkdir(exist_ok=True)
            path = tdir / transcript_name(case["id"])
            transcripts[case["id"]] = text = redactor.text(case["transcript"])
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for name, text in (("results.json", json.dumps(results, indent=2, sort_keys=False)),
                       ("report.md", render_markdown(results)),
                       ("report.html", render_html(results, transcripts))):
        path = report_dir / name
        path.write_text(redactor.text(text), encoding="utf-8")
        written.append(path)
    return written


def allure_label(requirements: list[Any]) -> None:
    """Area as feature, requirement as story, strongest level as severity (inside the running test)."""
    try:
        import allure
    except ImportError:
        return
    for req in requirements:
        allure.dynamic.feature(req.area)
        allure.dynamic.story(req.id)
    levels = [r.level for r in requirements]
    strongest = next((lvl for lvl in ("MUST", "SHOULD", "MAY") if lvl in levels), None)
    if strongest:
        allure.dynamic.severity(ALLURE_SEVERITY[strongest])


def allure_attach(transcript: str, exchanges: list, redactor: Redactor, warning: str = "") -> None:
    """Attach the redacted transcript, each stream's raw SSE bytes and their arrival times (and, for a WARN, the
    warning) to the current Allure test."""
    try:
        import allure
    except ImportError:
        return
    text = allure.attachment_type.TEXT
    if warning:
        allure.attach(redactor.text(warning), name="conformance warning (SHOULD violated)", attachment_type=text)
    if transcript:
        allure.attach(transcript, name="HTTP transcript", attachment_type=text)
    for i, stream in enumerate(stream_records(exchanges, redactor), 1):
        raw = "".join(chunk["text"] for chunk in stream["chunks"])
        allure.attach(raw, name=f"raw SSE bytes #{i}: {stream['request']}", attachment_type=text)
        allure.attach(json.dumps(stream, indent=1), name=f"SSE chunks with arrival times #{i}",
                      attachment_type=allure.attachment_type.JSON)


def allure_outcome(call: pytest.CallInfo, report: Any, graded_failure: bool) -> None:
    """Make Allure show a graded case as graded: failures as failed with their message, nothing as "broken".

    allure-pytest takes a result's status and message from ``call.excinfo``: a case failed by soft ``expect``
    checks has none (Allure showed a failure without a message), and ``expect.fatal``'s StopCase is no
    AssertionError (Allure showed it as "broken", its marker for a crashed test, even for a WARN that passed).
    A graded failure's message (requirement, Expected, Received) becomes the AssertionError Allure reads, the
    original exception its cause; a StopCase of a case that passed (WARN) or was skipped is taken away or becomes
    the skip. Harness errors keep their exception: "broken" is right for them.
    """
    original = call.excinfo.value if call.excinfo is not None else None
    if report.failed and graded_failure:
        try:
            raise AssertionError(str(report.longrepr)) from original
        except AssertionError as exc:
            call.excinfo = pytest.ExceptionInfo.from_exception(exc)
    elif isinstance(original, StopCase) and report.passed:
        call.excinfo = None
    elif isinstance(original, StopCase) and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        try:
            pytest.skip(reason)
        except pytest.skip.Exception as exc:
            call.excinfo = pytest.ExceptionInfo.from_exception(exc)


class ResultsRecorder:
    """Controller-side plugin: gathers case records from reports, sums worker accounting, writes the reports.

    Registered only on the controller (never on an xdist worker), so each case is recorded once.
    """

    def __init__(self, state: Any) -> None:
        self.state = state
        self.cases: dict[str, dict] = {}
        self.results: dict | None = None
        self.written: list[Path] = []

    def pytest_runtest_logreport(self, report) -> None:
        record = getattr(report, "conformance", None)
        if record:
            self.cases[record["id"]] = merge_record(self.cases.get(record["id"]), record)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """xdist: add each worker's request/token counts (they never cross as test reports)."""
        self.state.accounting.merge(getattr(node, "workeroutput", {}).get("conformance_accounting") or {})

    @pytest.hookimpl(trylast=True)  # after junitxml wrote its file: junit.rewrite edits it
    def pytest_sessionfinish(self, session, exitstatus) -> None:
        state = self.state
        if session.config.option.collectonly:
            return
        cases = [self.cases[k] for k in sorted(self.cases)]
        # The schema sweep's records, one per requirement, from every case of every worker (schema_sweep.py).
        cases += sweep_records(cases, state.registry, state.profile, state.baseline,
                               traced=state.options.server_trace_faults, globs=state.options.requirement_globs)
        self.results = build_results(cases, state.registry, state.baseline, state.run_info(),
                                     state.options.requirement_globs)
        self.written = write_reports(state.report_dir, self.results, cases, state.redactor)
        xml = session.config.option.xmlpath
        xml_path = Path(session.config.invocation_params.dir, os.path.expanduser(xml)) if xml else None
        if xml_path is not None and xml_path.is_file():
            junit.rewrite(xml_path, self.results)
        if (self.stale() or self.sweep_failed()) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a stale baseline or a sweep failure fails the run

    def sweep_failed(self) -> list[str]:
        """Schema-sweep records that fail the run as a failed case would (they are no pytest case of their own)."""
        failing = {"FAIL", "XPASS", "ERROR"} | ({"WARN"} if self.state.options.fail_on == "should" else set())
        return [c["id"] for c in (self.results or {}).get("cases", [])
                if c["id"].startswith(CASE_PREFIX) and c["outcome"] in failing]

    def stale(self) -> list[str]:
        reqs = (self.results or {}).get("requirements", {})
        return [rid for rid, r in reqs.items() if r["verdict"] == "XPASS"]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.results is None:
            return
        tr = terminalreporter
        tr.section("llm-gateway-conformance")
        counts = self.results["summary"]["requirements"]
        tr.line("requirements: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
        for cid in self.sweep_failed():
            tr.line(f"schema sweep: {cid.removeprefix(CASE_PREFIX)} failed (see results.json, case {cid})", red=True)
        for rid in self.stale():
            tr.line(f"stale baseline entry: {rid} passed (XPASS); remove it from the baseline", red=True)
        tr.line(f"reports: {self.state.report_dir}")
