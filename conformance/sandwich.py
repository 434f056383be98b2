"""Sandwich mode's run side: nonces, scripted exchanges with their journal, the suite's own upstream, the probe.

A sandwich exchange (``Spec(..., script=Script(...))``) is: the rule registered upstream under the exchange's nonce,
the client exchange through the gateway, then the upstream's journal entries for the nonce (one per attempt). The
control requests go through the run's wire under the exchange's scope, so they are recorded beside the client
exchange and ``--gw-replay`` answers them from the recording: a replay re-judges the same journal offline.

Nonces are ``gwc<token><label><process>``: the token is the run's (recorded in the recording's header, shared with
xdist workers), the label names the exchange, the process (``main``, ``gw0``, ...) keeps two workers that send the
same planned exchange apart; a replay takes the process of the recording that serves the exchange, so it asks for
exactly the recorded requests.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from conformance import client as client_module
from conformance.client import HarnessError
from conformance.upstream import UpstreamControl, UpstreamError, marker

SETTLE_POLLS = 10  # journal reads while a 200 answer has no attempt yet (a gateway that logs after answering)
SETTLE_INTERVAL_S = 0.2
PROBE_WAIT_S = 5.0  # the preflight: how long the probe's journal entry may take to appear


@dataclass(frozen=True)
class Script:
    """What the upstream does for one exchange: ``respond`` (docs/scripts.md RESPONSE, or a list; None: the
    normal answer, no rule), ``times`` (None: unlimited), ``unreachable`` (the suite's own upstream is stopped while
    the exchange runs: an upstream that refuses connections)."""

    nonce: str
    respond: Any = None
    times: int | None = None
    unreachable: bool = False

    @property
    def marker(self) -> str:
        return marker(self.nonce)

    def rules(self) -> list[dict[str, Any]]:
        if self.respond is None:
            return []
        return [{"match": {"nonce": self.nonce}, "times": self.times, "respond": self.respond}]


class SandwichSetupError(Exception):
    """The gateway does not route to the upstream as configured (the preflight's one message)."""


class _Shared(httpx.BaseTransport):
    """One connection pool for every exchange's control client; closing a client leaves it open."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(verify=client_module.shared_ssl_context())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def close(self) -> None:
        pass


class Sandwich:
    """One process's side of sandwich mode: the upstream's URL, the run token, the control client of each exchange.

    ``server``: the suite's own upstream (``--upstream-listen``) when this process started it, else None;
    ``stoppable``: an unreachable upstream can be provoked (this process started it, or replaying, the recording
    process had). ``wire``: the run's wire (recording, replay)."""

    def __init__(self, url: str, token: str, wire: Any, redactor: Any, *, server: Any = None,
                 stoppable: bool = False) -> None:
        self.url, self.token, self.wire, self.redactor = url.rstrip("/"), token, wire, redactor
        self.server, self.stoppable = server, stoppable
        self._pool = _Shared()
        self.banner: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the upstream as the suite reaches it."""
        return self.url.split("://", 1)[-1].split("/", 1)[0]

    def nonce(self, label: str) -> str:
        clean = re.sub(r"[^A-Za-z0-9]", "", label)[:40]
        return f"gwc{self.token}{clean}"

    def script(self, label: str, respond: Any = None, **kw: Any) -> Script:
        return Script(self.nonce(label), respond, **kw)

    def bind(self, scope: str, spec: Any) -> Any:
        """``spec`` with its nonce bound to the process that sends it: under xdist two workers may both send one
        planned exchange, and each must read only its own attempts. On replay the suffix is the process whose
        recording serves the scope, so the replay asks for exactly the recorded requests."""
        from dataclasses import replace

        script = spec.script
        bound = self.bind_script(scope, script)
        text = json.dumps(spec.body).replace(json.dumps(script.marker)[1:-1], json.dumps(bound.marker)[1:-1])
        return replace(spec, body=json.loads(text), script=bound)

    def bind_script(self, scope: str, script: Script) -> Script:
        """``script`` with its nonce bound to the process that sends ``scope`` (see ``bind``)."""
        from dataclasses import replace

        from conformance.wire import process_name

        suffix = self.wire.replay.process_of(scope) if self.wire.replaying else process_name()
        return replace(script, nonce=f"{script.nonce}{re.sub(r'[^A-Za-z0-9]', '', suffix)}")

    def exchange(self, scope: str, script: Script, send: Callable[[], Any]) -> Any:
        """Register the script, run ``send()`` (the client exchange: a ``Recorded``, or the ``CallResult`` of an SDK
        call), then read the journal; the journal entries and the control exchanges join the recording (``journal``,
        ``upstream``)."""
        from conformance.wire import WireTransport

        transport = WireTransport(self.wire, self.redactor, None, inner=self._pool)
        control = UpstreamControl(self.url, transport=transport)
        try:
            self.wire.scope = scope
            rules = script.rules()
            if rules:
                control.register(rules)
            paused = script.unreachable and self.server is not None and not self.wire.replaying
            if paused:
                self.server.pause()
            try:
                rec = send()
            finally:
                if paused:
                    self.server.resume()
            self.wire.scope = scope
            journal = [] if script.unreachable else control.journal(script.nonce)
            polls = 0
            while (not journal and not script.unreachable and rec.error is None and 200 <= rec.status < 300
                   and polls < SETTLE_POLLS):
                polls += 1
                if not self.wire.replaying:
                    time.sleep(SETTLE_INTERVAL_S)
                journal = control.journal(script.nonce)
        except UpstreamError as exc:
            raise HarnessError(f"sandwich: {exc}") from None
        finally:
            control.close()
        rec.journal, rec.upstream = journal, transport.take_transcript()
        return rec

    def identify(self) -> None:
        """Read the upstream's Server banner (DISCLOSURE-003's needle); recorded like any control request."""
        from conformance.wire import WireTransport

        with UpstreamControl(self.url, transport=WireTransport(self.wire, self.redactor, None,
                                                               inner=self._pool)) as control:
            self.wire.scope = "sandwich:identify"
            try:
                self.banner = control.identify().get("server")
            except Exception as exc:  # noqa: BLE001 - any failure here is a harness error of the cases using it
                raise HarnessError(f"sandwich: {exc}") from None
            finally:
                self.wire.scope = None

    def close(self) -> None:
        self._pool.inner.close()


def new_token() -> str:
    return secrets.token_hex(4)


def probe(target: str, base_path: str, upstream: str, *, api_key: str | None, model: str | None,
          headers: tuple[tuple[str, str], ...] = (), timeout: float = 30.0, wait_s: float = PROBE_WAIT_S) -> None:
    """The sandwich preflight: one chat request through the gateway under a fresh nonce must show up in the
    upstream's journal within ``wait_s``; ``SandwichSetupError`` naming both addresses otherwise."""
    nonce = f"gwcprobe{uuid.uuid4().hex[:12]}"
    sent = dict(headers)
    if api_key:
        sent.setdefault("Authorization", f"Bearer {api_key}")
    body = {"model": model, "max_tokens": 4,
            "messages": [{"role": "user", "content": f"Say OK. {marker(nonce)}"}]}
    url = target.rstrip("/") + ("/" + base_path.strip("/") if base_path.strip("/") else "") + "/chat/completions"
    with UpstreamControl(upstream) as control, httpx.Client(timeout=timeout, trust_env=False) as http:
        try:
            control.register([{"match": {"nonce": nonce}, "times": 1, "respond": {"content": "OK"}}])
        except UpstreamError as exc:
            raise SandwichSetupError(f"the upstream {upstream} refused the probe's rule: {exc}") from None
        try:
            answer = http.post(url, json=body, headers=sent)
            got = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            got = f"{type(exc).__name__}: {exc}"
        deadline = time.monotonic() + wait_s
        while True:
            try:
                if control.journal(nonce):
                    return
            except UpstreamError:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    raise SandwichSetupError(
        f"the gateway {target} did not route the probe to the upstream {upstream}: POST {url} (model {model!r}) "
        f"got {got}, and within {wait_s:g} s the upstream's journal (GET {upstream}/_mock/requests?nonce={nonce}) "
        "showed no attempt carrying the probe's nonce. Expected: the gateway forwards chat completions for that "
        f"model to {upstream} (check the gateway's upstream base URL, key and model routing)")
