"""What CI tools read: JUnit XML (label in the names, WARNs visible) and Allure results (failures with messages)."""

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conformance.test_plugin import inner_suite

pytest_plugins = ["pytester"]


@pytest.fixture
def suite(pytester, monkeypatch):
    return inner_suite(pytester, monkeypatch)


def _testcases(path):
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    cases = {}
    for tc in suite.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        cases[tc.get("name")] = (tc, props)
    return suite, cases


def test_junit_names_carry_the_target_label_and_warns_are_visible(suite):
    suite()
    xml_suite, cases = _testcases(suite.pytester.path / "out" / "junit.xml")
    assert xml_suite.get("name") == "llm-conformance fake@embedded"
    warn, props = cases["test_should_warn"]
    assert warn.get("classname") == "fake@embedded.test_fake"
    assert props["conformance.outcome"] == "WARN" and props["conformance.target"] == "fake@embedded"
    assert warn.find("failure") is None and warn.find("skipped") is None  # a WARN passes the run...
    out = warn.find("system-out").text  # ...and says so where CI test views show a test's output
    assert "WARN: test_fake.py::test_should_warn violated a SHOULD requirement" in out
    assert "T-002 (SHOULD): The gateway SHOULD do two." in out and "Expected: a" in out and "Received: b" in out
    passed, props = cases["test_pass"]
    assert props["conformance.outcome"] == "PASS" and passed.find("system-out") is None
    assert cases["test_must_fail"][1]["conformance.outcome"] == "FAIL"


def test_junit_files_of_two_targets_merge_without_collisions(suite):
    suite("--junit-xml", "a.xml")
    suite("--target-url", "http://127.0.0.1:9", "--junit-xml", "b.xml")  # nothing there: no test asks for it
    _, a = _testcases(suite.pytester.path / "a.xml")
    _, b = _testcases(suite.pytester.path / "b.xml")
    keys_a = {(tc.get("classname"), name) for name, (tc, _) in a.items()}
    keys_b = {(tc.get("classname"), name) for name, (tc, _) in b.items()}
    assert len(keys_a) == len(keys_b) == len(a) and not keys_a & keys_b
    assert {c for c, _ in keys_b} == {"fake@127_0_0_1_9.test_fake"}


def test_junit_as_junitparser_reads_it(suite):
    """junitparser is the reader of the publish-unit-test-result GitHub Action: it must see the WARN's output and
    the label, and two targets' files merged must keep every case apart."""
    junitparser = pytest.importorskip("junitparser", reason="junitparser (dev dependency) reads the JUnit files")
    suite("--junit-xml", "a.xml")
    suite("--target-url", "http://127.0.0.1:9", "--junit-xml", "b.xml")
    merged = junitparser.JUnitXml.fromfile(str(suite.pytester.path / "a.xml")) + \
        junitparser.JUnitXml.fromfile(str(suite.pytester.path / "b.xml"))
    cases = [case for test_suite in merged for case in test_suite]
    assert len({(c.classname, c.name) for c in cases}) == len(cases) > 0
    assert {s.name for s in merged} == {"llm-conformance fake@embedded", "llm-conformance fake@127.0.0.1:9"}
    warns = [c for c in cases if c.name == "test_should_warn"]
    assert len(warns) == 2 and all(c.is_passed and "T-002 (SHOULD)" in c.system_out for c in warns)
    failed = [c for c in cases if c.name == "test_must_fail"]
    assert all(not c.is_passed and "Expected: one" in c.result[0].text for c in failed)


def test_allure_failures_carry_requirement_and_expected_received_and_stopcase_is_a_failure(suite):
    suite()
    results = {r["name"]: r for r in (json.loads(p.read_text()) for p in
                                      (suite.pytester.path / "out" / "allure-results").glob("*-result.json"))}
    soft = results["test_must_fail"]
    assert soft["status"] == "failed"
    message = soft["statusDetails"]["message"]
    assert "T-001 (MUST) violated" in message and 'Requirement: "The gateway MUST do one."' in message
    assert "Expected: one" in message and "Received: two" in message
    fatal = results["test_fatal_stops"]  # expect.fatal raised StopCase: a failure, not "broken"
    assert fatal["status"] == "failed" and "Expected: 200" in fatal["statusDetails"]["message"]
    untestable = results["test_untestable"]
    assert untestable["status"] == "failed" and "Not testable: no model to use" in untestable["statusDetails"]["message"]
    assert results["test_harness_error"]["status"] == "broken"  # the harness broke: Allure's "broken" is right
    failed = [r for r in results.values() if r["status"] == "failed"]
    assert failed and all(r.get("statusDetails", {}).get("message") for r in failed)
    warn = results["test_should_warn"]
    assert warn["status"] == "passed"
    assert "conformance warning (SHOULD violated)" in {a["name"] for a in warn.get("attachments", [])}


def test_allure_attaches_the_transcript_and_raw_sse_bytes_of_a_failed_stream(pytester, monkeypatch):
    for var in ("CONFORMANCE_TARGET_URL", "CONFORMANCE_API_KEY", "CONFORMANCE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    pytester.runpytest_subprocess("--pyargs", "conformance.suite", "--gw-profile", "openai", "--gw-server-fault", "SSE-002",
                                  "--gw-requirement", "SSE-002", "--gw-report-dir", "out", "-p", "no:cacheprovider")
    out = pytester.path / "out"
    failed = [r for r in (json.loads(p.read_text()) for p in (out / "allure-results").glob("*-result.json"))
              if r["status"] == "failed"]
    assert failed and all("SSE-002 (MUST) violated" in r["statusDetails"]["message"] for r in failed)
    names = [a["name"] for a in failed[0]["attachments"]]
    assert "HTTP transcript" in names and "SSE chunks with arrival times #1" in names
    raw = next(a for a in failed[0]["attachments"] if a["name"].startswith("raw SSE bytes #1: POST "))
    body = (out / "allure-results" / raw["source"]).read_text()
    assert body.startswith("data: {") and "[DONE]" not in body
    timings = next(a for a in failed[0]["attachments"] if a["name"] == "SSE chunks with arrival times #1")
    chunks = json.loads((out / "allure-results" / timings["source"]).read_text())["chunks"]
    assert len(chunks) >= 2 and all(c["ms"] >= 0 for c in chunks) and "".join(c["text"] for c in chunks) == body


def test_allure_never_shows_a_graded_case_as_broken(suite):
    """A SHOULD stopped by expect.fatal is a WARN that passes; in fixture setup it skips the test: neither is
    "broken" (a crashed test), and the MUST stopped in fixture setup is a failure with its message."""
    source = '''
import pytest
from conformance.expect import StopCase

@pytest.fixture
def broken_must():
    raise StopCase.violated("T-001", expected="a list", received="null")

@pytest.mark.requirement("T-002")
def test_should_fatal(expect):
    expect.fatal("T-002", False, expected="x", received="y")

@pytest.mark.requirement("T-001")
def test_must_in_setup(broken_must):
    pass
'''
    suite(source=source)
    results = {r["name"]: r for r in (json.loads(p.read_text()) for p in
                                      (suite.pytester.path / "out" / "allure-results").glob("*-result.json"))}
    assert results["test_should_fatal"]["status"] == "passed"
    setup = results["test_must_in_setup"]
    assert setup["status"] == "failed" and "Expected: a list" in setup["statusDetails"]["message"]


def test_schema_sweep_records_get_a_junit_test_case_that_fails_as_they_do(tmp_path):
    """The sweep's records are judged on the controller, after pytest wrote its test cases: the rewrite adds one
    per record, a failure where the record failed, so a CI view shows why the run failed."""
    from conformance import junit

    path = tmp_path / "junit.xml"
    path.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1" failures="0">'
                    '<testcase classname="conformance.suite.test_chat" name="test_basic"/></testsuite></testsuites>')
    violation = {"requirement": "CHAT-009", "expected": "valid CreateChatCompletionResponse",
                 "received": "choices/*/message: 'content' is a required property",
                 "note": "5 exchanges with this error", "untestable": False}
    results = {"run": {"label": "openai@gw"}, "requirements": {"CHAT-009": {"level": "MUST"}},
               "cases": [{"id": "schema-sweep::CHAT-009", "outcome": "FAIL", "message": "", "violations": [violation]},
                         {"id": "schema-sweep::CHAT-005", "outcome": "PASS", "message": "40 exchanges validated",
                          "violations": []}]}
    junit.rewrite(path, results)
    xml_suite, cases = _testcases(path)
    assert xml_suite.get("tests") == "3" and xml_suite.get("failures") == "1"
    failed, props = cases["CHAT-009"]
    assert failed.get("classname") == "openai@gw.schema_sweep" and props["conformance.outcome"] == "FAIL"
    assert "'content' is a required property" in failed.find("failure").get("message")
    passed, props = cases["CHAT-005"]
    assert passed.find("failure") is None and "40 exchanges validated" in passed.find("system-out").text
    junitparser = pytest.importorskip("junitparser", reason="junitparser (dev dependency) reads the JUnit files")
    read = [c for s in junitparser.JUnitXml.fromfile(str(path)) for c in s]
    assert [c.is_passed for c in read if c.name.startswith("CHAT-")] == [False, True]


def test_junit_knows_the_sweep_records_by_the_prefix_the_sweep_gives_them():
    """junit.py imports nothing of the suite (it runs on the controller after the run), so it spells the sweep's case
    prefix itself: the two spellings must not drift apart, or sweep records would become ordinary test cases."""
    from conformance import junit, schema_sweep

    assert junit.SWEEP_PREFIX == schema_sweep.CASE_PREFIX


def test_allure_results_written_in_the_background_are_allure_s_own(tmp_path):
    """The background writer writes what allure-pytest's file logger writes: same serialization, same file
    name pattern, every file on disk once it is closed."""
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import TestResult

    from conformance.allure_writer import BackgroundWriter

    item = TestResult(uuid="u-1", name="test_x", fullName="m#test_x", status="passed", labels=[])
    AllureFileLogger(tmp_path / "allure", clean=False)._report_item(item)
    writer = BackgroundWriter(tmp_path / "ours")
    (tmp_path / "ours").mkdir()
    for _ in range(50):
        writer.report_item(item)
    writer.close()
    theirs = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    ours = [json.loads(p.read_text()) for p in (tmp_path / "ours").glob("*-result.json")]
    assert len(ours) == 50 and all(o == theirs[0] for o in ours)
    assert not list((tmp_path / "ours").glob("*.tmp"))
