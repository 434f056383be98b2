"""The plugin end to end with pytester: tiny fake suites, a fake registry and profile, a loopback target."""

import json
import socket
import threading

import pytest
import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gateway_spec import load_profile

pytest_plugins = ["pytester"]

KEY = "sk-plugin-secret-0123456789"
PROFILE_KEY = "sk-fake-profile-key-0000"

# Patched into the inner runs (also in xdist workers): the real registry plus T-/U- test requirements.
CONFTEST = '''
import conformance.options as options
from gateway_spec import Requirement

FAKE = {
    "T-001": Requirement("T-001", "MUST", "The gateway MUST do one.", "tarea"),
    "T-002": Requirement("T-002", "SHOULD", "The gateway SHOULD do two.", "tarea"),
    "T-003": Requirement("T-003", "MAY", "The gateway MAY do three.", "tarea", feature="feat-a"),
    "T-004": Requirement("T-004", "MUST", "The gateway MUST do four.", "tarea", feature="feat-b"),
    "T-005": Requirement("T-005", "SHOULD", "Invisible on the wire.", "tarea", untestable="not observable"),
    "U-001": Requirement("U-001", "MUST", "The gateway MUST do U.", "uarea"),
}
_real = options.load_requirements
options.load_requirements = lambda: {**_real(), **FAKE}


def pytest_unconfigure():
    options.load_requirements = _real
'''



def _fake_profile() -> str:
    """A schema-valid profile (custom profiles are validated): openai's, with its own key, one model and feat-a."""
    raw = dict(load_profile("openai").raw)
    raw.update(name="fake", features=["feat-a"],
               auth={**raw["auth"], "test_key": PROFILE_KEY, "extra_test_keys": {}},
               models={**raw["models"], "default_chat": "m1", "default_embedding": None, "embedding": [],
                       "chat": [{"id": "m1", "owned_by": "me", "aliases": [], "reasoning": None}]})
    return yaml.safe_dump(raw, sort_keys=False)


PROFILE = _fake_profile()

OUTCOMES_SUITE = '''
import pytest
from conformance.client import HarnessError

@pytest.mark.requirement("T-001")
def test_pass(expect):
    expect("T-001", True, expected=1, received=1)

@pytest.mark.requirement("T-001", "T-002")
def test_must_fail(expect):
    expect("T-001", 1 == 2, expected="one", received="two")

@pytest.mark.requirement("T-002")
def test_should_warn(expect):
    expect("T-002", False, expected="a", received="b")

@pytest.mark.requirement("T-003")
def test_may_claimed_fail(expect):
    expect("T-003", False, expected="x", received="y")

@pytest.mark.requirement("T-004")
def test_unclaimed(expect):
    raise AssertionError("never runs")

@pytest.mark.requirement("T-001")
def test_harness_error():
    raise HarnessError("connection reset by fake")

@pytest.mark.requirement("T-001")
def test_untestable(expect):
    expect.untestable("T-001", "no model to use")

@pytest.mark.requirement("T-001", "T-002")
def test_plain_assert():
    assert 1 == 2

@pytest.mark.requirement("T-001")
def test_id_not_in_marker(expect):
    expect("T-002", True, expected=1, received=1)

@pytest.mark.requirement("T-001")
def test_fatal_stops(expect):
    expect.fatal("T-001", False, expected="200", received="500")
    raise RuntimeError("not reached")
'''

EXPECTED_CASES = {
    "test_pass": "PASS", "test_must_fail": "FAIL", "test_should_warn": "WARN", "test_may_claimed_fail": "FAIL",
    "test_unclaimed": "SKIP", "test_harness_error": "ERROR", "test_untestable": "FAIL", "test_plain_assert": "FAIL",
    "test_id_not_in_marker": "ERROR", "test_fatal_stops": "FAIL",
}


def inner_suite(pytester, monkeypatch):
    """A pytester dir with the fake registry conftest and profile; returns a runner with the common options
    (shared with test_case_trace.py)."""
    for var in ("CONFORMANCE_TARGET_URL", "CONFORMANCE_API_KEY", "CONFORMANCE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", profile=PROFILE)

    def run(*args, source=OUTCOMES_SUITE, name="test_fake", subprocess=False):
        path = pytester.makepyfile(**{name: source})
        # The path is explicit: with conformance options and no paths the plugin would run the bundled suite.
        # Inner runs judge the plugin's own behaviour against fakes: the preflight (tests/conformance/test_preflight.py)
        # would stop most of them before any check, so it is off unless a test asks for it.
        preflight = () if "--preflight" in args else ("--gw-no-preflight",)
        args = tuple(a for a in args if a != "--preflight")
        argv = [path.name, "--gw-profile", "profile.yaml", "--gw-report-dir", "out", "-p", "no:cacheprovider", *preflight,
                *args]
        return (pytester.runpytest_subprocess if subprocess else pytester.runpytest)(*argv)
    run.pytester = pytester
    return run


@pytest.fixture
def suite(pytester, monkeypatch):
    return inner_suite(pytester, monkeypatch)


def results(pytester) -> dict:
    return json.loads((pytester.path / "out" / "results.json").read_text())


def case_outcomes(data) -> dict:
    return {c["id"].split("::")[-1]: c["outcome"] for c in data["cases"]}


@pytest.fixture(scope="module")
def echo_server():
    """Loopback target: /v1/echo reflects request headers and body (so a leaked key would be visible)."""
    @Request.application
    def app(request):
        body = {"object": "list", "data": [], "headers": dict(request.headers), "body": request.get_data(as_text=True),
                "usage": {"prompt_tokens": 2, "completion_tokens": 3}}
        return Response(json.dumps(body), content_type="application/json")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_each_outcome_is_graded_and_reported(suite):
    result = suite()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = results(suite.pytester)
    assert case_outcomes(data) == EXPECTED_CASES
    outcomes = result.parseoutcomes()
    assert (outcomes["failed"], outcomes["passed"], outcomes["skipped"], outcomes["errors"], outcomes["warned"]) == \
        (5, 1, 1, 2, 1)
    reqs = data["requirements"]
    assert (reqs["T-001"]["verdict"], reqs["T-002"]["verdict"], reqs["T-003"]["verdict"]) == ("FAIL", "WARN", "FAIL")
    assert reqs["T-004"]["verdict"] == "SKIP" and reqs["T-005"]["verdict"] == "UNTESTABLE"
    skipped = next(c for c in data["cases"] if c["id"].endswith("test_unclaimed"))
    assert skipped["message"] == "feature feat-b not claimed by profile fake"


def test_a_pass_needs_an_evaluated_expectation(suite):
    """A requirement no expectation judged in a case is UNTESTABLE there (a skip with the reason), never PASS."""
    source = '''
import pytest

@pytest.mark.requirement("T-001", "T-002")
def test_half_observed(expect):
    expect("T-001", True, expected=1, received=1)

@pytest.mark.requirement("T-001")
def test_returns_early(expect):
    return
'''
    result = suite(source=source)
    result.assert_outcomes(passed=1, skipped=1)
    data = results(suite.pytester)
    assert case_outcomes(data) == {"test_half_observed": "PASS", "test_returns_early": "UNTESTABLE"}
    early = next(c for c in data["cases"] if c["id"].endswith("test_returns_early"))
    assert "no expectation was evaluated for T-001" in early["message"]
    reqs = data["requirements"]
    assert (reqs["T-001"]["verdict"], reqs["T-002"]["verdict"]) == ("PASS", "UNTESTABLE")


def test_failure_message_quotes_requirement_expected_received_and_transcript(suite):
    result = suite()
    out = result.stdout.str()
    assert "T-001 (MUST) violated" in out and '"The gateway MUST do one."' in out
    assert "Expected: one" in out and "Received: two" in out
    assert "T-001 (MUST) Not testable: no model to use" in out
    assert "Transcript: no HTTP exchange was recorded" in out
    assert "ERROR at call of test_harness_error" in out or "ERROR test_fake.py::test_harness_error" in out
    assert "not in the test's requirement marker" in out


def test_pytest_fail_is_fail_and_pytest_xfail_is_xfail(suite):
    source = '''
import pytest

@pytest.mark.requirement("T-001")
def test_failed():
    pytest.fail("explicit failure")

@pytest.mark.requirement("T-001")
def test_xfailed():
    pytest.xfail("known limitation")
'''
    result = suite(source=source)
    result.assert_outcomes(failed=1, xfailed=1)
    assert case_outcomes(results(suite.pytester)) == {"test_failed": "FAIL", "test_xfailed": "XFAIL"}


def test_fail_on_should_turns_warn_into_failure(suite):
    source = '''
import pytest

@pytest.mark.requirement("T-002")
def test_should_warn(expect):
    expect("T-002", False, expected="a", received="b")
'''
    assert suite(source=source).ret == pytest.ExitCode.OK
    result = suite("--gw-fail-on", "should", source=source)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert case_outcomes(results(suite.pytester)) == {"test_should_warn": "WARN"}


BASELINE_SUITE = '''
import pytest

@pytest.mark.requirement("T-001")
def test_known_bug(expect):
    expect("T-001", False, expected="a", received="b")

@pytest.mark.requirement("U-001")
def test_fixed_long_ago(expect):
    expect("U-001", True, expected="a", received="a")
'''


def test_baseline_turns_known_failures_into_xfail(suite):
    suite.pytester.makefile(".yaml", baseline="expected_failures:\n  - {requirement: T-001, reason: vendor bug 12}\n")
    result = suite("--gw-baseline", "baseline.yaml", "-rx", source=BASELINE_SUITE)  # -rx: the summary shows the reason
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, xfailed=1)
    data = results(suite.pytester)
    assert data["requirements"]["T-001"]["verdict"] == "XFAIL"
    assert "vendor bug 12" in result.stdout.str()


def test_stale_baseline_entry_fails_the_run(suite):
    suite.pytester.makefile(".yaml", baseline="- T-001\n- U-001\n")
    result = suite("--gw-baseline", "baseline.yaml", source=BASELINE_SUITE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert results(suite.pytester)["requirements"]["U-001"]["verdict"] == "XPASS"
    result.stdout.fnmatch_lines(["*stale baseline entry: U-001*"])


def test_case_specific_baseline_entry_that_passes_is_xpass(suite):
    suite.pytester.makefile(".yaml", baseline="- {requirement: U-001, case: test_fixed_long_ago}\n")
    result = suite("--gw-baseline", "baseline.yaml", source=BASELINE_SUITE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert case_outcomes(results(suite.pytester))["test_fixed_long_ago"] == "XPASS"
    result.stdout.fnmatch_lines(["*XPASS: the baseline expects U-001 to fail*"])


def test_requirement_glob_selects_cases(suite):
    result = suite("--gw-requirement", "T-00[23]")
    data = results(suite.pytester)
    assert set(case_outcomes(data)) == {"test_must_fail", "test_should_warn", "test_may_claimed_fail",
                                        "test_plain_assert"}
    assert "deselected" in result.stdout.str()
    assert set(data["requirements"]) >= {"T-002", "T-003"} and "U-001" not in data["requirements"]


def test_unknown_requirement_id_is_a_collection_error(suite):
    result = suite(source='import pytest\n@pytest.mark.requirement("T-999")\ndef test_x():\n    pass\n')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "T-999" in result.stderr.str()


def test_report_files_junit_properties_and_header(suite):
    result = suite()
    out = suite.pytester.path / "out"
    assert {"results.json", "report.md", "junit.xml"} <= {p.name for p in out.iterdir()}
    data = results(suite.pytester)
    assert set(data["run"]) >= {"target", "profile", "started", "finished", "suite_version", "requests",
                                "prompt_tokens", "completion_tokens"}
    assert data["run"]["profile"] == "fake"
    case = next(c for c in data["cases"] if c["id"].endswith("test_must_fail"))
    assert case["requirements"] == ["T-001", "T-002"] and case["duration_ms"] >= 0
    junit = (out / "junit.xml").read_text()
    assert '<property name="requirement" value="T-001" />' in junit
    assert '<property name="T-002.level" value="SHOULD" />' in junit
    assert "### T-001 (MUST): FAIL" in (out / "report.md").read_text()
    result.stdout.fnmatch_lines(["conformance: target embedded reference server, profile fake*"])


def test_transcripts_and_accounting_with_a_real_target_never_leak_the_key(suite, echo_server):
    source = '''
import logging
import pytest

@pytest.mark.requirement("T-001")
def test_echo(client, expect):
    body = client.post_json("/echo", {"key": client.api_key}).json()
    logging.getLogger("suite").warning("got %s", body)
    expect("T-001", False, expected="nothing", received=body)
'''
    result = suite("--target-url", echo_server, "--gw-api-key", KEY, "--gw-header", "X-Trace: on", source=source)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = suite.pytester.path / "out"
    data = results(suite.pytester)
    assert (data["run"]["requests"], data["run"]["prompt_tokens"], data["run"]["completion_tokens"]) == (1, 2, 3)
    result.stdout.fnmatch_lines(["Transcript: *transcripts*test_fake.py_test_echo.txt"])
    transcript = (out / data["cases"][0]["transcript"]).read_text()
    assert "> POST " + echo_server + "/v1/echo" in transcript and "X-Trace: on" in transcript
    text = result.stdout.str() + result.stderr.str()
    assert "[REDACTED]" in text and "got " in text  # the captured log is there, redacted or not
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
    assert KEY not in result.stdout.str().replace("--gw-api-key " + KEY, "")
    allure = [json.loads(p.read_text()) for p in (out / "allure-results").glob("*-result.json")]
    (echo,) = [r for r in allure if r["name"] == "test_echo"]
    labels = {(label["name"], label["value"]) for label in echo["labels"]}
    assert {("feature", "tarea"), ("story", "T-001"), ("severity", "critical")} <= labels
    assert "HTTP transcript" in {a["name"] for a in echo.get("attachments", [])}


def test_malformed_header_option_is_a_usage_error(suite):
    assert suite("--gw-header", "no-colon-here").ret == pytest.ExitCode.USAGE_ERROR


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_error_not_fail(suite):
    source = '''
import pytest

@pytest.mark.requirement("T-001")
def test_models(client, expect):
    response = client.get("/models")
    expect("T-001", response.status_code == 200, expected=200, received=response.status_code)
'''
    # --gw-no-preflight: the preflight would stop the run before any check (tests/conformance/test_preflight.py)
    result = suite("--target-url", f"http://127.0.0.1:{_closed_port()}", "--gw-no-preflight", source=source)
    assert case_outcomes(results(suite.pytester)) == {"test_models": "ERROR"}
    result.assert_outcomes(errors=1)


def test_request_budget_errors_later_cases(suite, echo_server):
    source = '''
import pytest

@pytest.mark.requirement("T-001")
def test_one(client, expect):
    expect("T-001", client.get("/models").status_code == 200, expected="200", received="other")

@pytest.mark.requirement("T-001")
def test_two(client, expect):
    expect("T-001", client.get("/models").status_code == 200, expected="200", received="other")
'''
    suite("--target-url", echo_server, "--gw-request-budget", "1", source=source)
    data = results(suite.pytester)
    assert case_outcomes(data) == {"test_one": "PASS", "test_two": "ERROR"}
    assert "budget exhausted" in data["cases"][1]["message"]


def test_env_fallbacks_feed_the_options(suite, monkeypatch, echo_server):
    monkeypatch.setenv("CONFORMANCE_TARGET_URL", echo_server + "/")
    monkeypatch.setenv("CONFORMANCE_API_KEY", KEY)
    source = f'''
import pytest

@pytest.mark.requirement("T-001")
def test_env(conformance, target, api_key):
    assert target == "{echo_server}"
    assert api_key == "{KEY}"
    assert conformance.options.profile == "profile.yaml"
'''
    assert suite(source=source).ret == pytest.ExitCode.OK


def test_profile_test_key_only_for_the_embedded_server(suite, echo_server):
    source = '''
import pytest

@pytest.mark.requirement("T-001")
def test_key(conformance):
    assert conformance.api_key is None
'''
    assert suite("--target-url", echo_server, source=source).ret == pytest.ExitCode.OK


def test_server_fault_needs_the_embedded_server(suite):
    result = suite("--target-url", "http://127.0.0.1:9", "--gw-server-fault", "T-001")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_list_requirements_is_a_dry_run(suite):
    result = suite("--gw-list-requirements", "--gw-requirement", "T-*")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "T-001 *MUST*-*claimed*The gateway MUST do one.",
        "T-004 *MUST*feat-b*not-claimed*",
        "T-005 *SHOULD*-*untestable*Invisible on the wire.",
    ])
    assert "test_pass" not in result.stdout.str() and not (suite.pytester.path / "out").exists()


def test_plugin_is_inert_outside_a_conformance_run(pytester, monkeypatch):
    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "conformance:" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_conformance_option_without_paths_collects_the_bundled_suite(pytester, monkeypatch):
    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)
    pytester.makepyfile("def test_local():\n    pass\n")  # must not be collected
    result = pytester.runpytest("--gw-profile", "openai", "--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "test_models.py::" in out and "test_local" not in out


def test_pyargs_and_cli_collect_the_same_cases_from_any_directory(pytester, monkeypatch, capsys):
    from conformance import cli

    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)
    via_pyargs = pytester.runpytest("--pyargs", "conformance.suite", "--collect-only", "-q", "-p",
                                    "no:cacheprovider")
    capsys.readouterr()
    assert cli.main(["--collect-only", "-q", "-p", "no:cacheprovider"]) == 0
    via_cli = capsys.readouterr().out

    def names(text):
        return sorted(line.split("::", 1)[1] for line in text.splitlines() if "::" in line)
    assert names(via_pyargs.stdout.str()) == names(via_cli) and names(via_cli)


@pytest.mark.slow
def test_xdist_gives_the_same_verdicts_as_one_process(suite):
    # Heavy unrelated plugins off: worker start-up (hypothesis import) dominates this test's time.
    lean = ("-p", "no:hypothesispytest", "-p", "no:schemathesis", "-p", "no:benchmark")
    suite(*lean)
    single = results(suite.pytester)
    suite("-n", "2", *lean)  # controller in process, workers are fresh processes (the conftest patches them too)
    parallel = results(suite.pytester)
    assert case_outcomes(parallel) == case_outcomes(single) == EXPECTED_CASES
    verdicts = {rid: r["verdict"] for rid, r in single["requirements"].items() if rid.startswith("T-")}
    assert {rid: r["verdict"] for rid, r in parallel["requirements"].items() if rid.startswith("T-")} == verdicts


def test_secrets_in_harness_errors_and_prints_are_redacted(suite):
    source = f'''
import pytest
from conformance.client import HarnessError

@pytest.mark.requirement("T-001")
def test_leaky():
    print("stdout has {KEY}")
    raise HarnessError("connect failed for key {KEY}")
'''
    result = suite("--gw-api-key", KEY, "--target-url", "http://127.0.0.1:9", "--gw-no-preflight", source=source)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "stdout has [REDACTED]" in out and "connect failed for key [REDACTED]" in out
    assert KEY not in out
    for path in (suite.pytester.path / "out").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path


ROLE_KEY = "sk-role-secret-no-balance-42"


def test_role_keys_reach_the_checks_and_stay_secret(suite):
    source = f'''
import pytest

@pytest.mark.requirement("T-001")
def test_role(conformance, expect):
    key = conformance.role_key("no-balance")
    print("role key", key)
    assert conformance.role_key("restricted") is None  # not given, and no embedded server to ask
    expect("T-001", key == "{ROLE_KEY}", expected="the --gw-role-key value", received=key)
'''
    result = suite("--target-url", "http://127.0.0.1:9", "--gw-no-preflight", "--gw-role-key", f"no-balance={ROLE_KEY}", source=source)
    result.assert_outcomes(passed=1)
    for path in (suite.pytester.path / "out").rglob("*"):
        if path.is_file():
            assert ROLE_KEY not in path.read_text(errors="replace"), path
    bad = suite("--target-url", "http://127.0.0.1:9", "--gw-role-key", "admin=sk-x", source=source)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR and "sk-x" not in bad.stderr.str() + bad.stdout.str()


def test_embedded_server_serves_the_profile_and_releases_its_port():
    import httpx

    from conformance.embedded import EmbeddedServer

    with EmbeddedServer("openai") as server:
        url = server.url
        response = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer sk-conformance-test"})
        assert response.status_code == 200 and response.json()["object"] == "list"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/models")


def test_server_fault_reaches_the_embedded_server_as_a_negative_control(pytester, monkeypatch):
    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)
    args = ("--gw-requirement", "MODELS-003", "--gw-report-dir", "out", "-p", "no:cacheprovider")
    clean = pytester.runpytest(*args)
    assert clean.ret == pytest.ExitCode.OK
    broken = pytester.runpytest(*args, "--gw-server-fault", "MODELS-003")
    assert broken.ret == pytest.ExitCode.TESTS_FAILED
    data = results(pytester)
    assert data["requirements"]["MODELS-003"]["verdict"] == "FAIL"
    assert data["run"]["server_faults"] == ["MODELS-003"]
    broken.stdout.fnmatch_lines(["conformance: target embedded reference server, profile openai, fault MODELS-003*"])


@pytest.mark.parametrize(("budget", "workers", "shares"), [(10, 2, [5, 5]), (5, 2, [3, 2]), (1, 3, [1, 0, 0])])
def test_request_budget_is_shared_out_among_xdist_workers(budget, workers, shares):
    from types import SimpleNamespace

    from conformance.options import _process_budget

    got = [_process_budget(budget, SimpleNamespace(workerinput={"workercount": workers, "workerid": f"gw{i}"}))
           for i in range(workers)]
    assert got == shares and sum(got) == budget
    assert _process_budget(budget, SimpleNamespace()) == budget


SETUP_STOP_SUITE = '''
import pytest
from conformance.expect import StopCase

@pytest.fixture
def checked_models(expect):
    expect.fatal("T-001", False, expected="HTTP 200", received="HTTP 500")

@pytest.fixture(scope="session")
def shared_exchange():
    raise StopCase.violated("T-001", expected="a JSON list", received="<html>")

@pytest.mark.requirement("T-001")
def test_function_fixture(checked_models):
    pass

@pytest.mark.requirement("T-001")
def test_shared_fixture_same_requirement(shared_exchange):
    pass

@pytest.mark.requirement("U-001", "T-002")
def test_shared_fixture_other_requirements(shared_exchange):
    pass

@pytest.mark.requirement("T-002")
def test_should_stops_setup(expect, request):
    expect.fatal("T-002", False, expected="x", received="y")
'''


def test_stop_case_in_fixture_setup_is_the_gateways_failure_not_an_error(suite):
    result = suite(source=SETUP_STOP_SUITE)
    data = results(suite.pytester)
    cases = {c["id"].split("::")[-1]: c for c in data["cases"]}
    assert case_outcomes(data) == {"test_function_fixture": "FAIL", "test_shared_fixture_same_requirement": "FAIL",
                                   "test_shared_fixture_other_requirements": "FAIL", "test_should_stops_setup": "WARN"}
    same = cases["test_shared_fixture_same_requirement"]["violations"]
    assert same == [{"requirement": "T-001", "expected": "a JSON list", "received": "<html>", "note": None,
                     "untestable": False}]
    other = cases["test_shared_fixture_other_requirements"]
    assert other["verdicts"] == {"U-001": "FAIL", "T-002": "FAIL"}  # "Not testable" is FAIL at any level
    assert all(v["untestable"] and "prerequisite T-001" in v["note"] for v in other["violations"])
    result.assert_outcomes(failed=3, errors=0)
    assert "3 failed, 1 warned" in result.stdout.str()


def test_harness_error_report_is_one_line_without_the_chained_traceback(suite):
    source = '''
import pytest
from conformance.client import HarnessError

def deep(n):
    if n:
        return deep(n - 1)
    raise ValueError("transport internals")

@pytest.mark.requirement("T-001")
def test_transport():
    try:
        deep(30)
    except ValueError as exc:
        raise HarnessError("cannot connect to http://gw.test") from exc
'''
    result = suite(source=source)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "HarnessError: cannot connect to http://gw.test  (test_fake.py:" in out
    assert "transport internals" not in out and "def deep" not in out, "no chained traceback is formatted"
    assert results(suite.pytester)["cases"][0]["message"].startswith("HarnessError: cannot connect")
