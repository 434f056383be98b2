"""Faults of rate limits, quotas, billing and allowlists (``policy/limits.py`` makes the correct decisions):

- ``ADMISSION``: ``(refusal, reason, policy) -> refusal``, a refusal of a model call; a fault lets it pass (None).
- ``RATE_LIMIT_ERROR``: ``(err, snapshot) -> err``, a 429 of the limits with its Retry-After.
- ``RATE_LIMIT_HEADERS``: ``(pairs, resp, snapshot) -> pairs``, the rate-limit header pairs of an answer.
- ``ERROR_RESPONSE`` (wire/errors.py's): the body of every 429 envelope.
"""

from __future__ import annotations

import calendar
import time
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.context import server_config
from reference_server.faults.seams import ADMISSION, ERROR_RESPONSE, RATE_LIMIT_ERROR, RATE_LIMIT_HEADERS

if TYPE_CHECKING:
    from flask import Response

    from reference_server.policy.limits import KeyPolicy, Snapshot
    from reference_server.wire.errors import ApiError

Pairs = list[tuple[str, str]]

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


# ---------------------------------------------------------------- refusals of a model call let pass


def _let_pass(refusal: ApiError, reason: str, policy: KeyPolicy) -> ApiError | None:
    return None


def _reason(name: str) -> Any:
    return lambda refusal, reason, policy: reason == name


ADMISSION.transform(FAULT_ALLOWLIST_IGNORED, _reason("allowlist"))(_let_pass)
ADMISSION.transform(FAULT_SUSPENDED_SERVED, _reason("suspended"))(_let_pass)
ADMISSION.transform(FAULT_BALANCE_IGNORED, _reason("balance"))(_let_pass)
ADMISSION.transform(FAULT_QUOTA_SERVED, _reason("quota"))(_let_pass)
ADMISSION.transform(FAULT_DAILY_SERVED, lambda refusal, reason, policy: reason == "daily"
                    and server_config().profile.claims("daily-limit"))(_let_pass)


# ---------------------------------------------------------------- the 429s of the limits


def _retry_after(err: ApiError, value: str) -> ApiError:
    """``Retry-After: value``; the retry-after-ms a variant derives from the correct value goes with it."""
    err.headers["Retry-After"] = value
    err.headers.pop("retry-after-ms", None)
    return err


@RATE_LIMIT_ERROR.transform(FAULT_NO_RETRY_AFTER)
def _no_retry_after(err: ApiError, snapshot: Snapshot) -> ApiError:
    err.headers.pop("Retry-After", None)
    err.headers.pop("retry-after-ms", None)
    return err


@RATE_LIMIT_ERROR.transform(FAULT_RETRY_AFTER_NOT_INT)
def _retry_after_not_int(err: ApiError, snapshot: Snapshot) -> ApiError:
    return _retry_after(err, "soon")


@RATE_LIMIT_ERROR.transform(FAULT_RETRY_AFTER_LONG)
def _retry_after_long(err: ApiError, snapshot: Snapshot) -> ApiError:
    return _retry_after(err, "300")


def _documented_retry_after() -> Any:
    return server_config().profile.get("rate_limits.retry_after")


@RATE_LIMIT_ERROR.transform(FAULT_RETRY_AFTER_UNDOCUMENTED, lambda err, snapshot: bool(_documented_retry_after()))
def _retry_after_undocumented(err: ApiError, snapshot: Snapshot) -> ApiError:
    return _retry_after(err, str(max(1, int(_documented_retry_after()) // 2)))


@RATE_LIMIT_ERROR.transform(FAULT_RETRY_AFTER_MS)
def _retry_after_ms(err: ApiError, snapshot: Snapshot) -> ApiError:
    err.headers["retry-after-ms"] = "-1000"
    return err


@RATE_LIMIT_ERROR.transform(FAULT_NO_CODE)
def _no_code(err: ApiError, snapshot: Snapshot) -> ApiError:
    err.code = None
    return err


@ERROR_RESPONSE.transform(FAULT_BARE_429, lambda resp, err: err.status == 429)
def _bare_429(resp: Response, err: ApiError) -> Response:
    resp.set_data(b"Too Many Requests")
    resp.mimetype = "text/plain"
    return resp


# ---------------------------------------------------------------- the rate-limit headers


def _has(name: str, *, success: bool = False) -> Any:
    """``applies``: the pairs hold ``name`` (and, with ``success``, the answer is not an error)."""
    return lambda pairs, resp, snapshot: (not success or resp.status_code < 400) and any(n == name for n, _ in pairs)


def _replace(pairs: Pairs, values: dict[str, str]) -> Pairs:
    return [(name, values.get(name, value)) for name, value in pairs]


def _without(pairs: Pairs, names: tuple[str, ...]) -> Pairs:
    return [(name, value) for name, value in pairs if name not in names]


_LIMIT = ("x-ratelimit-limit-requests", "X-RateLimit-Limit")
_REMAINING = ("x-ratelimit-remaining-requests", "X-RateLimit-Remaining")
_REQUESTS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
_TOKENS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
_X = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@RATE_LIMIT_HEADERS.transform(FAULT_429_NO_HEADERS, lambda pairs, resp, snapshot: resp.status_code == 429)
def _429_no_headers(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return []


@RATE_LIMIT_HEADERS.transform(FAULT_LIMIT_WRONG, lambda pairs, resp, snapshot: bool(pairs))
def _limit_wrong(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return _replace(pairs, dict.fromkeys(_LIMIT, str(snapshot.limit_requests * 2)))


@RATE_LIMIT_HEADERS.transform(FAULT_REMAINING_STUCK, lambda pairs, resp, snapshot: bool(pairs)
                              and snapshot.remaining_requests > 0)
def _remaining_stuck(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return _replace(pairs, dict.fromkeys(_REMAINING, str(max(0, snapshot.limit_requests - 1))))


@RATE_LIMIT_HEADERS.transform(FAULT_RESET_SECONDS, lambda pairs, resp, snapshot: any(
    n in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens") for n, _ in pairs))
def _reset_seconds(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    seconds = str(round(snapshot.reset_seconds))
    return _replace(pairs, {"x-ratelimit-reset-requests": seconds, "x-ratelimit-reset-tokens": seconds})


@RATE_LIMIT_HEADERS.transform(FAULT_NO_REQUEST_HEADERS, _has("x-ratelimit-limit-requests", success=True))
def _no_request_headers(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return _without(pairs, _REQUESTS)


@RATE_LIMIT_HEADERS.transform(FAULT_NO_TOKEN_HEADERS, _has("x-ratelimit-limit-tokens", success=True))
def _no_token_headers(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return _without(pairs, _TOKENS)


@RATE_LIMIT_HEADERS.transform(FAULT_TOKENS_FLOAT, _has("x-ratelimit-remaining-tokens"))
def _tokens_float(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return [(name, f"{value}.0" if name == "x-ratelimit-remaining-tokens" else value) for name, value in pairs]


@RATE_LIMIT_HEADERS.transform(FAULT_NO_X_HEADERS, _has("X-RateLimit-Limit", success=True))
def _no_x_headers(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return _without(pairs, _X)


@RATE_LIMIT_HEADERS.transform(FAULT_X_REMAINING_FLOAT, lambda pairs, resp, snapshot: any(
    n == "X-RateLimit-Remaining" and v != "0" for n, v in pairs))
def _x_remaining_float(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return [(name, f"{value}.0" if name == "X-RateLimit-Remaining" else value) for name, value in pairs]


@RATE_LIMIT_HEADERS.transform(FAULT_X_RESET_EPOCH, _has("X-RateLimit-Reset"))
def _x_reset_epoch(pairs: Pairs, resp: Response, snapshot: Snapshot) -> Pairs:
    return [(name, str(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))) if name == "X-RateLimit-Reset"
             else value) for name, value in pairs]
