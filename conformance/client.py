"""``GatewayClient``: the one HTTP client of the suite.

httpx with explicit connect/read/write/pool timeouts, a total deadline per request, a response size cap,
profile-aware path joining, a redacted transcript of every exchange, and request/token accounting with an
optional request budget. Transport failures raise ``HarnessError`` subclasses, which the plugin grades ERROR
(the harness or the network broke, not the gateway).

Longer than 400 lines on purpose: one class and the records it produces. The live path and the replay path
(``--gw-replay``, through ``conformance.wire``) share ``_open``, so a replayed exchange is read, capped and
transcribed by the very code that read it live.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.headers_deadline import HeadersDeadline, SocketWatch
from conformance.redact import Redactor, masked_fingerprints

REQUEST_EXCERPT = 4096
RESPONSE_EXCERPT = 16384
_USAGE_LINE = re.compile(rb'^data:([^\r\n]*"usage"[^\r\n]*)', re.MULTILINE)


class HarnessError(Exception):
    """The harness or the network failed; the gateway's conformance is unknown (graded ERROR, never FAIL)."""


class TargetUnreachable(HarnessError):
    """Connection refused, DNS failure, TLS failure: no HTTP exchange happened."""


class HarnessRequestInvalid(HarnessError):
    """The harness built a request httpx refuses to send (e.g. an illegal header value): a suite bug."""


class RequestTimedOut(HarnessError):
    """A connect/read/write timeout or the total deadline of the request passed."""


class ResponseTooLarge(HarnessError):
    """The response body went past ``--gw-max-body-bytes``."""


class BudgetExhausted(HarnessError):
    """``--gw-request-budget`` requests were already issued in this process."""


_KINDS = {kind.__name__: kind for kind in (HarnessError, TargetUnreachable, HarnessRequestInvalid, RequestTimedOut,
                                           ResponseTooLarge, BudgetExhausted)}


# Flagged usage objects kept per process, as examples for the report (the count is exact).
MAX_USAGE_FLAGS = 10


def completion_bound(request_body: Any) -> int | None:
    """The most completion tokens a request allows: its ``max_completion_tokens`` or ``max_tokens`` (Ollama's
    ``options.num_predict``) times ``n`` choices; None when the request sets no limit."""
    if not isinstance(request_body, dict):
        return None
    options = request_body.get("options") if isinstance(request_body.get("options"), dict) else {}
    limit = next((v for v in (request_body.get("max_completion_tokens"), request_body.get("max_tokens"),
                              options.get("num_predict"))
                  if isinstance(v, int) and not isinstance(v, bool) and v > 0), None)
    n = request_body.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    return limit * n if limit is not None else None


def _request_json(text: str) -> Any:
    if '"max_' not in text and '"num_predict"' not in text:
        return None  # no limit to read: skip the parse
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class Accounting:
    """Requests issued and tokens reported by the gateway (``usage``), plus the optional request budget.

    Counts are added only from plausible usage: non-negative integers, and completion tokens within the request's
    own limit (``completion_bound``). Anything else is flagged (``usage_flagged``, with up to ``MAX_USAGE_FLAGS``
    examples) and left out of the sums, so a gateway reporting random usage cannot turn a run into billions of
    "spent" tokens; ``usage_counted`` says how many usage objects the sums come from."""

    budget: int | None = None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_counted: int = 0
    usage_flagged: int = 0
    usage_flags: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def charge(self) -> None:
        """Count one request, or raise ``BudgetExhausted`` when the budget is spent (thread-safe: the exchange
        store sends concurrently)."""
        with self._lock:
            if self.budget is not None and self.requests >= self.budget:
                raise BudgetExhausted(f"budget exhausted: --gw-request-budget {self.budget} requests already issued")
            self.requests += 1

    def add_usage(self, usage: Any, bound: int | None = None, where: str = "") -> None:
        """Add a ``usage`` object's token counts, or flag it (negative, not an integer, completion tokens beyond
        ``bound``, the request's own limit) and add nothing. Not a ``dict``: nothing to count (checks judge it)."""
        if not isinstance(usage, dict):
            return
        counts = {key: usage.get(key) for key in ("prompt_tokens", "completion_tokens") if key in usage}
        problems = [f"{key}={value!r} is not a non-negative integer" for key, value in counts.items()
                    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0)]
        completion = counts.get("completion_tokens")
        if bound is not None and not problems and isinstance(completion, int) and completion > bound:
            problems.append(f"completion_tokens={completion} is beyond the request's max_tokens ({bound})")
        with self._lock:
            if problems:
                self.usage_flagged += 1
                if len(self.usage_flags) < MAX_USAGE_FLAGS:
                    self.usage_flags.append(f"{where}: {'; '.join(problems)}" if where else "; ".join(problems))
                return
            self.usage_counted += 1
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def add_usage_of(self, usage: Any, exchange: Any) -> None:
        """``add_usage`` for the answer to ``exchange``: its request's limit, its method and URL as the place."""
        self.add_usage(usage, completion_bound(_request_json(exchange.request_body)),
                       f"{exchange.method} {exchange.url}")

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "usage_counted": self.usage_counted,
                "usage_flagged": self.usage_flagged, "usage_flags": list(self.usage_flags[:MAX_USAGE_FLAGS])}

    def merge(self, counts: dict[str, Any]) -> None:
        """Add another process's ``as_dict`` (xdist workers report theirs to the controller)."""
        for key, value in counts.items():
            if key == "usage_flags":
                self.usage_flags = (self.usage_flags + list(value))[:MAX_USAGE_FLAGS]
            elif isinstance(value, int) and hasattr(self, key):
                setattr(self, key, getattr(self, key) + value)


@dataclass
class Exchange:
    """One request/response pair as recorded for the transcript.

    Request fields are stored redacted. The response body is kept raw (one copy, shared with the ``Response``)
    and redacted when it is read through ``response_body`` or rendered: redacting a body the size of
    ``--gw-max-body-bytes`` up front cost several times the cap in memory.
    """

    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: str
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    raw_body: bytes | bytearray = field(default=b"", repr=False)
    redactor: Redactor | None = field(default=None, repr=False, compare=False)
    headers_ms: float | None = None
    first_byte_ms: float | None = None
    elapsed_ms: float | None = None
    streamed: bool = False
    error: str | None = None
    # (seconds since the request was sent, body length so far) after each chunk: replay re-creates the chunks and
    # their arrival times from these.
    marks: list = field(default_factory=list, repr=False)
    error_kind: str | None = None  # the HarnessError subclass a failure raised (replay raises it again)
    masked_prints: list = field(default_factory=list, repr=False)  # redact.masked_fingerprints of the response headers

    @property
    def response_body(self) -> bytes:
        """The whole response body, redacted (computed on each access: callers want it once)."""
        return self._redact(bytes(self.raw_body))

    @response_body.setter
    def response_body(self, value: bytes) -> None:
        self.raw_body = value

    def body_excerpt(self, limit: int = RESPONSE_EXCERPT) -> bytes:
        """The first ``limit`` bytes of the body, redacted. Redaction sees a margin past the cut, so a secret
        straddling it is masked rather than half shown."""
        margin = max([256, *(len(s) for s in (self.redactor.secrets if self.redactor else ()))])
        return self._redact(bytes(self.raw_body[:limit + margin]))[:limit]

    def _redact(self, raw: bytes) -> bytes:
        return self.redactor.bytes(raw) if self.redactor is not None else raw

    def render(self) -> str:
        """Human transcript: request line, headers, body excerpt; response status, headers, body, timings."""
        lines = [f"> {self.method} {self.url}"]
        lines += [f"> {k}: {v}" for k, v in self.request_headers]
        if self.request_body:
            lines += [">", self.request_body[:REQUEST_EXCERPT]]
        timing = ", ".join(f"{name} {value:.1f} ms" for name, value in (
            ("headers", self.headers_ms), ("first byte", self.first_byte_ms), ("total", self.elapsed_ms))
            if value is not None)
        lines.append(f"< HTTP {self.status if self.status is not None else '---'}  ({timing})")
        lines += [f"< {k}: {v}" for k, v in self.response_headers]
        body = self.body_excerpt().decode("utf-8", errors="replace")
        if body:
            lines += ["<", body + (" [...truncated]" if len(self.raw_body) > RESPONSE_EXCERPT else "")]
        if self.error:
            lines.append(f"! {self.error}")
        return "\n".join(lines)


@dataclass
class Response:
    """A buffered response: status, headers, body bytes and the exchange it was recorded in."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    exchange: Exchange

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class StreamResponse:
    """An open streamed response: ``chunks()`` yields raw body bytes within the deadline and the size cap.

    A body cut off by the peer ends the iteration with ``truncated`` set (that is the gateway's behaviour to
    judge), while timeouts and the size cap raise ``HarnessError``.
    """

    def __init__(self, client: GatewayClient, response: httpx.Response | None, exchange: Exchange, started: float,
                 deadline: float, replayed: Iterator[bytes] | None = None) -> None:
        self._client, self._response, self.exchange = client, response, exchange
        self._replayed = replayed
        self._started, self._deadline = started, deadline
        self.status_code = exchange.status
        self.headers = response.headers if response is not None else httpx.Headers(exchange.response_headers)
        self.truncated = False

    def chunks(self) -> Iterator[bytes]:
        """Raw (content-decoded) body chunks, in arrival order."""
        yield from self._receive()

    def read(self) -> bytes:
        """The whole remaining body (kept once: the exchange records the same bytes object)."""
        for _ in self._receive():
            pass
        self.exchange.raw_body = bytes(self.exchange.raw_body)
        return self.exchange.raw_body

    def _receive(self) -> Iterator[bytes]:
        """Append each chunk to the exchange's one body buffer, enforcing the cap and the total deadline."""
        if self._replayed is not None:
            yield from self._replay()
            return
        buf = self.exchange.raw_body = bytearray()
        marks = self.exchange.marks
        try:
            for chunk in self._response.iter_bytes():
                now = time.monotonic() - self._started
                if self.exchange.first_byte_ms is None:
                    self.exchange.first_byte_ms = now * 1000
                buf += chunk
                marks.append((round(now, 6), len(buf)))
                self._client._check_limits(len(buf), self._deadline, self.exchange)
                yield chunk
        except httpx.TimeoutException as exc:
            raise self._client._fail(self.exchange, RequestTimedOut, f"stream timed out: {exc}") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            self.truncated = True
            self.exchange.error = self._client.redactor.text(f"body ended abnormally: {exc}")
            self.exchange.error_kind = "truncated"
        finally:
            self.exchange.elapsed_ms = (time.monotonic() - self._started) * 1000
            if "event-stream" in self.headers.get("content-type", ""):
                self._client._account_stream(buf, self.exchange)


    def _replay(self) -> Iterator[bytes]:
        """A recorded body, chunk by chunk, ending as the recorded one did (a harness error is raised again)."""
        yield from self._replayed
        kind = self.exchange.error_kind
        if kind is not None and kind != "truncated":
            raise error_class(kind)(self.exchange.error or kind)
        self.truncated = kind == "truncated"


def fingerprint(method: str, url: str, content: bytes | None) -> str:
    """What a replayed request must match: method, path and query, body (the origin may differ between runs)."""
    parsed = httpx.URL(url)
    digest = hashlib.sha256(content or b"").hexdigest()[:16]
    return f"{method} {parsed.raw_path.decode('ascii', 'replace')} {digest}"


def replay_chunks(exchange: Exchange) -> Iterator[bytes]:
    """The recorded body in the chunks it arrived in."""
    body, start = bytes(exchange.raw_body), 0
    for _, end in exchange.marks:
        yield body[start:end]
        start = end
    if start < len(body):
        yield body[start:]


def error_class(name: str | None) -> type[HarnessError]:
    """The harness error kind an exchange recorded (replay raises the same one)."""
    return _KINDS.get(name or "", HarnessError)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: httpx builds one per client otherwise, loading the CA bundle each
    time (4.3 s of a profiled suite run, one client per test)."""
    return httpx.create_ssl_context()


class GatewayClient:
    """HTTP client bound to one gateway: base URL, profile base path, auth and extra headers."""

    def __init__(self, base_url: str, *, base_path: str = "/v1", api_key: str | None = None,
                 headers: tuple[tuple[str, str], ...] | list = (), request_timeout: float = 30.0,
                 stream_timeout: float = 60.0, max_body_bytes: int = 8 * 1024 * 1024,
                 accounting: Accounting | None = None, redactor: Redactor | None = None,
                 transport: httpx.BaseTransport | None = None, wire: Any = None,
                 keep_transcript: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.api_key = api_key
        self.request_timeout, self.stream_timeout = request_timeout, stream_timeout
        self.max_body_bytes = max_body_bytes
        self.accounting = accounting if accounting is not None else Accounting()
        self.redactor = redactor or Redactor([api_key])
        self.transcript: list[Exchange] = []
        self.default_headers = dict(headers)
        if api_key:
            self.default_headers.setdefault("Authorization", f"Bearer {api_key}")
        timeout = httpx.Timeout(connect=min(10.0, request_timeout), read=request_timeout,
                                write=request_timeout, pool=request_timeout)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                  verify=shared_ssl_context())
        self._sockets = SocketWatch()
        self.wire = wire  # conformance.wire.Wire: target health, recording, replay (None: plain client)
        self.keep_transcript = keep_transcript  # False: callers take each exchange from send_and_read

    # -- URLs ---------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """``{target}{path}`` with no base path (other surfaces: Ollama ``/api/...``, health checks)."""
        return path if path.startswith(("http://", "https://")) else self.base_url + "/" + path.lstrip("/")

    def api(self, path: str) -> str:
        """OpenAI surface URL: ``/chat/completions`` or spec-style ``/v1/chat/completions`` → profile base."""
        if path.startswith(("http://", "https://")):
            return path
        path = "/" + path.lstrip("/")
        if path == "/v1" or path.startswith("/v1/"):
            path = path[3:]
        return f"{self.base_url}{self.base_path}{path}"

    # -- requests -----------------------------------------------------------------------------------------
    def get(self, path: str, *, headers: dict[str, str] | None = None, auth: bool = True) -> Response:
        """GET an OpenAI-surface path (see ``api``)."""
        return self.request("GET", path, headers=headers, auth=auth)

    def post_json(self, path: str, body: Any, *, headers: dict[str, str] | None = None,
                  auth: bool = True) -> Response:
        """POST ``body`` as JSON to an OpenAI-surface path."""
        return self.request("POST", path, json_body=body, headers=headers, auth=auth)

    def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                headers: dict[str, str] | None = None, auth: bool = True) -> Response:
        """Any request, buffered. ``headers`` values of None remove a default header."""
        with self._open(method, path, json_body, content, headers, auth, self.request_timeout) as stream:
            body = stream.read()
            response = Response(stream.status_code, stream.headers, body, stream.exchange)
        self._account_json(stream.headers, body, stream.exchange)
        return response

    def send_and_read(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                      headers: dict[str, str] | None = None, auth: bool = True, stream: bool = False) -> Exchange:
        """Send one request and read its whole body (``stream``: within the stream deadline); the finished
        exchange, whose ``marks`` keep when each chunk arrived (the exchange store judges streams from them)."""
        total = self.stream_timeout if stream else self.request_timeout
        with self._open(method, path, json_body, content, headers, auth, total) as response:
            response.exchange.streamed = stream
            body = response.read()
        if not stream:
            self._account_json(response.headers, body, response.exchange)
        return response.exchange

    def _account_json(self, headers: httpx.Headers, body: bytes, exchange: Exchange) -> None:
        if "json" in headers.get("content-type", "") and b'"usage"' in body:
            try:
                self.accounting.add_usage_of(json.loads(body).get("usage"), exchange)
            except (ValueError, AttributeError):
                pass

    @contextmanager
    def stream(self, path: str, body: Any, *, headers: dict[str, str] | None = None,
               auth: bool = True) -> Iterator[StreamResponse]:
        """POST ``body`` and yield an open ``StreamResponse`` (raw byte chunks for the SSE reader)."""
        with self._open("POST", path, body, None, headers, auth, self.stream_timeout) as stream:
            stream.exchange.streamed = True
            yield stream

    def close(self) -> None:
        self._http.close()

    def take_transcript(self) -> list[Exchange]:
        """Return and forget the exchanges recorded so far (one test's worth)."""
        out, self.transcript = self.transcript, []
        return out

    # -- internals ----------------------------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None, auth: bool) -> dict[str, str]:
        merged = dict(self.default_headers)
        if not auth:
            merged.pop("Authorization", None)
        for name, value in (extra or {}).items():
            for existing in [k for k in merged if k.lower() == name.lower()]:
                del merged[existing]
            if value is not None:
                merged[name] = value
        return merged

    @contextmanager
    def _open(self, method, path, json_body, content, headers, auth, total) -> Iterator[StreamResponse]:
        url = self.api(path)
        hdrs = self._headers(headers, auth)
        if json_body is not None:
            content = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        wire = self.wire
        if wire is None:
            exchange = self._new_exchange(method, url, hdrs, content)
            with self._live(method, url, hdrs, content, exchange, total) as stream:
                yield stream
            return
        wire.health.check()
        print_, scope = fingerprint(method, url, content), wire.scope
        seq = wire.next_seq(scope)
        if wire.replaying:
            yield self._replayed(wire, scope, print_)
            return
        exchange = self._new_exchange(method, url, hdrs, content)
        try:
            with self._live(method, url, hdrs, content, exchange, total) as stream:
                yield stream
        except HarnessError as exc:
            wire.health.failed(exc)
            raise
        else:
            wire.health.answered()
        finally:
            wire.record(scope, seq, print_, exchange)

    def _new_exchange(self, method: str, url: str, hdrs: dict[str, str], content: bytes | None) -> Exchange:
        exchange = Exchange(method, url, self.redactor.headers(hdrs),
                            self.redactor.text((content or b"").decode("utf-8", errors="replace")),
                            redactor=self.redactor)
        if self.keep_transcript:
            self.transcript.append(exchange)
        return exchange

    @contextmanager
    def _live(self, method, url, hdrs, content, exchange: Exchange, total) -> Iterator[StreamResponse]:
        self.accounting.charge()
        started = time.monotonic()
        response = self._send(method, url, hdrs, content, exchange, total)
        exchange.headers_ms = (time.monotonic() - started) * 1000
        exchange.status = response.status_code
        exchange.response_headers = self.redactor.headers(response.headers.multi_items())
        exchange.masked_prints = masked_fingerprints(self.redactor, response.headers.multi_items())
        stream = response.extensions.get("network_stream")
        busy = self._sockets.add(stream.get_extra_info("socket") if stream is not None else None)
        self._sockets.hold(busy)
        try:
            yield StreamResponse(self, response, exchange, started, started + total)
        finally:
            self._sockets.release(busy)
            response.close()

    def _replayed(self, wire: Any, scope: str, print_: str) -> StreamResponse:
        """The recorded answer to this request (``--gw-replay``): no request is sent or charged."""
        exchange = wire.replayed(scope, print_, self.redactor)
        if self.keep_transcript:
            self.transcript.append(exchange)
        if exchange.status is None:  # it failed before any answer: the same harness error again
            err = error_class(exchange.error_kind)(exchange.error or "recorded failure")
            err.exchange = exchange
            raise err
        return StreamResponse(self, None, exchange, 0.0, float("inf"), replayed=replay_chunks(exchange))

    def _send(self, method: str, url: str, hdrs: dict[str, str], content: bytes | None, exchange: Exchange,
              total: float) -> httpx.Response:
        """Send and wait for the status line and headers, within ``total`` seconds; transport errors → kinds."""
        deadline = HeadersDeadline(self._sockets, total)
        try:
            request = self._http.build_request(method, url, content=content, headers=hdrs,
                                               extensions={"trace": deadline.trace})
            with deadline:
                response = self._http.send(request, stream=True)
        except (httpx.LocalProtocolError, UnicodeEncodeError) as exc:  # h11 / httpx refuse what we built
            raise self._fail(exchange, HarnessRequestInvalid,
                             f"the harness built a request httpx refuses to send ({method} {url}): {exc}") from exc
        except httpx.TransportError as exc:
            if deadline.fired:
                raise self._fail(exchange, RequestTimedOut, f"{method} {url}: no response headers within the "
                                 f"total deadline of {total:g} s") from exc
            raise self._transport_failure(exchange, method, url, exc) from exc
        if deadline.fired:  # the headers won the race against the timer, but the socket is shut: no body
            response.close()
            raise self._fail(exchange, RequestTimedOut, f"{method} {url}: total deadline of {total:g} s passed "
                             "as the headers arrived")
        return response

    def _transport_failure(self, exchange: Exchange, method: str, url: str,
                           exc: httpx.TransportError) -> HarnessError:
        if isinstance(exc, httpx.ConnectError):
            return self._fail(exchange, TargetUnreachable, f"cannot connect to {url}: {exc}")
        if isinstance(exc, httpx.TimeoutException):
            return self._fail(exchange, RequestTimedOut, f"{method} {url} timed out: {exc}")
        return self._fail(exchange, TargetUnreachable, f"{method} {url} failed: {exc}")

    def _check_limits(self, size: int, deadline: float, exchange: Exchange) -> None:
        if size > self.max_body_bytes:
            raise self._fail(exchange, ResponseTooLarge,
                             f"response body exceeds --gw-max-body-bytes {self.max_body_bytes}")
        if time.monotonic() > deadline:
            raise self._fail(exchange, RequestTimedOut, "total deadline for the request passed")

    def _fail(self, exchange: Exchange, kind: type[HarnessError], message: str) -> HarnessError:
        message = self.redactor.text(message)
        exchange.error, exchange.error_kind = message, kind.__name__
        err = kind(message)
        err.exchange = exchange  # the exchange store keeps the failed attempt in the transcript
        return err

    def _account_stream(self, raw: bytes | bytearray, exchange: Exchange) -> None:
        """Token accounting for SSE bodies: the usage chunk, wherever it is (no judgement here).

        Scans in place: splitting a body the size of the cap into lines would copy all of it."""
        for match in _USAGE_LINE.finditer(raw):
            try:
                self.accounting.add_usage_of(json.loads(match.group(1)).get("usage"), exchange)
            except (ValueError, AttributeError):
                pass
