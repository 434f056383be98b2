"""What every HTTP client of a run shares: the target's health, the recording of each exchange, and replay.

``Wire`` sits under ``GatewayClient`` (and the SDK's httpx client, through ``WireTransport``):

- health: the first timeout or refused connection makes it probe the target once; when the probe gets no HTTP
  answer either, the target is down and every later request fails at once with ``TargetDown`` instead of waiting
  out one timeout per case (``TargetHealth``).
- recording: each exchange is kept, keys masked, in ``exchanges/<process>.jsonl`` of the report dir, under its
  scope (``spec:<name>`` for the exchange store's planned exchanges, ``case:<case id>`` for what a case sent
  itself) and its order within that scope.
- replay (``--gw-replay DIR``): requests are answered from such a recording, scope by scope in the order they were
  sent; a request that differs from the recorded one is a harness error ("replay diverged"), never a verdict.

Secrets are written as ``[secret:<digest>]`` placeholders: a replay run restores the ones it knows (the run's key,
the profile's test keys), so a check that looks for an echoed key judges the same bytes as the live run did.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from conformance import client as client_module
from conformance.client import (
    REQUEST_EXCERPT,
    Exchange,
    HarnessError,
    RequestTimedOut,
    TargetUnreachable,
    fingerprint,
)

RECORDING_DIR = "exchanges"
FORMAT = 1


class TargetDown(HarnessError):
    """The target stopped answering (a timeout or refused connection, then a probe without an HTTP answer)."""


class ReplayDiverged(HarnessError):
    """Replay: the suite asked for an exchange the recording does not hold (another suite, or a changed run)."""


class RecordingMismatch(Exception):
    """A recording that cannot be replayed by this suite (another version, or no recording at all)."""


# -- target health ----------------------------------------------------------------------------------------
class TargetHealth:
    """Decides, once, whether a timeout or refused connection means the target is gone.

    ``failed`` is told of every transport failure; the first one (or a later one after an answer) triggers one
    probe: a plain GET of the target's root within ``probe_timeout``. Any HTTP answer, even an error, means the
    target is up (the failing request was the problem); no answer marks it down for the rest of the run.
    """

    def __init__(self, base_url: str | None, probe_timeout: float) -> None:
        self.base_url, self.probe_timeout = base_url, probe_timeout
        self.down: str | None = None
        self._lock = threading.Lock()
        self._probed_since_answer = False

    def check(self) -> None:
        """Raise ``TargetDown`` when the target was found down (no request is sent then)."""
        if self.down:
            raise TargetDown(self.down)

    def answered(self) -> None:
        self._probed_since_answer = False

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, TargetDown) or not isinstance(exc, (RequestTimedOut, TargetUnreachable)):
            return
        with self._lock:
            if self.down or self._probed_since_answer or self.base_url is None:
                return
            self._probed_since_answer = True
            reason = self._probe()
            if reason:
                self.down = f"target down: {exc}; a probe of {self.base_url} then got no answer ({reason})"

    def _probe(self) -> str | None:
        """None when the target gives any HTTP answer (a status line and headers) within the probe timeout, else
        why not. The timeout is a total deadline: httpx's read timeout restarts with every byte, so a target that
        trickles its answer would otherwise hold the probe (and the whole run) for ever."""
        outcome: list[str | None] = []

        def probe() -> None:
            timeout = httpx.Timeout(self.probe_timeout, connect=min(10.0, self.probe_timeout))
            try:
                with httpx.Client(timeout=timeout, verify=client_module.shared_ssl_context()) as http, \
                        http.stream("GET", self.base_url + "/"):
                    outcome.append(None)  # headers arrived: the body does not matter
            except httpx.TimeoutException:
                outcome.append(f"no answer within {self.probe_timeout:g} s")
            except httpx.HTTPError as exc:
                outcome.append(type(exc).__name__)

        worker = threading.Thread(target=probe, name="conformance-target-probe", daemon=True)
        worker.start()
        worker.join(self.probe_timeout + min(10.0, self.probe_timeout))
        if not outcome:  # still dribbling: abandoned (a daemon thread), and the target counts as not answering
            return f"no answer within {self.probe_timeout:g} s"
        return outcome[0]


# -- (de)serialising exchanges ----------------------------------------------------------------------------
def _placeholder(secret: str) -> str:
    return f"[secret:{hashlib.sha256(secret.encode()).hexdigest()[:12]}]"


class Secrets:
    """Masks secrets as placeholders for the recording and restores the known ones on replay."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def mask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(secret.encode(), _placeholder(secret).encode())
        return data

    def unmask(self, data: bytes) -> bytes:
        for secret in self.secrets:
            data = data.replace(_placeholder(secret).encode(), secret.encode())
        return data

    def mask_text(self, text: str) -> str:
        return self.mask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def unmask_text(self, text: str) -> str:
        return self.unmask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


def to_record(scope: str, seq: int, print_: str, ex: Exchange, secrets: Secrets) -> dict[str, Any]:
    raw = bytes(ex.raw_body)
    return {"scope": scope, "seq": seq, "fingerprint": print_, "method": ex.method, "url": ex.url,
            "request_headers": [[k, secrets.mask_text(v)] for k, v in ex.request_headers],
            "request_body": secrets.mask_text(ex.request_body[:REQUEST_EXCERPT]), "status": ex.status,
            "response_headers": [[k, secrets.mask_text(v)] for k, v in ex.response_headers],
            "body": base64.b64encode(secrets.mask(raw)).decode("ascii"), "marks": ex.marks,
            "headers_ms": ex.headers_ms, "first_byte_ms": ex.first_byte_ms, "elapsed_ms": ex.elapsed_ms,
            "streamed": ex.streamed, "error": ex.error, "error_kind": ex.error_kind,
            "masked_prints": ex.masked_prints}


def from_record(record: dict[str, Any], secrets: Secrets, redactor: Any) -> Exchange:
    ex = Exchange(record["method"], record["url"], [(k, secrets.unmask_text(v)) for k, v in record["request_headers"]],
                  secrets.unmask_text(record["request_body"]), record["status"],
                  [(k, secrets.unmask_text(v)) for k, v in record["response_headers"]],
                  secrets.unmask(base64.b64decode(record["body"])), redactor, record["headers_ms"],
                  record["first_byte_ms"], record["elapsed_ms"], record["streamed"], record["error"])
    ex.error_kind, ex.marks = record.get("error_kind"), [tuple(m) for m in record.get("marks") or []]
    ex.masked_prints = list(record.get("masked_prints") or [])
    return ex


# -- the wire ---------------------------------------------------------------------------------------------
class Wire:
    """Health, recording and replay shared by every client of one run (one per process)."""

    def __init__(self, health: TargetHealth, secrets: Secrets, *, record_to: Path | None = None,
                 replay: ReplayLog | None = None, header: dict[str, Any] | None = None) -> None:
        self.health, self.secrets, self.replay = health, secrets, replay
        self._local = threading.local()
        self.case_scope = "run"  # the running case's scope (``case:<id>``), set by the plugin
        self._seq: dict[str, itertools.count] = defaultdict(itertools.count)
        self._lock = threading.Lock()
        self._file = None
        if record_to is not None and replay is None:
            record_to.parent.mkdir(parents=True, exist_ok=True)
            self._file = record_to.open("w", encoding="utf-8")
            self._write({"format": FORMAT, **(header or {})})

    @property
    def replaying(self) -> bool:
        return self.replay is not None

    # scope: which planned exchange or which case the requests of this thread belong to
    @property
    def scope(self) -> str:
        return getattr(self._local, "scope", None) or self.case_scope

    @scope.setter
    def scope(self, value: str | None) -> None:
        self._local.scope = value

    def next_seq(self, scope: str) -> int:
        with self._lock:
            return next(self._seq[scope])

    def record(self, scope: str, seq: int, print_: str, exchange: Exchange) -> None:
        if self._file is not None:
            self._write(to_record(scope, seq, print_, exchange, self.secrets))

    def _write(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def replayed(self, scope: str, print_: str, redactor: Any) -> Exchange:
        """Replay: the recorded exchange answering this request (``ReplayDiverged`` when there is none)."""
        return from_record(self.replay.take(scope, print_), self.secrets, redactor)


class ReplayLog:
    """The exchanges of a recording, by scope, each scope in the order it was sent."""

    def __init__(self, directory: Path) -> None:
        files = sorted((directory / RECORDING_DIR).glob("*.jsonl")) if directory.is_dir() else []
        if not files:
            raise RecordingMismatch(f"{directory} holds no recording ({RECORDING_DIR}/*.jsonl): record one by "
                                    "running the suite with --gw-report-dir")
        self.header: dict[str, Any] = {}
        self._by_scope: dict[str, deque] = {}
        self._process: dict[str, str] = {}  # scope -> the process (file stem) whose records serve it
        # A planned exchange's first recording by fingerprint: the store sends a request planned twice once, and
        # which of the two planned entries sent it can differ between the recording's processes and the replay's.
        self._by_print: dict[str, dict[str, Any]] = {}
        for path in files:
            lines = path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("format") != FORMAT:
                raise RecordingMismatch(f"{path}: not a recording of this suite's format")
            self.header = self.header or header
            for key in ("suite_version", "suite_digest", "profile"):
                if header.get(key) != self.header.get(key):
                    raise RecordingMismatch(f"{path}: recorded by another run than its siblings ({key})")
            mine: dict[str, deque] = {}
            for line in lines[1:]:
                record = json.loads(line)
                mine.setdefault(record["scope"], deque()).append(record)
            for scope, records in mine.items():  # a planned exchange every process sent: the first copy serves
                if scope not in self._by_scope:
                    self._by_scope[scope] = records
                    self._process[scope] = path.stem
                if scope.startswith("spec:"):
                    for record in records:
                        self._by_print.setdefault(record["fingerprint"], record)
        self._lock = threading.Lock()

    def process_of(self, scope: str) -> str:
        """The process (``main``, ``gw0``, ...) whose recording serves ``scope``."""
        return self._process.get(scope, "main")

    def take(self, scope: str, print_: str) -> dict[str, Any]:
        """The next recorded exchange of ``scope``; ``ReplayDiverged`` when there is none or it differs."""
        with self._lock:
            queue = self._by_scope.get(scope)
            if queue is None and scope.startswith("spec:") and print_ in self._by_print:
                return self._by_print[print_]  # planned twice, sent once under the other entry's scope
            if not queue:
                raise ReplayDiverged(f"replay: the recording holds no further exchange for {scope} ({print_})")
            record = queue.popleft()
        if record["fingerprint"] != print_:
            raise ReplayDiverged(f"replay diverged in {scope}: recorded {record['fingerprint']}, asked {print_}")
        return record


def process_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# -- httpx transport for clients the suite does not build (the openai SDK) ------------------------------------
def recorded_response(ex: Exchange, request: httpx.Request) -> httpx.Response:
    """A recorded answer as the httpx response a client reads: its status, headers and body (kept decoded, so
    without its Content-Encoding)."""
    headers = [(k, v) for k, v in ex.response_headers if k.lower() != "content-encoding"]
    return httpx.Response(ex.status, headers=headers, content=bytes(ex.raw_body), request=request)


class WireTransport(httpx.BaseTransport):
    """An httpx transport that records (or replays) through ``wire``, under the scope of the calling thread."""

    def __init__(self, wire: Wire, redactor: Any, accounting: Any = None,
                 inner: httpx.BaseTransport | None = None) -> None:
        self.wire, self.redactor, self.accounting = wire, redactor, accounting
        self.inner = inner or httpx.HTTPTransport(verify=client_module.shared_ssl_context())
        self.transcript: list[Exchange] = []

    def take_transcript(self) -> list[Exchange]:
        """Return and forget the exchanges recorded so far (one case's worth)."""
        out, self.transcript = self.transcript, []
        return out

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.wire.health.check()
        content = request.read()
        print_ = fingerprint(request.method, str(request.url), content)
        scope = self.wire.scope
        seq = self.wire.next_seq(scope)
        if self.wire.replay is not None:
            ex = from_record(self.wire.replay.take(scope, print_), self.wire.secrets, self.redactor)
            self.transcript.append(ex)
            if ex.status is None:
                raise httpx.ConnectError(ex.error or "recorded failure", request=request)
            return recorded_response(ex, request)
        ex = Exchange(request.method, str(request.url), self.redactor.headers(request.headers.multi_items()),
                      self.redactor.text(content.decode("utf-8", "replace")), redactor=self.redactor)
        self.transcript.append(ex)
        if self.accounting is not None:
            self.accounting.charge()
        try:
            response = self.inner.handle_request(request)
            body = response.read()
        except httpx.HTTPError as exc:
            ex.error, ex.error_kind = self.redactor.text(str(exc)), "TargetUnreachable"
            self.wire.record(scope, seq, print_, ex)
            self.wire.health.failed(TargetUnreachable(str(exc)))
            raise
        self.wire.health.answered()
        ex.status, ex.raw_body = response.status_code, body
        ex.response_headers = self.redactor.headers(response.headers.multi_items())
        self.wire.record(scope, seq, print_, ex)
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request,
                              extensions=response.extensions)

    def close(self) -> None:
        self.inner.close()
