"""The sandwich in one process: a reference server upstream (behind a capturing WSGI wrapper), reference relays in
front of it, and a ``Probe`` that sends through a relay and reads what each upstream attempt received.

Upstream failures are provoked with the reference server's ``X-Mock-*`` headers, which the relay forwards only in
its test mode (``forward_mock_headers``). The suite's own sandwich checks use the scripting API instead
(``/_mock/scripts``, nonce in the content: the channel that works through any gateway); tests/relay/suite_matrix.py
runs them through the relay.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from conformance.sse import read_stream
from reference_relay import RelayConfig, create_relay_app
from reference_relay.serving import RelayThread
from reference_server import ServerConfig, create_app

PROFILE = "openai"
MODEL = "gpt-4o-mini"
CLIENT_KEY = "sk-conformance-test"  # the profile's test key: the relay serves it, and the upstream knows it too
UPSTREAM_KEY = "sk-relay-upstream-7c41d9"  # the relay's own key for the upstream
# A permissive upstream also takes the placeholder a broken gateway sends ("Bearer undefined"): the fault then
# shows only in what the upstream received, the hardest case for a check (a strict upstream would 401).
UPSTREAM_KEYS = {UPSTREAM_KEY: {"role": "test"}, "undefined": {"role": "test"}}
REPLAY_HEADER = "X-Test-Replay"
RELAY_TIMEOUT = 1.5  # the relays' upstream timeout in these tests (seconds): 0.5 s timed out ordinary answers on a loaded CI machine


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@dataclass
class Attempt:
    """One request the upstream received, as it arrived (credentials in clear: test only)."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return None


class Capture:
    """WSGI wrapper that records every request before the reference server sees it."""

    def __init__(self, app) -> None:
        self.app, self.attempts, self._lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        if not headers.get(REPLAY_HEADER.title()):
            with self._lock:
                self.attempts.append(Attempt(time.time(), environ["REQUEST_METHOD"], environ["PATH_INFO"], headers,
                                             raw))
        return self.app(environ, start_response)


class Upstream:
    """A reference server for ``PROFILE`` on a loopback port, capturing what it receives."""

    def __init__(self) -> None:
        config = ServerConfig.for_profile(PROFILE, keys=dict(UPSTREAM_KEYS))
        self.capture = Capture(create_app(config))
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self.capture, threaded=True, request_handler=_Quiet)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.client = httpx.Client(timeout=10, trust_env=False)
        self.banner = self.client.get(self.url + "/healthz").headers["server"]

    def attempts(self, nonce: str) -> list[Attempt]:
        with self.capture._lock:
            return [a for a in self.capture.attempts if nonce.encode() in a.raw]

    def replay(self, attempt: Attempt) -> Result:
        """The upstream's answer to exactly that attempt (the reference server is deterministic)."""
        headers = {k: v for k, v in attempt.headers.items() if k.lower() not in ("host", "content-length")}
        headers[REPLAY_HEADER] = "1"
        start = time.monotonic()
        with self.client.stream(attempt.method, self.url + attempt.path, headers=headers, content=attempt.raw) as r:
            return Result.read(r, start)

    def stop(self) -> None:
        self.client.close()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Result:
    """A client-side exchange: status, headers, raw body, JSON or the stream's events with arrival times."""

    status: int
    headers: httpx.Headers
    raw: bytes
    elapsed: float
    json: Any = None
    events: list = field(default_factory=list)

    @classmethod
    def read(cls, resp: httpx.Response, start: float) -> Result:
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            transcript = read_stream(resp.iter_raw(), deadline_s=20)
            raw = b"".join(e.raw for e in transcript.events)
            return cls(resp.status_code, resp.headers, raw, time.monotonic() - start, events=transcript.events)
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return cls(resp.status_code, resp.headers, raw, time.monotonic() - start, json=parsed)

    @property
    def streamed(self) -> bool:
        return bool(self.events)

    @property
    def done(self) -> bool:
        return any(e.is_done for e in self.events)

    def data(self) -> list[Any]:
        """The JSON of every data event before [DONE] (chunks and error events)."""
        out = []
        for event in self.events:
            if event.is_done:
                break
            try:
                out.append(json.loads(event.data))
            except ValueError:
                out.append(None)
        return out

    def chunks(self) -> list[dict]:
        return [d for d in self.data() if isinstance(d, dict) and "error" not in d]

    def errors(self) -> list[Any]:
        return [d["error"] for d in self.data() if isinstance(d, dict) and "error" in d]

    def visible(self) -> str:
        """Everything a client can read: header names and values, and the body."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.multi_items())
        return head + "\n" + self.raw.decode("utf-8", "replace")


@dataclass
class Probe:
    """Sends through one relay; knows the upstream behind it and the bounds the checks apply."""

    relay: str
    upstream: Upstream
    config: RelayConfig
    client: httpx.Client

    def nonce(self) -> str:
        return f"n{uuid.uuid4().hex[:16]}"

    def chat(self, body: dict[str, Any], headers: dict[str, str] | None = None, key: str | None = CLIENT_KEY,
             path: str = "/v1/chat/completions") -> Result:
        sent = {"Authorization": f"Bearer {key}"} if key else {}
        sent.update(headers or {})
        start = time.monotonic()
        with self.client.stream("POST", self.relay + path, json=body, headers=sent) as resp:
            return Result.read(resp, start)

    def get(self, path: str, key: str | None = CLIENT_KEY) -> Result:
        start = time.monotonic()
        with self.client.stream("GET", self.relay + path, headers={"Authorization": f"Bearer {key}"}) as resp:
            return Result.read(resp, start)


class Relays:
    """Relays in front of one upstream, started on demand and kept per (faults, variants, upstream)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._running: dict[str, tuple[RelayThread, RelayConfig]] = {}
        self.client = httpx.Client(timeout=httpx.Timeout(20.0), trust_env=False)

    def probe(self, faults: tuple[str, ...] = (), variants: tuple[str, ...] = (), upstream_url: str | None = None,
              **settings: Any) -> Probe:
        """A relay with these faults and variants (and other ``RelayConfig`` settings), started once."""
        key = repr((sorted(faults), sorted(variants), upstream_url, sorted(settings.items(), key=str)))
        if key not in self._running:
            settings = {"upstream_key": UPSTREAM_KEY, "forward_mock_headers": True, "upstream_timeout": RELAY_TIMEOUT,
                        **settings}
            profile = settings.pop("profile", PROFILE)
            config = RelayConfig.for_profile(profile, upstream_url or self.upstream.url, faults=faults,
                                             variants=variants, **settings)
            thread = RelayThread(create_relay_app(config))
            thread.start()
            self._running[key] = (thread, config)
        thread, config = self._running[key]
        # Every probe starts from a fresh upstream: its per-minute limits would otherwise turn a fast run (an idle
        # machine sends the whole matrix within a minute) into 429s that no fault caused.
        self.client.post(self.upstream.url + "/_mock/reset").raise_for_status()
        return Probe(thread.url, self.upstream, config, self.client)

    def stop(self) -> None:
        for thread, _ in self._running.values():
            thread.stop()
        self._running.clear()
        self.client.close()


def closed_port() -> str:
    """A loopback URL nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
