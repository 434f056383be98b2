"""``llm_mock``: the reference server as a deterministic OpenAI-compatible backend inside your own tests.

The pytest plugin (``llm_mock.plugin``, its own pytest11 entry point) adds one fixture, ``llm_mock``, and one
marker, ``@pytest.mark.llm_mock(profile="unit23")``; nothing else. The fixture yields an :class:`LlmMock`:

* ``base_url`` (e.g. ``http://127.0.0.1:PORT/v1``), ``api_key`` and ``profile``: point your client at them;
* ``script(...)`` / ``add_rule(...)``: answers scripted as data for this test (docs/scripts.md);
* ``journal``: every request the server received in this test (headers with credentials redacted, exact body,
  what was sent back); ``requests(nonce=...)`` filters by nonce;
* ``marker(nonce)``: the ``[[mock:<nonce>]]`` text that ties a request to rules matching that nonce.

Scope: one server per profile for the whole session (started on first use, on 127.0.0.1 with a free port, stopped
at the end); before each test its state is reset (rules, fail-times and rule counters, rate-limit windows, journal).
Importing this package imports nothing heavy: the server starts (and Flask is imported) on first use.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["LlmMock", "ScriptError"]


class ScriptError(ValueError):
    """The server refused a rule; the message names the rule index and field (``rules[0].respond.status``)."""


class LlmMock:
    """A handle on the session's reference server for one profile (see the module docstring)."""

    def __init__(self, root_url: str, profile: Any) -> None:
        self.url = root_url  # the server root: /healthz and /_mock/* live here
        self._profile = profile
        self.base_url = root_url + (profile.base_path or "")
        self.api_key: str | None = profile.test_key
        self.profile: str = profile.name

    # ---------------------------------------------------------------- control API
    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = resp.read()
        except urllib.error.HTTPError as err:
            detail = json.loads(err.read() or b"{}").get("error", {})
            if err.code == 400 and path.startswith("/_mock/scripts"):
                raise ScriptError(detail.get("message", str(err))) from None
            raise
        return json.loads(body) if body else None

    def script(self, *rules: Any) -> list[str]:
        """Register rules (dicts, or one ``{"rules": [...]}``/list); returns their ids in order."""
        if len(rules) == 1 and isinstance(rules[0], (dict, list)) and (
                isinstance(rules[0], list) or "rules" in rules[0]):
            payload = rules[0] if isinstance(rules[0], dict) else {"rules": rules[0]}
        else:
            payload = {"rules": list(rules)}
        return [rule["id"] for rule in self._call("POST", "/_mock/scripts", payload)["rules"]]

    def add_rule(self, respond: Any, *, times: int | None = None, id: str | None = None, **match: Any) -> str:
        """One rule: match conditions as keywords (``prompt_contains="weather"``, ``nth=3``, ``nonce=...``)."""
        rule: dict[str, Any] = {"match": match, "respond": respond}
        if times is not None:
            rule["times"] = times
        if id is not None:
            rule["id"] = id
        return self.script(rule)[0]

    def rules(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_mock/scripts")["rules"]

    def reset(self) -> None:
        """Clear rules, counters, rate-limit windows and the journal (the fixture does this before each test)."""
        self._call("POST", "/_mock/reset")

    # ---------------------------------------------------------------- journal
    @property
    def journal(self) -> list[dict[str, Any]]:
        """Every request received since the reset, oldest first (docs/scripts.md, "Journal")."""
        return self.requests()

    def requests(self, nonce: str | None = None) -> list[dict[str, Any]]:
        query = "?" + urllib.parse.urlencode({"nonce": nonce}) if nonce is not None else ""
        return self._call("GET", "/_mock/requests" + query)["data"]

    # ---------------------------------------------------------------- nonces
    @staticmethod
    def new_nonce() -> str:
        return "n-" + secrets.token_hex(8)

    @staticmethod
    def marker(nonce: str) -> str:
        """``[[mock:<nonce>]]``: put it in a message to have rules matching ``nonce`` answer that request."""
        return f"[[mock:{nonce}]]"

    def __repr__(self) -> str:
        return f"LlmMock(profile={self.profile!r}, base_url={self.base_url!r})"
