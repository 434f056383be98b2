"""The upstream's control client: talks to a reference server's scripting API and journal (docs/scripts.md).

One role: HTTP to the upstream a gateway routes to in sandwich mode (``--upstream`` / ``--upstream-listen``).
``identify`` tells a reference server from anything else (a usage error otherwise), ``register`` scripts a rule
under a nonce, ``journal`` reads the attempts that carried a nonce. Requests go through an optional httpx transport,
so the exchange store can record them with the client exchange they belong to (and ``--gw-replay`` answer them).
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

CONTROL_TIMEOUT = 10.0
PLACEHOLDER_TOKENS = ("undefined", "null", "none", "nil", "None", "NULL", "[object Object]")


class NotAReferenceServer(Exception):
    """The URL does not answer like a reference server (``/healthz`` and ``/_mock/scripts``)."""


class UpstreamError(Exception):
    """A control request failed (the upstream went away, or refused a rule)."""


def marker(nonce: str) -> str:
    """The text that carries a nonce in message content."""
    return f"[[mock:{nonce}]]"


def bearer_fingerprint(token: str) -> str:
    """The journal's fingerprint of ``Authorization: Bearer <token>`` (sha256 of the raw header value)."""
    return "sha256:" + hashlib.sha256(f"Bearer {token}".encode()).hexdigest()


PLACEHOLDER_FINGERPRINTS = {bearer_fingerprint(t): t for t in PLACEHOLDER_TOKENS}


class UpstreamControl:
    """HTTP client of one upstream reference server's control endpoints."""

    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = CONTROL_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport, trust_env=False)

    def identify(self) -> dict[str, Any]:
        """``{"profile", "server"}`` of a reference server; ``NotAReferenceServer`` saying what answered otherwise."""
        try:
            health = self._http.get("/healthz")
            scripts = self._http.get("/_mock/scripts")
        except httpx.HTTPError as exc:
            raise NotAReferenceServer(f"{self.url} does not answer ({type(exc).__name__}: {exc})") from None
        body = _json(health)
        listing = _json(scripts)
        if (health.status_code != 200 or not isinstance(body, dict) or body.get("status") != "ok"
                or scripts.status_code != 200 or not isinstance(listing, dict)
                or not isinstance(listing.get("rules"), list)):
            raise NotAReferenceServer(
                f"{self.url} is not a reference server: GET /healthz answered HTTP {health.status_code}, "
                f"GET /_mock/scripts answered HTTP {scripts.status_code} (expected 200 with "
                '{"status": "ok"} and {"rules": [...]})')
        return {"profile": body.get("profile"), "server": health.headers.get("server")}

    def register(self, rules: list[dict[str, Any]]) -> list[str]:
        """Register ``rules`` (one batch, all or nothing); their ids."""
        answer = self._request("POST", "/_mock/scripts", json={"rules": rules})
        if answer.status_code != 201:
            raise UpstreamError(f"the upstream refused a scripted rule: HTTP {answer.status_code} "
                                f"{answer.text[:300]}")
        return [r["id"] for r in _json(answer)["rules"]]

    def journal(self, nonce: str) -> list[dict[str, Any]]:
        """The journal entries (one per upstream attempt) that carried ``nonce``, oldest first."""
        answer = self._request("GET", "/_mock/requests", params={"nonce": nonce})
        body = _json(answer)
        if answer.status_code != 200 or not isinstance(body, (dict, list)):
            raise UpstreamError(f"GET /_mock/requests?nonce={nonce} answered HTTP {answer.status_code}")
        entries = body.get("requests", body.get("data")) if isinstance(body, dict) else body
        return [e for e in entries or [] if isinstance(e, dict)]

    def reset(self) -> None:
        self._request("POST", "/_mock/reset")

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{method} {self.url}{path} failed: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpstreamControl:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
