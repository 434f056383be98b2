"""Per-key rate limits, token quotas, daily limits, wallet balance and model allowlists, with their headers.

Every authenticated request counts against its key's requests-per-minute (profile ``rate_limits.tiers``, tier from
the key's settings or a ``tier-<name>`` key); surfaces call :meth:`Limits.admit` after resolving the model, which applies
the allowlist (403, ``model-allowlist``), the wallet (402, ``billing``), the daily limit and the token quota (429).
Every authenticated response carries the profile's rate-limit headers (``rate_limits.headers``). Faults act at
seams (faults/limits.py): a refusal of a model call (``ADMISSION``), a 429 with its Retry-After
(``RATE_LIMIT_ERROR``), the header pairs (``RATE_LIMIT_HEADERS``).

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

from reference_server.context import RequestContext, server_config
from reference_server.faults import seams
from reference_server.faults.trace import UNKEYED
from reference_server.wire.errors import ApiError
from reference_server.wire.headers import ReferenceResponse

WINDOW_SECONDS = 60.0
DAY_SECONDS = 86_400.0
DEFAULT_TOKENS_PER_MINUTE = 150_000  # OpenAI's sample value
# When the doc gives no number the server still limits, high enough that a conformance run never meets it.
UNDOCUMENTED_REQUESTS_PER_MINUTE = 10_000
TIER_KEY = re.compile(r"tier-([A-Za-z0-9_]+)")

def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String()`` (``1s``, ``6m0s``, ``59.5s``, ``72ms``), as OpenAI's reset headers."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)  # integer digits: every response's reset headers pass here
    secs = f"{whole}.{millis:03d}".rstrip("0") if millis else str(whole)
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
    """429 with the envelope, code ``rate_limit_exceeded`` and an integer ``Retry-After`` (the profile's documented
    value, else a fraction or an HTTP-date under the valid variants that send one), through the
    ``RATE_LIMIT_ERROR`` seam."""
    config = server_config()
    seconds = retry_after_seconds(snapshot)
    retry_after = str(seconds)
    documented = config.profile.get("rate_limits.retry_after")
    if not documented and config.variant("retry-after-fraction"):  # both SDKs read a fraction (RATE-LIMITS-003)
        retry_after = f"{max(seconds - 1, 0)}.5"
    elif not documented and config.variant("retry-after-date"):  # ... and an HTTP-date
        retry_after = email.utils.formatdate(time.time() + seconds, usegmt=True)
    headers = {"Retry-After": retry_after}
    if config.variant("retry-after-ms") and retry_after == str(seconds):
        headers["retry-after-ms"] = str(seconds * 1000)  # as Azure OpenAI sends it; both SDKs read it first
    return seams.RATE_LIMIT_ERROR(config, ApiError(429, message, type=type_, code="rate_limit_exceeded",
                                                   headers=headers), snapshot)


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

    def count_request(self, ctx: RequestContext) -> None:
        """Before step: count the request against its key's per-minute limit (429 when exhausted).

        Only requests auth accepted count: preflights, health, ``/_mock/*`` and keyless Ollama routes carry no key.
        """
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
        Does nothing for unauthenticated requests (e.g. an Ollama surface without auth). Each refusal goes through
        the ``ADMISSION`` seam (:meth:`refuse`).
        """
        key = ctx.api_key
        if not key:
            return
        policy, profile = self.policy(ctx, key), self.config.profile
        if (
            policy.allowed_models is not None
            and profile.claims("model-allowlist")
            and model_id.lower() not in policy.allowed_models
        ):
            self.refuse("allowlist", ApiError(403, f"This API key has no access to model '{model_id}' (model "
                                              "allowlist).", code="model_not_allowed"), policy)
        if policy.suspended and profile.claims("billing"):
            self.refuse("suspended", billing_error(profile, "Your wallet is suspended. Contact your agent or admin."),
                        policy)
        reason, snapshot = self.limiter.charge(key, policy, tokens)
        if reason is None and policy.token_quota_exhausted and profile.claims("token-quota"):
            reason = "quota"
        ctx.rate_limit = snapshot
        if self.config.fault_trace is not None:
            self._trace_state(ctx, key, policy, snapshot, refused=reason is not None)
        if reason is None:
            return
        if reason == "balance":
            if profile.claims("billing"):
                self.refuse(reason, billing_error(profile), policy)
        elif reason == "daily":
            self.refuse(reason, rate_limit_error("Daily limit reached for this API key.", snapshot), policy)
        elif reason == "quota":
            self.refuse(reason, rate_limit_error("Token quota exhausted for this API key.", snapshot, type_="tokens"),
                        policy)
        else:
            self.refuse(reason, rate_limit_error(f"Rate limit reached for tokens: limit {policy.tokens_per_minute} "
                                                 "per minute.", snapshot, type_="tokens"), policy)

    def refuse(self, reason: str, refusal: ApiError, policy: KeyPolicy) -> None:
        """Raise ``refusal`` unless the ``ADMISSION`` seam lets the call pass (``reason``: allowlist, suspended,
        balance, daily, quota or tokens)."""
        refusal = seams.ADMISSION(self.config, refusal, reason, policy)
        if refusal is not None:
            raise refusal

    def add_headers(self, ctx: RequestContext, resp: ReferenceResponse) -> ReferenceResponse:
        """After step: the profile's rate-limit headers on every authenticated response (429s included), through
        the ``RATE_LIMIT_HEADERS`` seam."""
        config = self.config
        snapshot = ctx.rate_limit
        trace = config.fault_trace
        if trace is not None and not ctx.limits_traced:  # refused before the limiter, or no key: UNKEYED
            trace.couple(UNKEYED, inherit=False)
        style = self.header_style
        if snapshot is None:
            return resp
        if style == "openai":
            pairs = openai_headers(snapshot)
        elif style == "x-ratelimit":
            pairs = x_ratelimit_headers(snapshot, self.limiter.wall_clock() + snapshot.reset_seconds)
        else:
            return resp
        # Made here from numbers: straight to the WSGI server (see wire/headers.py).
        resp.send("rate-limits", seams.RATE_LIMIT_HEADERS(config, pairs, resp, snapshot))
        return resp


def openai_headers(snapshot: Snapshot) -> list[tuple[str, str]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as Go durations."""
    reset = go_duration(snapshot.reset_seconds)
    return [("x-ratelimit-limit-requests", str(snapshot.limit_requests)),
            ("x-ratelimit-remaining-requests", str(snapshot.remaining_requests)),
            ("x-ratelimit-reset-requests", reset),
            ("x-ratelimit-limit-tokens", str(snapshot.limit_tokens)),
            ("x-ratelimit-remaining-tokens", str(snapshot.remaining_tokens)),
            ("x-ratelimit-reset-tokens", reset)]


def x_ratelimit_headers(snapshot: Snapshot, reset_at: float) -> list[tuple[str, str]]:
    """``X-RateLimit-Limit``/``-Remaining`` (requests) and ``-Reset`` (ISO 8601 UTC, the window's end)."""
    return [("X-RateLimit-Limit", str(snapshot.limit_requests)),
            ("X-RateLimit-Remaining", str(snapshot.remaining_requests)),
            ("X-RateLimit-Reset", iso_utc(reset_at))]


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
