"""Faults of the token usage object (USAGE-*): the ``USAGE`` seam, each transform
``(usage, req, generations, streamed) -> usage`` on the correct object ``mock/usage.py`` builds, streamed or not.
"""

from __future__ import annotations

from typing import Any

from reference_server import faults
from reference_server.faults.seams import USAGE

F = faults.declare
FAULT_NO_USAGE = F("USAGE-001", "Non-streaming completions carry no usage.",
                   collateral=("USAGE-002", "USAGE-003", "USAGE-009", "USAGE-012", "USAGE-015"))
FAULT_FLOAT_COUNTS = F("USAGE-002", "Non-streamed usage counts are floats (12.0).", collateral=("CHAT-019",))
FAULT_ARITHMETIC = F("USAGE-003", "total_tokens is prompt_tokens + completion_tokens + 1.")
FAULT_INSIDE_CHOICES = F("USAGE-004", "A copy of usage sits inside choices[0] as well.")
FAULT_STREAM_DIFFERS = F("USAGE-009", "Streamed usage counts one completion token more than the non-streamed answer.")
FAULT_CACHED_OVER = F("USAGE-010", "cached_tokens exceeds prompt_tokens.")
FAULT_REASONING_OVER = F("USAGE-011", "reasoning_tokens exceeds completion_tokens.")
FAULT_PROMPT_ZERO = F("USAGE-012", "prompt_tokens is 0.")
FAULT_CACHE_MISSED = F("USAGE-016", "Requests marked cacheable report cached_tokens 0 (no cache hit, ever).")
FAULT_CACHE_FIELD_GONE = F("USAGE-018", "Requests marked cacheable get usage without the documented cache-read field.",
                           collateral=("USAGE-016",))
FAULT_COMPLETION_ZERO = F("USAGE-015", "completion_tokens is 0 even when content is not empty.")


at = USAGE.transform


def _set_cached(usage: dict[str, Any], cached: int) -> None:
    usage["prompt_tokens_details"]["cached_tokens"] = cached
    if "cache_read_input_tokens" in usage:
        usage["cache_read_input_tokens"] = cached


@at(FAULT_PROMPT_ZERO)
def _prompt_zero(usage: dict, *_: Any) -> dict:
    usage["total_tokens"] -= usage["prompt_tokens"]
    usage["prompt_tokens"] = 0
    return usage


@at(FAULT_COMPLETION_ZERO)
def _completion_zero(usage: dict, *_: Any) -> dict:
    usage["total_tokens"] -= usage["completion_tokens"]
    usage["completion_tokens"] = 0
    return usage


@at(FAULT_STREAM_DIFFERS, lambda usage, req, gens, streamed: streamed)
def _stream_differs(usage: dict, *_: Any) -> dict:
    usage["completion_tokens"] += 1
    usage["total_tokens"] += 1
    return usage


@at(FAULT_REASONING_OVER)
def _reasoning_over(usage: dict, *_: Any) -> dict:
    usage["completion_tokens_details"]["reasoning_tokens"] = usage["completion_tokens"] + 5
    return usage


@at(FAULT_CACHE_MISSED, lambda usage, *_: bool(usage["prompt_tokens_details"]["cached_tokens"]))  # a hit to miss
def _cache_missed(usage: dict, *_: Any) -> dict:
    _set_cached(usage, 0)
    return usage


@at(FAULT_CACHED_OVER)
def _cached_over(usage: dict, *_: Any) -> dict:
    _set_cached(usage, usage["prompt_tokens"] + 5)
    return usage


@at(FAULT_ARITHMETIC)
def _arithmetic(usage: dict, *_: Any) -> dict:
    usage["total_tokens"] += 1
    return usage


@at(FAULT_FLOAT_COUNTS, lambda usage, req, gens, streamed: not streamed)
def _float_counts(usage: dict, *_: Any) -> dict:
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        usage[name] = float(usage[name])
    return usage


def _cache_involved(usage: dict, *_: Any) -> bool:
    """The request read the cache, or (its first time, where the profile reports it) wrote it."""
    return bool(usage["prompt_tokens_details"]["cached_tokens"] or usage.get("cache_creation_input_tokens"))


@at(FAULT_CACHE_FIELD_GONE, _cache_involved)
def _cache_field_gone(usage: dict, *_: Any) -> dict:
    usage["prompt_tokens_details"].pop("cached_tokens")
    usage.pop("cache_read_input_tokens", None)
    return usage
