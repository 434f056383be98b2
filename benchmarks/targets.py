"""The targets the figures are held to (2-core machine), each giving PASS, MISS or n/a (not measured)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """``read`` pulls the figure out of the results (None when that section did not run); ``ok`` judges it."""

    name: str
    text: str
    read: Callable[[dict[str, Any]], float | None]
    ok: Callable[[float], bool]
    unit: str = ""


def _get(results: dict[str, Any], *path: str) -> float | None:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (int, float)) else None


def _max_rss(results: dict[str, Any]) -> float | None:
    workers = (results.get("memory") or {}).get("reference_mib") or []
    return max(workers) if workers else None


TARGETS = (
    Target("nonstream-ratio", "reference non-streaming chat, a repeated request >= 0.8x bare (req/s)",
           lambda r: _get(r, "nonstream", "ratio_rps"), lambda v: v >= 0.8, "x"),
    Target("first-seen-ratio", "reference non-streaming chat, first-seen bodies >= 0.7x bare (req/s)",
           lambda r: _get(r, "first-seen", "ratio_rps"), lambda v: v >= 0.7, "x"),
    Target("first-byte-delta", "streamed first byte <= 2 ms after a non-streamed answer",
           lambda r: _get(r, "stream", "first_byte", "reference", "delta_ms"), lambda v: v <= 2.0, "ms"),
    Target("concurrent-streams", "8 concurrent 1-second streams finish in < 1.5 s (production worker class)",
           lambda r: _get(r, "concurrency", "production_eight_s"), lambda v: v < 1.5, "s"),
    Target("worker-rss", "< 100 MB RSS per worker after load",
           _max_rss, lambda v: v < 100 * 1e6 / 2**20, "MiB"),
    Target("suite-parallel", "full suite < 20 s with -n 2",
           lambda r: _get(r, "suite", "parallel_s"), lambda v: v < 20.0, "s"),
    Target("suite-latency", "black-box run against 500 ms answers <= 20x the latency",
           lambda r: _get(r, "suite", "latency_multiple"), lambda v: v <= 20.0, "x"),
    Target("suite-requests", "a black-box run spends <= 100 requests",
           lambda r: _get(r, "suite", "requests"), lambda v: v <= 100),
    Target("suite-tokens", "a black-box run spends <= 3,000 completion tokens",
           lambda r: _get(r, "suite", "completion_tokens"), lambda v: v <= 3000),
)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its figure and verdict: PASS, MISS, or n/a when the section was not run."""
    verdicts = []
    for target in TARGETS:
        value = target.read(results)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            verdict = "n/a"
        else:
            verdict = "PASS" if target.ok(value) else "MISS"
        verdicts.append({"name": target.name, "target": target.text, "value": value, "unit": target.unit,
                         "verdict": verdict})
    return verdicts
