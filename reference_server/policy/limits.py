"""Per-key rate limits, token quotas, daily limits, wallet balance and model allowlists, with their headers.

Every authenticated request counts against its key's requests-per-minute (profile ``rate_limits.tiers``, tier from
the key's settings or a ``tier-<name>`` key); surfaces call :meth:`Limits.admit` after resolving the model, which applies
the allowlist (403, ``model-allowlist``), the wallet (402, ``billing``), the daily limit and the token quota (429).
Every authenticated response carries the profile's rate-limit headers (``rate_limits.headers``).

With the default ``memory`` state the counters live in this process (:class:`RateLimiter`): under gunicorn with
several workers each would count on its own, so use one worker with threads (gthread). With a Redis state
(``--state redis://...``) the app's limiter is ``state.redis_limits.RedisRateLimiter`` instead (``Limits`` takes
the state store's limiter), with the same interface and header semantics, exact across workers and hosts.

Just over 400 lines: the counters (``RateLimiter``), the per-key policy and the Flask glue with its headers are one
role; the counters could move out if the module grows.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from reference_server import faults
from reference_server.context import RequestContext, request_context, server_config
from reference_server.context import fault as _fault
from reference_server.faults.trace import UNKEYED
from reference_server.wire.errors import ApiError
from reference_server.wire.headers import ReferenceResponse

WINDOW_SECONDS = 60.0
DAY_SECONDS = 86_400.0
DEFAULT_TOKENS_PER_MINUTE = 150_000  # OpenAI's sample value
# When the doc gives no number the server still limits, high enough that a conformance run never meets it.
UNDOCUMENTED_REQUESTS_PER_MINUTE = 10_000
TIER_KEY = re.compile(r"tier-([A-Za-z0-9_]+)")

F = faults.declare
FAULT_BARE_429 = F("RATE-LIMITS-001", "Over-limit requests get 429 with a text/plain body instead of the envelope.",
                   collateral=("RATE-LIMITS-014",))
FAULT_NO_RETRY_AFTER = F("RATE-LIMITS-002", "Rate-limit 429s carry no Retry-After.")
FAULT_RETRY_AFTER_NOT_INT = F("RATE-LIMITS-003", 'Retry-After is "soon": neither seconds nor an HTTP-date.',
                              collateral=("RATE-LIMITS-017",))
FAULT_RETRY_AFTER_LONG = F("RATE-LIMITS-004", "Retry-After is 300 seconds (over the 60 s every SDK honours).",
                           collateral=("RATE-LIMITS-017",))
FAULT_RETRY_AFTER_UNDOCUMENTED = F("RATE-LIMITS-017", "Retry-After is half the value the profile's doc states.")
FAULT_NO_REQUEST_HEADERS = F("RATE-LIMITS-005", "Successful responses lack the x-ratelimit-*-requests headers.")
FAULT_TOKENS_FLOAT = F("RATE-LIMITS-006", 'x-ratelimit-remaining-tokens is not an integer ("149984.0").')
FAULT_RESET_SECONDS = F("RATE-LIMITS-007", 'x-ratelimit-reset-* are bare seconds ("60"), not Go durations.')
FAULT_NO_TOKEN_HEADERS = F("RATE-LIMITS-008", "Successful responses lack the x-ratelimit-*-tokens headers.")
FAULT_NO_X_HEADERS = F("RATE-LIMITS-009", "Successful responses lack X-RateLimit-Limit/-Remaining/-Reset.")
FAULT_X_RESET_EPOCH = F("RATE-LIMITS-010", "X-RateLimit-Reset is unix seconds, not ISO 8601.")
FAULT_X_REMAINING_FLOAT = F("RATE-LIMITS-011", 'X-RateLimit-Remaining is not an integer ("59.0").',
                            collateral=("RATE-LIMITS-012",))
FAULT_REMAINING_STUCK = F("RATE-LIMITS-012", "The remaining-requests header stays at limit - 1 until exhausted.")
FAULT_LIMIT_WRONG = F("RATE-LIMITS-013", "The limit-requests header is twice the documented tier limit.")
FAULT_NO_CODE = F("RATE-LIMITS-014", "Rate-limit 429s carry code null.")
FAULT_429_NO_HEADERS = F("RATE-LIMITS-015", "Rate-limit 429s carry no rate-limit headers.")
FAULT_RETRY_AFTER_MS = F("RATE-LIMITS-016", 'Rate-limit 429s carry retry-after-ms "-1000".')
# SDK-020: served, so there is no 402 for the SDK to raise as APIStatusError.
FAULT_BALANCE_IGNORED = F("ERRORS-016", "Keys with no balance are served (200) instead of 402.",
                          collateral=("SDK-020",))
FAULT_ALLOWLIST_IGNORED = F("ERRORS-017", "Restricted keys are served any model instead of 403.")
FAULT_SUSPENDED_SERVED = F("ERRORS-026", "Suspended wallets are served (200) instead of 402.")
FAULT_QUOTA_SERVED = F("RATE-LIMITS-018", "Keys whose token quota is exhausted are served (200) instead of 429.")
FAULT_DAILY_SERVED = F("RATE-LIMITS-019", "Keys that reached their daily limit are served (200) instead of 429.")


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String()`` (``1s``, ``6m0s``, ``59.5s``, ``72ms``), as OpenAI's reset headers."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def iso_utc(unix_seconds: float) -> str:
    """ISO 8601 UTC with a ``Z`` suffix, whole seconds (``X-RateLimit-Reset``)."""
    moment = dt.datetime.fromtimestamp(math.ceil(unix_seconds), tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KeyState:
    """Counters of one key. ``window_start`` and ``day_start`` come from the limiter's monotonic clock."""

    window_start: float
    day_start: float
    requests: int = 0
    tokens: int = 0
    day_requests: int = 0
    spent: float = 0.0


@dataclass(frozen=True)
class KeyPolicy:
    """What one key may do, from ``ServerConfig.keys[key]`` and the profile."""

    tier: str | None
    requests_per_minute: int
    tokens_per_minute: int
    daily_requests: int | None = None
    balance: float | None = None
    cost_per_request: float = 1.0
    allowed_models: frozenset[str] | None = None
    suspended: bool = False
    token_quota_exhausted: bool = False


@dataclass(slots=True)
class Snapshot:
    """The key's state after this request, for the rate-limit headers (built twice per request: not frozen, which
    would cost four times as much to construct; nothing changes one after it is made)."""

    limit_requests: int
    remaining_requests: int
    limit_tokens: int
    remaining_tokens: int
    reset_seconds: float


def policy_for(key: str, settings: dict[str, Any], profile) -> KeyPolicy:
    """The key's policy: its settings (``ServerConfig.keys``, seeded from the profile's test-key roles), then a
    ``tier-<name>`` key name, then the profile defaults."""
    tiers: dict[str, int] = profile.get("rate_limits.tiers") or {}
    tier = settings.get("tier")
    if tier is None:
        match = TIER_KEY.search(key)
        tier = match.group(1) if match and match.group(1) in tiers else profile.get("rate_limits.default_tier")
    rpm = (
        settings.get("requests_per_minute")
        or tiers.get(tier)
        or profile.get("rate_limits.requests_per_minute")
        or UNDOCUMENTED_REQUESTS_PER_MINUTE
    )
    tpm = settings.get("tokens_per_minute") or profile.get("rate_limits.tokens_per_minute") or DEFAULT_TOKENS_PER_MINUTE
    allowed = settings.get("allowed_models")
    return KeyPolicy(
        tier=tier,
        requests_per_minute=int(rpm),
        tokens_per_minute=int(tpm),
        daily_requests=settings.get("daily_requests"),
        balance=settings.get("balance"),
        cost_per_request=float(settings.get("cost_per_request", 1.0)),
        allowed_models=frozenset(m.lower() for m in allowed if m) if allowed is not None else None,
        suspended=bool(settings.get("suspended")),
        token_quota_exhausted=bool(settings.get("token_quota_exhausted")),
    )


@dataclass
class RateLimiter:
    """Thread-safe counters per key. ``clock`` is monotonic (fake it in tests); ``wall_clock`` dates resets."""

    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    _states: dict[str, KeyState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _state(self, key: str, now: float) -> KeyState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = KeyState(window_start=now, day_start=now)
        if now - state.window_start >= WINDOW_SECONDS:
            state.window_start, state.requests, state.tokens = now, 0, 0
        if now - state.day_start >= DAY_SECONDS:
            state.day_start, state.day_requests = now, 0
        return state

    def _snapshot(self, state: KeyState, policy: KeyPolicy, now: float) -> Snapshot:
        return Snapshot(
            limit_requests=policy.requests_per_minute,
            remaining_requests=max(0, policy.requests_per_minute - state.requests),
            limit_tokens=policy.tokens_per_minute,
            remaining_tokens=max(0, policy.tokens_per_minute - state.tokens),
            reset_seconds=max(0.0, state.window_start + WINDOW_SECONDS - now),
        )

    def hit(self, key: str, policy: KeyPolicy) -> tuple[bool, Snapshot]:
        """Count one request against the per-minute limit; check and increment happen under one lock."""
        with self._lock:
            now = self.clock()
            state = self._state(key, now)
            allowed = state.requests < policy.requests_per_minute
            if allowed:
                state.requests += 1
            return allowed, self._snapshot(state, policy, now)

    def charge(self, key: str, policy: KeyPolicy, tokens: int) -> tuple[str | None, Snapshot]:
        """Apply daily limit, wallet and token quota for an admitted model call; returns the refusal reason."""
        with self._lock:
            now = self.clock()
            state = self._state(key, now)
            reason = None
            if policy.daily_requests is not None and state.day_requests >= policy.daily_requests:
                reason = "daily"
            elif policy.balance is not None and policy.balance - state.spent <= 0:
                reason = "balance"
            elif state.tokens + tokens > policy.tokens_per_minute:
                reason = "tokens"
            else:
                state.day_requests += 1
                state.spent += policy.cost_per_request
                state.tokens += tokens
            return reason, self._snapshot(state, policy, now)

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


# ---------------------------------------------------------------- Flask glue


def retry_after_seconds(snapshot: Snapshot) -> int:
    """The profile's documented Retry-After, else the whole seconds until the window resets (at least 1)."""
    documented = server_config().profile.get("rate_limits.retry_after")
    if documented:
        return int(documented)
    return max(1, math.ceil(snapshot.reset_seconds))


def rate_limit_error(message: str, snapshot: Snapshot, *, type_: str = "requests") -> ApiError:
    """429 with the envelope, code ``rate_limit_exceeded`` and an integer ``Retry-After``."""
    seconds = retry_after_seconds(snapshot)
    headers = {"Retry-After": str(seconds)}
    config = server_config()
    documented = config.profile.get("rate_limits.retry_after")
    if _fault(FAULT_NO_RETRY_AFTER):
        headers = {}
    elif _fault(FAULT_RETRY_AFTER_NOT_INT):
        headers["Retry-After"] = "soon"
    elif _fault(FAULT_RETRY_AFTER_LONG):
        headers["Retry-After"] = "300"
    elif documented and _fault(FAULT_RETRY_AFTER_UNDOCUMENTED):
        headers["Retry-After"] = str(max(1, int(documented) // 2))
    elif not documented and config.variant("retry-after-fraction"):  # both SDKs read a fraction (RATE-LIMITS-003)
        headers["Retry-After"] = f"{max(seconds - 1, 0)}.5"
    elif not documented and config.variant("retry-after-date"):  # ... and an HTTP-date
        headers["Retry-After"] = email.utils.formatdate(time.time() + seconds, usegmt=True)
    if _fault(FAULT_RETRY_AFTER_MS):
        headers["retry-after-ms"] = "-1000"
    elif config.variant("retry-after-ms") and headers.get("Retry-After") == str(seconds):
        headers["retry-after-ms"] = str(seconds * 1000)  # as Azure OpenAI sends it; both SDKs read it first
    code = None if _fault(FAULT_NO_CODE) else "rate_limit_exceeded"
    return ApiError(429, message, type=type_, code=code, headers=headers)


def billing_error(profile, message: str = "Insufficient balance: your wallet balance is exhausted. Recharge and "
                  "retry.") -> ApiError:
    """The profile's answer to an empty or suspended wallet (``billing.status``: 402, or 429 for quota-style
    gateways)."""
    billing = profile.get("billing") or {}
    status = int(billing.get("status") or 402)
    return ApiError(
        status,
        message,
        type=billing.get("error_type") or "insufficient_quota",
        code=billing.get("error_code", "insufficient_quota"),
    )


class Limits:
    """One app's limits: its config, counters and policies, bound once at ``create_app`` so the hooks that run on
    every request look none of them up. Per-request values (the key's policy, its snapshot) live on the
    ``RequestContext``; surfaces call :meth:`admit` through it (``ctx.server.limits.admit(ctx, ...)``)."""

    def __init__(self, config, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter()
        self.policies: dict[str, KeyPolicy] = {}  # a configured key's policy never changes: worked out once per app
        self.header_style = config.profile.get("rate_limits.headers") or "none"

    def reset(self) -> None:
        """Forget every key's counters (``POST /_mock/reset``)."""
        self.limiter.reset()

    def policy(self, ctx: RequestContext, key: str) -> KeyPolicy:
        """The policy of ``key`` for this request, worked out once per request."""
        remembered = ctx.policy
        if remembered is not None:
            return remembered
        configured = self.config.keys.get(key)
        settings = ctx.key or configured or {}
        if settings is not configured:  # settings made up for this request (e.g. keys any gateway accepts)
            policy = policy_for(key, settings, self.config.profile)
        else:
            policy = self.policies.get(key)
            if policy is None:
                policy = self.policies[key] = policy_for(key, settings, self.config.profile)
        ctx.policy = policy
        return policy

    def count_request(self) -> None:
        """before_request: count the request against its key's per-minute limit (429 when exhausted).

        Only requests auth accepted count: preflights, health, ``/_mock/*`` and keyless Ollama routes carry no key.
        """
        ctx = request_context()
        key = ctx.api_key
        if not key:
            return
        policy = self.policy(ctx, key)
        allowed, snapshot = self.limiter.hit(key, policy)
        ctx.rate_limit = snapshot
        if self.config.fault_trace is not None:
            self._trace_state(ctx, key, policy, snapshot, refused=not allowed)
        if not allowed:
            raise rate_limit_error(
                f"Rate limit reached for requests: limit {policy.requests_per_minute} per minute"
                f" (tier {policy.tier}). Please try again in {retry_after_seconds(snapshot)}s.",
                snapshot,
            )

    def _trace_state(self, ctx: RequestContext, key: str, policy: KeyPolicy, snapshot: Snapshot, *,
                     refused: bool) -> None:
        """Fault tracing: this request counts against ``key``; a decision the counters made inherits their writers.

        A refusal was decided by what earlier requests spent. So, under the assumption that one fault cannot double
        a key's traffic, is an admission once half a limit is spent, and every decision of a daily/balance key. The
        remaining-* header values are not followed: they move with any earlier request, and checks compare them
        only within one case's own back-to-back requests.
        """
        ctx.limits_traced = True
        near = (snapshot.remaining_requests * 2 <= snapshot.limit_requests
                or snapshot.remaining_tokens * 2 <= snapshot.limit_tokens
                or policy.daily_requests is not None or policy.balance is not None)
        self.config.fault_trace.couple(("limits", key), inherit=refused or near, also=(UNKEYED,))

    def admit(self, ctx: RequestContext, model_id: str, tokens: int = 0) -> None:
        """Check the authenticated key may call ``model_id`` now; raise 403/402/429 otherwise.

        Called by chat, embeddings and ollama after resolving the model; ``tokens`` is the prompt size to charge.
        Does nothing for unauthenticated requests (e.g. an Ollama surface without auth).
        """
        key = ctx.api_key
        if not key:
            return
        config = self.config
        policy, profile = self.policy(ctx, key), config.profile
        if (
            policy.allowed_models is not None
            and profile.claims("model-allowlist")
            and model_id.lower() not in policy.allowed_models
            and not config.fault(FAULT_ALLOWLIST_IGNORED)
        ):
            raise ApiError(403, f"This API key has no access to model '{model_id}' (model allowlist).",
                           code="model_not_allowed")
        if policy.suspended and profile.claims("billing") and not config.fault(FAULT_SUSPENDED_SERVED):
            raise billing_error(profile, "Your wallet is suspended. Contact your agent or admin.")
        reason, snapshot = self.limiter.charge(key, policy, tokens)
        if (reason is None and policy.token_quota_exhausted and profile.claims("token-quota")
                and not config.fault(FAULT_QUOTA_SERVED)):
            reason = "quota"
        ctx.rate_limit = snapshot
        if config.fault_trace is not None:
            self._trace_state(ctx, key, policy, snapshot, refused=reason is not None)
        if reason is None:
            return
        if reason == "balance" and profile.claims("billing") and not config.fault(FAULT_BALANCE_IGNORED):
            raise billing_error(profile)
        if reason == "daily" and not (profile.claims("daily-limit") and config.fault(FAULT_DAILY_SERVED)):
            raise rate_limit_error("Daily limit reached for this API key.", snapshot)
        if reason == "quota":
            raise rate_limit_error("Token quota exhausted for this API key.", snapshot, type_="tokens")
        if reason == "tokens":
            raise rate_limit_error(
                f"Rate limit reached for tokens: limit {policy.tokens_per_minute} per minute.", snapshot,
                type_="tokens",
            )

    def add_headers(self, resp: ReferenceResponse) -> ReferenceResponse:
        """after_request: the profile's rate-limit headers on every authenticated response (429s included)."""
        config = self.config
        fault = config.fault
        ctx = request_context()
        snapshot = ctx.rate_limit
        trace = config.fault_trace
        if trace is not None and not ctx.limits_traced:  # refused before the limiter, or no key: UNKEYED
            trace.couple(UNKEYED, inherit=False)
        style = self.header_style
        if resp.status_code == 429 and fault(FAULT_BARE_429):
            resp.set_data(b"Too Many Requests")
            resp.mimetype = "text/plain"
        if snapshot is None or style == "none" or (resp.status_code == 429 and fault(FAULT_429_NO_HEADERS)):
            return resp
        success = resp.status_code < 400
        limit = snapshot.limit_requests * 2 if fault(FAULT_LIMIT_WRONG) else snapshot.limit_requests
        remaining = snapshot.remaining_requests
        if fault(FAULT_REMAINING_STUCK) and remaining > 0:
            remaining = max(0, snapshot.limit_requests - 1)
        if style == "openai":
            add_openai_headers(resp, snapshot, limit, remaining, success, fault)
        elif style == "x-ratelimit" and not (success and fault(FAULT_NO_X_HEADERS)):
            reset_at = self.limiter.wall_clock() + snapshot.reset_seconds
            as_float = fault(FAULT_X_REMAINING_FLOAT) and remaining > 0
            reset = str(int(reset_at)) if fault(FAULT_X_RESET_EPOCH) else iso_utc(reset_at)
            # Made here from numbers: straight to the WSGI server (see wire/headers.py).
            resp.send("rate-limits", [("X-RateLimit-Limit", str(limit)),
                                      ("X-RateLimit-Remaining", f"{remaining}.0" if as_float else str(remaining)),
                                      ("X-RateLimit-Reset", reset)])
        return resp


def add_openai_headers(resp: ReferenceResponse, snapshot: Snapshot, limit: int, remaining: int, success: bool,
                       fault: Callable[[Any], bool]) -> None:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as Go durations."""
    reset = str(round(snapshot.reset_seconds)) if fault(FAULT_RESET_SECONDS) else go_duration(snapshot.reset_seconds)
    pairs: list[tuple[str, str]] = []
    if not (success and fault(FAULT_NO_REQUEST_HEADERS)):
        pairs += [("x-ratelimit-limit-requests", str(limit)), ("x-ratelimit-remaining-requests", str(remaining)),
                  ("x-ratelimit-reset-requests", reset)]
    if not (success and fault(FAULT_NO_TOKEN_HEADERS)):
        tokens_left = snapshot.remaining_tokens
        pairs += [("x-ratelimit-limit-tokens", str(snapshot.limit_tokens)),
                  ("x-ratelimit-remaining-tokens", f"{tokens_left}.0" if fault(FAULT_TOKENS_FLOAT) else str(tokens_left)),
                  ("x-ratelimit-reset-tokens", reset)]
    resp.send("rate-limits", pairs)  # made here from numbers: straight to the WSGI server (see wire/headers.py)


def exhausted_snapshot(ctx: RequestContext, retry_after: float) -> Snapshot | None:
    """What a real limit's 429 reports for the request's key: its limits, nothing remaining, a reset after
    ``retry_after`` seconds (an ``X-Mock-Status: 429`` answer carries the rate-limit headers a real one would)."""
    key = ctx.api_key
    if not key:  # X-Mock-Status is answered before authentication: the key the request presents
        scheme, _, token = (ctx.request.headers.get("Authorization") or "").strip().partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        return None
    policy = ctx.server.limits.policy(ctx, key)
    return Snapshot(policy.requests_per_minute, 0, policy.tokens_per_minute, 0, float(retry_after))


def init_app(app: Flask, limits: Limits) -> None:
    """Install the limits hooks; runs after auth's before_request."""
    app.before_request(limits.count_request)
    app.after_request(limits.add_headers)
