"""The exchange store end to end: planned exchanges sent concurrently, the 429 back-off, a target that stops
answering, and ``--gw-replay`` of a recording (tiny suites with pytester, loopback targets)."""

import json
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conformance.test_plugin import case_outcomes, inner_suite, results

pytest_plugins = ["pytester"]

PLANNED_SUITE = '''
import pytest
from conformance.exchanges import Spec, exchange

{declarations}

@pytest.mark.requirement("T-001")
def test_uses_all({names}, expect):
    for ex in ({names},):
        expect("T-001", ex.status == 200, expected=200, received=ex.status)
'''


def gets(**paths: str) -> str:
    """Declarations of exchanges, one GET each: ``gets(a="/a")`` declares ``a`` sending ``GET {base}/a``."""
    return "\n".join(f"@exchange\ndef {name}(plan):\n    return Spec.get({path!r})\n" for name, path in paths.items())


def planned_suite(count: int) -> str:
    names = [f"item_{n}" for n in range(count)]
    declarations = gets(**{name: f"/item/{n}" for n, name in enumerate(names)})
    return PLANNED_SUITE.format(declarations=declarations, names=", ".join(names))


@pytest.fixture
def suite(pytester, monkeypatch):
    return inner_suite(pytester, monkeypatch)


class Target:
    """A loopback HTTP target that counts requests and the most it had in flight at once."""

    def __init__(self, delay: float = 0.0, first_429: bool = False) -> None:
        self.delay, self.first_429 = delay, first_429  # delay: every path but the root
        self.requests, self.in_flight, self.max_in_flight = 0, 0, 0
        self.events: list[str] = []  # "arrived <path>" (the base path left out), in order
        self._lock = threading.Lock()
        self._seen: set[str] = set()

        @Request.application
        def app(request):
            with self._lock:
                self.events.append(f"arrived {request.path.removeprefix('/v1')}")
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                first = request.path not in self._seen
                self._seen.add(request.path)
            try:
                time.sleep(self.delay if request.path != "/" else 0)
                if self.first_429 and first and request.path != "/":
                    return Response('{"error": {"message": "slow down", "type": "rate_limit", "param": null, '
                                    '"code": null}}', status=429, content_type="application/json",
                                    headers={"Retry-After-Ms": "20"})
                return Response(json.dumps({"path": request.path}), content_type="application/json")
            finally:
                with self._lock:
                    self.in_flight -= 1

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target_factory():
    made = []

    def make(**kw) -> Target:
        made.append(Target(**kw))
        return made[-1]

    yield make
    for target in made:
        target.close()


def test_planned_exchanges_go_out_concurrently_under_the_cap(suite, target_factory):
    target = target_factory(delay=0.3)
    result = suite("--target-url", target.url, "--gw-concurrency", "4", source=planned_suite(9))
    result.assert_outcomes(passed=1)
    assert target.requests == 9  # each once
    assert 2 <= target.max_in_flight <= 4


def test_concurrency_one_sends_one_after_another(suite, target_factory):
    target = target_factory(delay=0.05)
    suite("--target-url", target.url, "--gw-concurrency", "1", source=planned_suite(5)).assert_outcomes(passed=1)
    assert target.max_in_flight == 1


def test_a_429_is_retried_after_retry_after_and_both_attempts_are_kept(suite, target_factory):
    target = target_factory(first_429=True)
    suite("--target-url", target.url, source=planned_suite(3)).assert_outcomes(passed=1)
    assert target.requests == 6  # a 429, then the answer, for each
    recorded = [json.loads(line) for path in (suite.pytester.path / "out" / "exchanges").glob("*.jsonl")
                for line in path.read_text().splitlines()[1:]]
    assert sorted(r["status"] for r in recorded) == [200, 200, 200, 429, 429, 429]


class HungTarget:
    """Accepts connections and, after answering ``answer_first`` requests, never answers again."""

    def __init__(self, answer_first: int = 0) -> None:
        self.answer_first, self.accepted = answer_first, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.answer_first:
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
            else:
                self.held.append(conn)  # read nothing, answer nothing

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                         b"Connection: close\r\n\r\n{}")

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


DIRECT_SUITE = '''
import pytest

@pytest.mark.parametrize("n", range(12))
@pytest.mark.requirement("T-001")
def test_direct(client, expect, n):
    response = client.get(f"/item/{n}")
    expect("T-001", response.status_code == 200, expected=200, received=response.status_code)
'''


def timeouts_recorded(pytester) -> int:
    return sum(json.loads(line).get("error_kind") == "RequestTimedOut"
               for path in (pytester.path / "out" / "exchanges").glob("*.jsonl")
               for line in path.read_text().splitlines()[1:])


@pytest.mark.parametrize("source", [planned_suite(12), DIRECT_SUITE], ids=["planned", "direct"])
def test_a_hung_target_ends_the_run_after_one_timeout_and_one_probe(suite, source):
    hung = HungTarget()
    try:
        result = suite("--target-url", hung.url, "--gw-request-timeout", "2", source=source)
    finally:
        hung.close()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*target down*"])
    assert timeouts_recorded(suite.pytester) == 1
    assert hung.accepted == 2  # the request that timed out and the probe; nothing after
    run = results(suite.pytester)["run"]
    assert run["target_down"] and "no answer within 2 s" in run["target_down"]


def test_a_target_that_hangs_mid_run_ends_it_too(suite):
    hung = HungTarget(answer_first=3)
    try:
        result = suite("--target-url", hung.url, "--gw-request-timeout", "2", source=DIRECT_SUITE)
    finally:
        hung.close()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    outcomes = case_outcomes(results(suite.pytester))
    assert list(outcomes.values()).count("PASS") == 3
    assert timeouts_recorded(suite.pytester) == 1 and hung.accepted == 5
    assert len(outcomes) == 4  # the three answered cases and the one that met the hang: the run stopped there


def test_a_target_that_hangs_after_a_passing_preflight_costs_one_timeout_too(suite):
    """After the preflight saw the target answer, the plan goes out at once (no lone first exchange): a target that
    hangs then holds every exchange in flight, and the run still ends after one timeout and one probe."""
    hung = HungTarget(answer_first=2)  # the preflight's two probes
    try:
        result = suite("--preflight", "--target-url", hung.url, "--gw-request-timeout", "2",
                       source=planned_suite(12))
    finally:
        hung.close()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*target down*"])
    assert hung.accepted == 2 + 12 + 1  # the probes, the plan in flight at once (one timeout), the health probe


def test_timeouts_of_a_target_that_still_answers_do_not_stop_the_run(suite, target_factory):
    target = target_factory(delay=2.5)  # every request but the probe of "/" outlives the timeout
    source = '''
import pytest

@pytest.mark.parametrize("n", range(3))
@pytest.mark.requirement("T-001")
def test_direct(client, n):
    client.get(f"/item/{n}")
'''
    result = suite("--target-url", target.url, "--gw-request-timeout", "1", source=source)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # three ERRORs, each its own timeout: not "target down"
    assert list(case_outcomes(results(suite.pytester)).values()) == ["ERROR"] * 3
    assert results(suite.pytester)["run"]["target_down"] is None


# -- replay ------------------------------------------------------------------------------------------------------
REPLAY_SUITE = '''
import pytest
from conformance.exchanges import Spec, exchange

@exchange
def listing(plan):
    return Spec.get("/models")

@pytest.mark.requirement("T-001")
def test_planned(listing, expect):
    expect("T-001", listing.status == 200, expected=200, received=listing.status)

@pytest.mark.requirement("T-002")
def test_direct(client, expect):
    response = client.post_json("/echo", {"n": 1})
    expect("T-002", "sk-" not in response.text, expected="no key echoed", received=response.text[:80])
'''


def test_replay_judges_the_recording_without_sending(suite, target_factory):
    target = target_factory()
    suite("--target-url", target.url, "--gw-api-key", "sk-plugin-secret-0123456789", source=REPLAY_SUITE)
    live = {c["id"]: c["verdicts"] for c in results(suite.pytester)["cases"]}
    recording = (suite.pytester.path / "out" / "exchanges").glob("*.jsonl")
    assert not any("sk-plugin-secret" in path.read_text() for path in recording)  # keys are placeholders
    sent = target.requests
    suite.pytester.path.joinpath("out").rename(suite.pytester.path / "recorded")
    result = suite("--gw-replay", "recorded", "--gw-api-key", "sk-plugin-secret-0123456789", source=REPLAY_SUITE)
    assert target.requests == sent  # nothing was sent
    assert {c["id"]: c["verdicts"] for c in results(suite.pytester)["cases"]} == live
    assert result.ret == pytest.ExitCode.OK


def test_replay_refuses_a_recording_of_another_suite_version(suite, target_factory):
    target = target_factory()
    suite("--target-url", target.url, source=REPLAY_SUITE)
    recording = next((suite.pytester.path / "out" / "exchanges").glob("*.jsonl"))
    lines = recording.read_text().splitlines()
    header = json.loads(lines[0])
    header["suite_digest"] = "0" * 16
    recording.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    result = suite("--gw-replay", "out", source=REPLAY_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gw-replay*recorded by suite*Replay it with the suite that recorded it*"])


def test_replay_of_a_directory_without_a_recording_is_a_usage_error(suite):
    result = suite("--gw-replay", "nowhere", source=REPLAY_SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gw-replay*holds no recording*"])


def test_replay_of_the_bundled_suite_gives_the_same_verdicts(tmp_path):
    """A recorded run of the bundled suite (streams with their arrival times, SDK calls, key checks, the 429
    burst) replayed offline: every case gets the verdicts it got live."""
    import subprocess
    import sys

    selection = []
    for glob in ("CHAT-STREAM-*", "HEADERS-*", "SDK-*", "AUTH-*", "RATE-LIMITS-*", "USAGE-*"):
        selection += ["--gw-requirement", glob]
    base = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--gw-profile", "openai", "-q",
            "-p", "no:cacheprovider", *selection]
    live = subprocess.run([*base, "--gw-report-dir", str(tmp_path / "live")], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert live.returncode == 0, live.stdout[-2000:]
    replay = subprocess.run([*base, "--gw-report-dir", str(tmp_path / "replay"), "--gw-replay", str(tmp_path / "live")],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert replay.returncode == 0, replay.stdout[-2000:]

    def verdicts(name):
        data = json.loads((tmp_path / name / "results.json").read_text())
        return {c["id"]: c["verdicts"] for c in data["cases"]}, data["run"]["requests"]

    (live_verdicts, live_requests), (replayed, replay_requests) = verdicts("live"), verdicts("replay")
    assert replayed == live_verdicts and len(live_verdicts) > 40
    assert live_requests > 30 and replay_requests == 0  # nothing was sent


# -- scheduling: one request per content, the longest chain first, judging while the plan is sent -----------
def test_a_request_two_exchanges_plan_alike_goes_once(suite, target_factory):
    target = target_factory()
    source = PLANNED_SUITE.format(declarations=gets(first="/same", second="/same", other="/other"),
                                  names="first, second, other")
    suite("--target-url", target.url, source=source).assert_outcomes(passed=1)
    assert target.requests == 2  # /same once, /other once
    recorded = [json.loads(line)["scope"] for path in (suite.pytester.path / "out" / "exchanges").glob("*.jsonl")
                for line in path.read_text().splitlines()[1:]]
    assert sorted(recorded) == ["spec:test_fake.first", "spec:test_fake.other"]


def test_the_longest_chain_starts_first(suite, target_factory):
    target = target_factory()
    declarations = gets(a="/a", b="/b", c="/c") + """
@exchange(needs=(c,))
def d(plan, c):
    return Spec.get("/d")
"""
    source = PLANNED_SUITE.format(declarations=declarations, names="a, b, d")
    suite("--target-url", target.url, "--gw-concurrency", "1", source=source).assert_outcomes(passed=1)
    assert target.events[0] == "arrived /c"  # declared last of the three, but /d waits for it
    assert sorted(target.events) == ["arrived /a", "arrived /b", "arrived /c", "arrived /d"]


class GateTarget(Target):
    """``/slow`` answers only once ``/release`` was called (or after ``limit`` seconds with a 504); notes the
    order of what happened."""

    def __init__(self, limit: float = 5.0) -> None:
        self.gate = threading.Event()
        super().__init__()
        inner = self.server.app

        def app(environ, start_response):
            path = environ["PATH_INFO"].removeprefix("/v1")
            if path == "/release":
                self.gate.set()
            if path != "/slow":
                return inner(environ, start_response)  # which notes its arrival
            self.events.append("arrived /slow")
            opened = self.gate.wait(limit)
            self.events.append("answered /slow")
            status = "200 OK" if opened else "504 Gateway Timeout"
            start_response(status, [("Content-Type", "application/json")])
            return [b'{"path": "/slow"}' if opened else b'{"error": {"message": "never released"}}']

        self.server.app = app


GATE_HEAD = """
import pytest
from conformance.exchanges import Spec, exchange
""" + gets(fast="/fast", slow="/slow")


def test_a_case_is_judged_once_its_own_exchanges_are_in(suite):
    """A case does not wait for the whole plan: here it must run while another planned exchange is in flight,
    since it is what lets that one finish (it calls /release on the side)."""
    target = GateTarget()
    try:
        source = GATE_HEAD + f'''
import urllib.request

@pytest.mark.requirement("T-001")
def test_fast(fast, expect):
    urllib.request.urlopen("{target.url}/release").read()
    expect("T-001", fast.status == 200, expected=200, received=fast.status)

@pytest.mark.requirement("T-002")
def test_slow(slow, expect):
    expect("T-002", slow.status == 200, expected=200, received=slow.status)
'''
        suite("--target-url", target.url, source=source).assert_outcomes(passed=2)
    finally:
        target.close()
    assert target.events.index("arrived /release") < target.events.index("answered /slow")


def test_a_case_s_own_requests_go_after_the_plan(suite):
    """What a case sends itself (a direct client) goes after every planned exchange, as when the plan was sent
    before the first case ran: it neither races the plan for a limit nor sees its traffic."""
    target = GateTarget(limit=0.5)  # /slow answers (504) after 0.5 s: nothing releases it
    try:
        source = GATE_HEAD + '''
def test_fast(fast):
    pass

def test_direct(client):
    client.get("/direct")

def test_slow(slow):
    pass
'''
        suite("--target-url", target.url, source=source)
    finally:
        target.close()
    assert target.events.index("answered /slow") < target.events.index("arrived /direct")


def test_dispatcher_runs_the_highest_priority_first_and_halves_its_limit_on_congestion():
    from conformance.dispatch import Dispatcher

    dispatcher = Dispatcher(1)
    started, gate, ran = threading.Event(), threading.Event(), []

    def blocker():
        started.set()
        gate.wait(5)

    dispatcher.submit(0, blocker)
    started.wait(5)
    done = threading.Event()
    for priority, name in [(0, "low"), (3, "high"), (1, "mid"), (3, "high-later")]:
        dispatcher.submit(priority, lambda name=name: ran.append(name) or (len(ran) == 4 and done.set()))
    gate.set()
    assert done.wait(5)
    dispatcher.close()
    assert ran == ["high", "high-later", "mid", "low"]

    dispatcher = Dispatcher(16)
    dispatcher.congested()
    dispatcher.congested()  # the same burst's 429s: one signal
    assert dispatcher.limit == 8
    for _ in range(8):
        dispatcher.answered()
    assert 8.5 < dispatcher.limit < 9.5  # about one more per round of answers
    dispatcher.congested()  # a round later: halved again
    assert 4 < dispatcher.limit < 5
    for _ in range(400):
        dispatcher.answered()
    assert dispatcher.limit == 16  # never past the cap
    dispatcher.close()


def test_chain_lengths_count_the_sends_waiting_behind_an_entry():
    from conformance.dispatch import chain_lengths
    from conformance.exchanges import Entry

    a = Entry("a", lambda plan: None, (), False, None)
    b = Entry("b", lambda plan: None, (a,), False, None)
    burst = Entry("burst", lambda plan: None, (b,), True, None)
    lone = Entry("lone", lambda plan: None, (), False, None)
    assert chain_lengths([a, b, burst, lone]) == {"a": 4, "b": 3, "burst": 2, "lone": 1}


def test_replay_serves_a_request_planned_twice_from_whichever_entry_sent_it(tmp_path):
    from conformance.wire import RECORDING_DIR, ReplayDiverged, ReplayLog

    recording = tmp_path / RECORDING_DIR
    recording.mkdir()
    header = {"format": 1, "suite_version": "v", "suite_digest": "d", "profile": "p"}
    record = {"scope": "spec:test_a.first", "seq": 0, "fingerprint": "GET /v1/same 0123"}
    recording.joinpath("main.jsonl").write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n")
    replay = ReplayLog(tmp_path)
    assert replay.take("spec:test_b.second", "GET /v1/same 0123") == record  # the other entry's recording
    with pytest.raises(ReplayDiverged):
        replay.take("spec:test_b.third", "GET /v1/other 4567")  # nothing recorded with that content
    with pytest.raises(ReplayDiverged):
        replay.take("case:test_b.py::test_x", "GET /v1/same 0123")  # a case's own requests are its own


def test_the_sdk_reads_the_answers_the_model_checks_got(tmp_path):
    """client.models.list() and .retrieve() judge the target's recorded answers to the model checks' GETs: the
    three checks cost two requests, and every verdict is a PASS against the reference server."""
    import subprocess
    import sys

    selection = ["--gw-requirement", "SDK-012", "--gw-requirement", "SDK-013", "--gw-requirement", "MODELS-001"]
    run = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--gw-profile", "openai",
                          "-q", "-p", "no:cacheprovider", "--gw-report-dir", str(tmp_path / "out"), *selection],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["run"]["requests"] == 2
    verdicts = {rid: r["verdict"] for rid, r in data["requirements"].items()
                if rid in ("SDK-012", "SDK-013", "MODELS-001")}
    assert verdicts == {"SDK-012": "PASS", "SDK-013": "PASS", "MODELS-001": "PASS"}
