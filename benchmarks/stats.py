"""Small statistics the report needs: percentiles, medians of alternated runs, ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by the nearest-rank method (what wrk reports); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values (a section that measured nothing must not look like zero)."""
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is missing or the denominator is zero."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def summarize_runs(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Median of every figure over alternated runs: ``[{"rps": .., "p50_ms": ..}, ...]`` -> one dict."""
    keys = sorted({key for run in runs for key in run})
    return {key: median([run[key] for run in runs if key in run]) for key in keys}
