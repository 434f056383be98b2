"""Talking to the upstream: attempts within the retry budget, Retry-After, timeouts, and failure answers.

``send`` returns either an open ``httpx.Response`` (status < 400, body not read yet, so a stream can be relayed
as it arrives) or a ``Failure`` the app turns into the client's answer. Failure messages never name the upstream
(URL, key, server banner): that is the disclosure requirement, and the ``failure`` seam is where a fault breaks it.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx

from reference_relay.seams import Exchange, Failure, Policy

# Upstream answer headers the relay passes on to its client (lower-case names or prefixes); nothing else of the
# upstream's headers (Server, Via, hop-by-hop, cookies) reaches the client.
RELAYED_HEADERS = ("x-request-id", "retry-after", "retry-after-ms")
RELAYED_PREFIXES = ("x-ratelimit-",)
RETRYABLE = frozenset({429, 500, 502, 503, 504})

MESSAGES = {
    "server_error": "The upstream provider failed to answer the request.",
    "auth": "The gateway could not authenticate with the upstream provider.",
    "timeout": "The upstream provider did not answer in time.",
    "unreachable": "The upstream provider could not be reached.",
    "malformed": "The upstream provider sent an answer the gateway could not read.",
}


def envelope(message: str, etype: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def relayed_headers(headers: httpx.Headers | dict[str, str]) -> list[tuple[str, str]]:
    """The upstream headers a client may see (request id, rate limits, Retry-After), names as the upstream sent."""
    out = []
    for name, value in headers.items():
        low = name.lower()
        if low in RELAYED_HEADERS or low.startswith(RELAYED_PREFIXES):
            out.append((name, value))
    return out


def retry_wait(headers: httpx.Headers, attempt: int, policy: Policy) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` when the upstream asks for longer than the relay waits
    (the answer then goes back to the client at once, Retry-After included)."""
    if not policy.honour_retry_after:
        return 0.0
    wait = None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            wait = float(ms) / 1000
        except ValueError:
            wait = None
    after = headers.get("retry-after")
    if wait is None and after is not None:
        try:
            wait = float(after)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(after) if after.strip() else None
            wait = parsed.timestamp() - time.time() if parsed else None
    if wait is None:
        wait = policy.backoff * 2 ** (attempt - 1)
    wait = max(0.0, wait)
    return None if wait > policy.max_retry_wait else wait


def _timeout(policy: Policy) -> httpx.Timeout:
    connect = policy.connect_timeout if policy.timeout is None else min(policy.connect_timeout, policy.timeout)
    return httpx.Timeout(policy.timeout, connect=connect)


def failure(ex: Exchange, kind: str, upstream_status: int | None = None) -> Failure:
    """A failure answer in the profile's documented status and type for ``kind``."""
    status, etype = ex.config.failure(kind)
    code = {"timeout": "upstream_timeout", "unreachable": "upstream_unreachable"}.get(kind, "upstream_error")
    return Failure(kind, status, envelope(MESSAGES[kind], etype, code), upstream_status=upstream_status)


def _is_envelope(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and "message" in body["error"]


def answer_failure(ex: Exchange, resp: httpx.Response, raw: bytes) -> Failure:
    """The client's answer to an upstream error status (after the retries)."""
    status = resp.status_code
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    headers = relayed_headers(resp.headers)
    if status == 429:
        if not _is_envelope(body):
            body = envelope("Rate limit reached at the upstream provider.", "rate_limit_exceeded",
                            "rate_limit_exceeded")
        return Failure("rate_limited", 429, body, headers, upstream_status=status)
    if status == 401:  # the relay's own key: never the client's business as a 401
        return failure(ex, "auth", status)
    if status == 504:  # the upstream's own upstream timed out: a timeout, as the client sees it
        return failure(ex, "timeout", status)
    if status >= 500:
        return failure(ex, "server_error", status)
    if not _is_envelope(body):  # the client's own mistake, as the upstream judged it, in the OpenAI envelope
        body = envelope(f"The upstream provider refused the request (status {status}).", "invalid_request_error")
    return Failure("client_error", status, body, headers, upstream_status=status)


class Upstream:
    """One pooled HTTP client for the relay's upstream."""

    def __init__(self) -> None:
        self.client = httpx.Client(follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def send(self, ex: Exchange, policy: Policy, method: str, url: str, headers: dict[str, str],
             body: dict[str, Any] | None) -> httpx.Response | Failure:
        """Up to ``policy.max_attempts`` attempts; the first answer below 400 comes back open (unread)."""
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        result: Failure | None = None
        for attempt in range(1, policy.max_attempts + 1):
            ex.notes["attempts"] = attempt
            wait: float | None = min(policy.backoff * 2 ** (attempt - 1), policy.max_retry_wait)
            try:
                request = self.client.build_request(method, url, headers=headers, content=content,
                                                    timeout=_timeout(policy))
                resp = self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                result = failure(ex, "unreachable")
            except httpx.TimeoutException:  # the time budget is spent: no further attempt
                return failure(ex, "timeout")
            except httpx.TransportError:  # reset or broken answer before the headers
                result = failure(ex, "server_error")
            else:
                ex.upstream_status = resp.status_code
                ex.upstream_headers = {k.lower(): v for k, v in resp.headers.items()}
                if resp.status_code < 400:
                    return resp
                try:
                    raw = resp.read()
                except httpx.TimeoutException:
                    return failure(ex, "timeout")
                except httpx.TransportError:
                    raw = b""
                finally:
                    resp.close()
                result = answer_failure(ex, resp, raw)
                if resp.status_code not in RETRYABLE:
                    return result
                wait = retry_wait(resp.headers, attempt, policy)
            if attempt == policy.max_attempts or wait is None:
                break
            time.sleep(wait)
        assert result is not None
        return result
