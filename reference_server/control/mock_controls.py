"""X-Mock-* request controls: per-request fault injection for client developers.

Per-request fault injection lets an SDK user provoke exactly the failure they want to handle:

=============================  ===================================================================
``X-Mock-Status: 503``         answer that status (400-599) with the error envelope
``X-Mock-Latency-Ms: 250``     wait before answering
``X-Mock-Fail-Times: 2``       fail the first 2 attempts of the same request, then succeed
``X-Mock-Fail-Key: abc``       count attempts under this key instead of a hash of the request
``X-Mock-Retry-After-Ms: 20``  add ``retry-after-ms`` to injected 429/503 answers (fast SDK retries)
``X-Mock-Stream-Cut-After: K`` close a stream after K chunks without its terminator
``X-Mock-Stream-Stall-After``  stop sending after K chunks for a long, bounded time
``X-Mock-TTFT-Ms``             delay before the first streamed chunk
``X-Mock-Tokens-Per-Second``   pace streamed chunks
``X-Mock-Error-After: K``      send an in-stream error after K chunks
``X-Mock-Upstream-Timeout: 1`` answer 504 at once, naming the profile's documented upstream timeout
=============================  ===================================================================

Server-wide defaults come from ``ServerConfig.extra``: ``mock_latency_ms``, ``mock_ttft_ms``,
``mock_tokens_per_second``, ``mock_fail_times``, ``mock_stall_seconds``. Parsed values sit on the request context (``RequestContext.mock``)
(:class:`MockControls`), which the streaming code of chat and ollama reads.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Request
from werkzeug.datastructures import Headers

from reference_server.context import RequestContext, request_context, server_config
from reference_server.policy.limits import exhausted_snapshot
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from reference_server.state.base import StateStore

MAX_LATENCY_MS = 120_000
DEFAULT_STALL_SECONDS = 30.0

STATUS_MESSAGES = {
    429: ("Rate limit reached for requests (injected by X-Mock-Status).", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", None),
    502: ("Bad gateway: the upstream provider is unavailable.", None),
    503: ("The server is overloaded or not ready yet.", None),
}


@dataclass(frozen=True)
class MockControls:
    """Fault-injection settings for one request (headers over server defaults). ``None`` means off."""

    status: int | None = None
    latency_ms: int = 0
    fail_times: int = 0
    fail_key: str | None = None
    retry_after_ms: int | None = None
    cut_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = DEFAULT_STALL_SECONDS
    ttft_ms: int = 0
    tokens_per_second: float | None = None
    error_after: int | None = None
    upstream_timeout: bool = False
    error: dict | None = None  # the error event sent after error_after chunks (a scripted rule's; None: the default)


def _int_header(headers: Headers, name: str, default: int | None, *, low: int = 0,
                high: int | None = None) -> int | None:
    raw = headers.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ApiError(400, f"Invalid {name} header: {raw!r} is not an integer.", param=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ApiError(400, f"Invalid {name} header: {value} must be {bounds}.", param=name)
    return value


def _bool_header(headers: Headers, name: str) -> bool:
    raw = headers.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ApiError(400, f"Invalid {name} header: {raw!r} is not a boolean.", param=name)


def _tps_header(headers: Headers, default: float | None) -> float | None:
    raw = headers.get("X-Mock-Tokens-Per-Second")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1_000_000:
        raise ApiError(400, f"Invalid X-Mock-Tokens-Per-Second header: {raw!r}.", param="X-Mock-Tokens-Per-Second")
    return value


# The WSGI environ keys of the headers parse_mock_controls reads: a request carrying none of them gets the server
# defaults without a dozen header look-ups (the common case; X-Mock-Provider is chat's, not a control here).
CONTROL_ENVIRON_KEYS = frozenset(
    "HTTP_" + name.upper().replace("-", "_")
    for name in ("X-Mock-Status", "X-Mock-Latency-Ms", "X-Mock-Fail-Times", "X-Mock-Fail-Key", "X-Mock-Retry-After-Ms",
                 "X-Mock-Stream-Cut-After", "X-Mock-Stream-Stall-After", "X-Mock-TTFT-Ms", "X-Mock-Tokens-Per-Second",
                 "X-Mock-Error-After", "X-Mock-Upstream-Timeout")
)


NO_CONTROLS = MockControls()


def default_controls(extra: dict) -> MockControls:
    """The server-wide defaults (``ServerConfig.extra``) that X-Mock-* headers override."""
    return MockControls(
        latency_ms=int(extra.get("mock_latency_ms", 0)), fail_times=int(extra.get("mock_fail_times", 0)),
        stall_seconds=float(extra.get("mock_stall_seconds", DEFAULT_STALL_SECONDS)),
        ttft_ms=int(extra.get("mock_ttft_ms", 0)), tokens_per_second=extra.get("mock_tokens_per_second"),
    )


def parse_mock_controls(req: Request, defaults: MockControls) -> MockControls:
    """Read the X-Mock-* headers of ``req`` over ``defaults`` (the app's ``default_controls``, built
    once: a frozen dataclass of twelve fields costs microseconds to build); bad values raise 400."""
    if CONTROL_ENVIRON_KEYS.isdisjoint(req.environ):
        return defaults
    headers = req.headers
    return MockControls(
        status=_int_header(headers, "X-Mock-Status", None, low=400, high=599),
        latency_ms=_int_header(headers, "X-Mock-Latency-Ms", defaults.latency_ms, high=MAX_LATENCY_MS),
        fail_times=_int_header(headers, "X-Mock-Fail-Times", defaults.fail_times, high=1000),
        fail_key=headers.get("X-Mock-Fail-Key") or None,
        retry_after_ms=_int_header(headers, "X-Mock-Retry-After-Ms", None, high=MAX_LATENCY_MS),
        cut_after=_int_header(headers, "X-Mock-Stream-Cut-After", None),
        stall_after=_int_header(headers, "X-Mock-Stream-Stall-After", None),
        stall_seconds=defaults.stall_seconds,
        ttft_ms=_int_header(headers, "X-Mock-TTFT-Ms", defaults.ttft_ms, high=MAX_LATENCY_MS),
        tokens_per_second=_tps_header(headers, defaults.tokens_per_second),
        error_after=_int_header(headers, "X-Mock-Error-After", None),
        upstream_timeout=_bool_header(headers, "X-Mock-Upstream-Timeout"),
    )


class AttemptCounter:
    """Counts attempts per request key, so ``X-Mock-Fail-Times`` fails the first N tries of the same request.

    The counts live in the app's state store (``reference_server.state``): exact across workers sharing a Redis.
    ``POST /_mock/reset`` clears them with the store's other counters.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def next_attempt(self, key: str) -> int:
        """1 for the first attempt under ``key``, 2 for the next, ..."""
        return self.store.incr(f"attempts:{key}")


def request_fingerprint(req: Request) -> str:
    """Identifies 'the same request' across SDK retries: method, path and body bytes (retry headers differ)."""
    digest = hashlib.sha256()
    for part in (req.method, req.path, req.get_data(cache=True)):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def injected_error(status: int, mock: MockControls) -> ApiError:
    """The envelope for an injected status; 429 and 503 carry Retry-After (and retry-after-ms when asked), and a 429
    the profile's rate-limit headers with nothing remaining."""
    message, code = STATUS_MESSAGES.get(status, (f"Injected error (X-Mock-Status: {status}).", None))
    headers: dict[str, str] = {}
    if status in (429, 503):
        documented = server_config().profile.get("rate_limits.retry_after")
        headers["Retry-After"] = str(documented or 1)
        if mock.retry_after_ms is not None:
            headers["retry-after-ms"] = str(mock.retry_after_ms)
    if status == 429:  # the profile's rate-limit headers, remaining 0, as a real limit's 429 carries them
        ctx = request_context()
        ctx.rate_limit = exhausted_snapshot(ctx, documented or 1)
    return ApiError(status, message, code=code, headers=headers)


def upstream_timeout_error() -> ApiError:
    """504 naming the documented upstream limit, answered at once (a test must not wait for it)."""
    config = server_config()
    seconds = config.profile.get("timeouts.upstream_seconds") or 600
    return ApiError(504, f"Upstream request timed out after {seconds} seconds.", code="upstream_timeout")


def is_control_path(path: str) -> bool:
    return path == "/healthz" or path.startswith("/_mock/")


def apply_mock_controls(defaults: MockControls, ctx: RequestContext) -> None:
    """Before step: parse X-Mock-* into the request context and act on the ones that decide the whole answer.

    ``defaults`` (the app's ``default_controls``) is bound by ``create_app``: no look-up per request.
    """
    req = ctx.request
    if is_control_path(req.path) or req.method == "OPTIONS":
        ctx.mock = NO_CONTROLS
        return
    mock = ctx.mock = parse_mock_controls(req, defaults)
    if mock.latency_ms:
        time.sleep(mock.latency_ms / 1000)
    if mock.upstream_timeout:
        raise upstream_timeout_error()
    if mock.fail_times:
        attempt_key = mock.fail_key or request_fingerprint(req)
        trace = ctx.server.config.fault_trace
        if trace is not None:  # whether this attempt fails depends on the earlier attempts under the same key
            trace.couple(("mock-attempts", attempt_key), inherit=True)
        if ctx.server.attempts.next_attempt(attempt_key) <= mock.fail_times:
            raise injected_error(mock.status or 503, mock)
    elif mock.status is not None:
        raise injected_error(mock.status, mock)
