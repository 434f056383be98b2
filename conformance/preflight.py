"""Preflight: one or two probes of ``--target-url`` before any check runs, to stop a misconfigured run early.

The most common first-run mistakes (a URL without ``http://``, a port nothing listens on, ``--target-url
http://host/v1`` when the profile's base path is ``/v1`` already, a missing or refused key, a model the gateway
does not have) would otherwise turn into a hundred failures that never name the cause. The preflight stops the run
with one message naming the URL it called, and exit code ``PREFLIGHT_FAILED`` (6), apart from 1 (the gateway
failed checks) and pytest's own codes 2-5.

Probes: ``GET {target}{base_path}/models`` and one basic chat completion (``max_tokens`` 1), sent together, each
once; the doubled-base-path hint costs one more ``GET`` only when the first one answered 404. Anything else (a 5xx, a
429, a wrong body) is left to the checks: the preflight judges only what makes every check meaningless. It sends
through its own httpx client, so its requests are not in the run's accounting or transcripts. Against the
embedded reference server nothing is probed (the suite started it itself). ``--gw-no-preflight`` skips it; the
auth checks judge the gateway's key handling either way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from conformance.redact import Redactor

PREFLIGHT_FAILED = 6  # the exit code of a run the preflight stopped (pytest uses 0-5)
CONNECT_TIMEOUT = 5.0
EXCERPT = 200


class PreflightError(Exception):
    """The target cannot be checked as configured; the message says why and names the URL called."""


@dataclass(frozen=True)
class Answer:
    """What one probe got back (``status`` is None when the request did not complete)."""

    method: str
    url: str
    status: int | None
    body: Any = None
    text: str = ""
    error: str | None = None

    def describe(self, redactor: Redactor) -> str:
        if self.status is None:
            return f"{self.method} {self.url} failed: {self.error}"
        error = self.body.get("error") if isinstance(self.body, dict) else None
        detail = error.get("message") if isinstance(error, dict) and error.get("message") else self.text
        excerpt = redactor.text(" ".join(str(detail).split())[:EXCERPT]).rstrip(".")
        return f"{self.method} {self.url} answered HTTP {self.status}" + (f": {excerpt}" if excerpt else "")

    @property
    def error_text(self) -> str:
        """The error envelope's message and code (lower case), or the raw text."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict):
            return f"{error.get('message', '')} {error.get('code', '')} {error.get('param', '')}".lower()
        return self.text.lower()


def check_url(url: str) -> None:
    """A target URL must be ``http(s)://host[:port][/path]``."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return
    hint = f"; write it as http://{url}" if "://" not in url else ""
    raise PreflightError(f"--target-url {url!r} is not an http:// or https:// URL with a host{hint}")


class Preflight:
    """The probes for one target; ``run()`` raises ``PreflightError`` or returns notes worth printing."""

    def __init__(self, target_url: str, *, base_path: str, api_key: str | None, model: str | None,
                 headers: Iterable[tuple[str, str]] = (), timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.target = target_url.rstrip("/")
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.api_key, self.model = api_key, model
        self.redactor = Redactor([api_key])
        self.headers = dict(headers)
        if api_key:
            self.headers.setdefault("Authorization", f"Bearer {api_key}")
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
                                  follow_redirects=False, transport=transport)

    def run(self) -> list[str]:
        try:
            return self._run()
        finally:
            self._http.close()

    def _run(self) -> list[str]:
        check_url(self.target)
        # Both probes at once: the preflight costs one request latency (and a hung target one timeout), not two.
        with ThreadPoolExecutor(1, thread_name_prefix="conformance-preflight") as pool:
            pending_chat = pool.submit(self._basic_completion)
            models = self._send("GET", self.target + self.base_path + "/models")
            chat = pending_chat.result()
        if models.status is None:
            raise PreflightError(f"cannot reach the gateway: {models.describe(self.redactor)}. Is it running, "
                                 f"and is {self.target} its address?")
        if models.status == 404:
            self._doubled_base_path(models)
        if models.status in (401, 403):
            self._auth_refused(models)
        if chat.status is None:
            raise PreflightError(f"a basic chat completion did not complete: {chat.describe(self.redactor)}")
        if chat.status in (401, 403):
            self._auth_refused(chat)
        if chat.status == 404 and models.status == 404 and not self._names_model(chat):
            self._doubled_base_path(chat)
            raise PreflightError(
                f"nothing answers at the profile's base path: {models.describe(self.redactor)}, and "
                f"{chat.describe(self.redactor)}. --target-url should be the origin (and any mount prefix) the "
                f"gateway serves {self.base_path or '/'}/chat/completions under; the suite appends "
                f"{self.base_path or 'nothing'} itself")
        if chat.status in (400, 404, 422):
            self._unknown_model(chat, models)
        return []

    # -- probes -----------------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, body: Any = None) -> Answer:
        headers = dict(self.headers)
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            response = self._http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            return Answer(method, url, None, error=self.redactor.text(f"{type(exc).__name__}: {exc}" if str(exc)
                                                                      else type(exc).__name__))
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return Answer(method, url, response.status_code, parsed, response.text)

    def _basic_completion(self) -> Answer:
        body = {"model": self.model, "max_tokens": 1, "messages": [{"role": "user", "content": "Say OK."}]}
        return self._send("POST", self.target + self.base_path + "/chat/completions", body)

    # -- diagnoses (each raises) ------------------------------------------------------------------------------
    def _doubled_base_path(self, answer: Answer) -> None:
        """``--target-url http://host/v1`` with base path /v1: the suite called /v1/v1/...; say "drop /v1"."""
        if not self._ends_in_base_path():
            return
        origin = self.target[: -len(self.base_path)]
        retry = self._send("GET", origin + self.base_path + "/models")
        if retry.status is None or retry.status == 404:
            return
        raise PreflightError(
            f"the base path is doubled: {answer.describe(self.redactor)}. The profile's base path is "
            f"{self.base_path} and the suite appends it to --target-url, which already ends in it "
            f"({origin}{self.base_path}/models answers HTTP {retry.status}). Drop {self.base_path}: "
            f"--target-url {origin}")

    def _auth_refused(self, answer: Answer) -> None:
        note = ""
        if self._ends_in_base_path():
            note = (f". Note also that --target-url already ends in the profile's base path {self.base_path}, which "
                    f"the suite appends: you probably mean --target-url {self.target[: -len(self.base_path)]}")
        if not self.api_key:
            raise PreflightError(f"no API key was given and the gateway requires one: "
                                 f"{answer.describe(self.redactor)}. Pass --gw-api-key KEY (or set "
                                 f"CONFORMANCE_API_KEY){note}")
        raise PreflightError(f"the API key was refused: {answer.describe(self.redactor)}. Check --gw-api-key "
                             f"(or CONFORMANCE_API_KEY){note}")

    def _ends_in_base_path(self) -> bool:
        return bool(self.base_path) and urlsplit(self.target).path.rstrip("/").endswith(self.base_path)

    def _names_model(self, answer: Answer) -> bool:
        return "model" in answer.error_text

    def _unknown_model(self, chat: Answer, models: Answer) -> None:
        listed = model_ids(models.body) if models.status == 200 else None
        known = listed is not None and self.model is not None and self.model.lower() in {m.lower() for m in listed}
        if not self.model or known or not (self._names_model(chat) or listed is not None):
            return
        offer = f" GET /models lists: {', '.join(listed[:12])}{' ...' if len(listed) > 12 else ''}." if listed else ""
        raise PreflightError(f"the model {self.model!r} does not exist at the gateway: "
                             f"{chat.describe(self.redactor)}.{offer} Choose one with --gw-model")


def model_ids(body: Any) -> list[str] | None:
    """The ids of a ``/models`` list body, or None when it is not one."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def _sandwich_probe(options: Any, state: Any) -> None:
    """Sandwich mode: one probe under a fresh nonce must reach the upstream through the gateway."""
    from conformance.sandwich import SandwichSetupError, probe

    try:
        probe(options.target_url, state.profile.base_path, state.sandwich_url, api_key=state.api_key,
              model=options.model or state.profile.get("models.default_chat"), headers=options.headers,
              timeout=options.request_timeout)
    except SandwichSetupError as exc:
        raise PreflightError(Redactor([state.api_key]).text(str(exc))) from None


def run_preflight(config: Any, state: Any) -> None:
    """The plugin's session-start step: probe ``--target-url`` once, or stop the run with ``pytest.exit``.

    Runs on the controller only (never on an xdist worker), not for ``--collect-only``, ``--gw-no-preflight`` or the
    embedded server. ``state`` is the plugin's ``RunState``.
    """
    import pytest

    options = state.options
    if (not state.active or not options.target_url or hasattr(config, "workerinput")
            or config.option.collectonly or getattr(config.option, "gw_no_preflight", False)):
        return
    probe = Preflight(options.target_url, base_path=state.profile.base_path, api_key=state.api_key,
                      model=options.model or state.profile.get("models.default_chat"), headers=options.headers,
                      timeout=options.request_timeout)
    try:
        probe.run()
        if state.sandwich_url:
            _sandwich_probe(options, state)
        state.preflight_passed = True
    except PreflightError as exc:
        # The whole diagnosis once, on stderr; pytest repeats the exit reason, so that stays one short line.
        sys.stderr.write(f"\nconformance preflight: {exc}.\n\n")
        pytest.exit(f"conformance preflight failed, no check ran (exit code {PREFLIGHT_FAILED}; --gw-no-preflight "
                    "skips the preflight)", returncode=PREFLIGHT_FAILED)
