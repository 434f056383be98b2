"""JUnit XML touch-ups after pytest's junitxml wrote the file: the target's label in the names, WARNs visible.

pytest writes one ``<testcase>`` per test; the plugin tags each conformance case with a ``conformance.case``
property at collection. Here, on the controller once the file is written, every tagged test case gets:

- its ``classname`` prefixed with the run's label (``openai@gateway_example_com.conformance.suite.test_chat``)
  and the ``<testsuite>`` named after the label, so two targets' files merged in one CI job never collide;
- ``conformance.outcome`` and ``conformance.target`` properties (the verdict: PASS, WARN, XFAIL, ...);
- for a WARN (a SHOULD violated; the test passes unless ``--gw-fail-on should``), a ``<system-out>`` block naming
  each violated requirement with Expected and Received. CI test views (GitLab's test report, Jenkins' JUnit
  plugin) show a test case's standard output, where a property alone would stay hidden; pytest itself writes
  ``<system-out>`` only with ``junit_logging``, so this block is added whatever that setting is.

The schema sweep's records (``schema-sweep::<ID>``, conformance/schema_sweep.py) are judged on the controller from
every case's exchanges, so pytest never wrote a test case for them; each gets one here (classname
``<label>.schema_sweep``), with a ``<failure>`` when it failed, so a CI view shows why the run failed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CASE_PROPERTY = "conformance.case"
SWEEP_PREFIX = "schema-sweep::"  # conformance.schema_sweep.CASE_PREFIX (this module imports nothing of the suite)
FAILED = ("FAIL", "ERROR", "XPASS")


def slug(label: str) -> str:
    """The label as one classname segment: dots and other separators become ``_`` (CI tools split on dots)."""
    return re.sub(r"[^A-Za-z0-9@=_-]+", "_", label).strip("_") or "target"


def warning_text(case: Mapping[str, Any], requirements: Mapping[str, Any]) -> str:
    """What a WARN case violated, one block per violated SHOULD requirement."""
    lines = [f"WARN: {case['id']} violated a SHOULD requirement (the run passes unless --gw-fail-on should)."]
    for v in case.get("violations", []):
        req = requirements.get(v["requirement"], {})
        lines.append(f"{v['requirement']} ({req.get('level', '?')}): {req.get('text', '')}")
        if v.get("untestable"):
            lines.append(f"  Not testable: {v.get('note')}")
            continue
        lines += [f"  Expected: {v['expected']}", f"  Received: {v['received']}"]
        if v.get("note"):
            lines.append(f"  Note: {v['note']}")
    return "\n".join(lines) + "\n"


def rewrite(path: Path, results: Mapping[str, Any]) -> None:
    """Add the label, the verdict properties and WARN output to the JUnit file at ``path`` (in place)."""
    label = results["run"]["label"]
    prefix = slug(label)
    cases = {c["id"]: c for c in results["cases"]}
    tree = ET.parse(path)
    for suite in tree.getroot().iter("testsuite"):
        suite.set("name", f"llm-conformance {label}")
        for testcase in suite.iter("testcase"):
            props = testcase.find("properties")
            cid = next((p.get("value") for p in (props if props is not None else ())
                        if p.get("name") == CASE_PROPERTY), None)
            case = cases.get(cid) if cid else None
            if case is None:
                continue
            classname = testcase.get("classname")
            testcase.set("classname", f"{prefix}.{classname}" if classname else prefix)
            ET.SubElement(props, "property", name="conformance.outcome", value=case["outcome"])
            ET.SubElement(props, "property", name="conformance.target", value=label)
            if case["outcome"] == "WARN":
                _add_output(testcase, warning_text(case, results["requirements"]))
    suite = next(tree.getroot().iter("testsuite"), None)
    if suite is not None:
        for case in results["cases"]:
            if case["id"].startswith(SWEEP_PREFIX):
                _add_sweep_case(suite, case, results["requirements"], prefix, label)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _add_sweep_case(suite: ET.Element, case: Mapping[str, Any], requirements: Mapping[str, Any], prefix: str,
                    label: str) -> None:
    """One ``<testcase>`` for a schema-sweep record, counted in the suite's totals."""
    testcase = ET.SubElement(suite, "testcase", classname=f"{prefix}.schema_sweep",
                             name=case["id"].removeprefix(SWEEP_PREFIX), time="0")
    props = ET.SubElement(testcase, "properties")
    for name, value in ((CASE_PROPERTY, case["id"]), ("conformance.outcome", case["outcome"]),
                        ("conformance.target", label)):
        ET.SubElement(props, "property", name=name, value=value)
    suite.set("tests", str(int(suite.get("tests", "0")) + 1))
    if case["outcome"] in FAILED:
        lines = [f"{v['requirement']} ({requirements.get(v['requirement'], {}).get('level', '?')}): "
                 f"Expected {v['expected']}; Received {v['received']}" + (f" ({v['note']})" if v.get("note") else "")
                 for v in case.get("violations", [])]
        failure = ET.SubElement(testcase, "failure", message=(lines or [case.get("message") or "failed"])[0][:500])
        failure.text = "\n".join(lines) or case.get("message", "")
        suite.set("failures", str(int(suite.get("failures", "0")) + 1))
    elif case["outcome"] == "WARN":
        _add_output(testcase, warning_text(case, requirements))
    elif case.get("message"):
        _add_output(testcase, case["message"])


def _add_output(testcase: ET.Element, text: str) -> None:
    out = testcase.find("system-out")
    if out is None:
        out = ET.SubElement(testcase, "system-out")
        out.text = text
    else:
        out.text = text + "\n" + (out.text or "")
