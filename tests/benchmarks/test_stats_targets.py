"""Percentiles, medians, ratios and target verdicts."""

import math

from benchmarks import stats, targets


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile([3.0], 99) == 3.0
    assert math.isnan(stats.percentile([], 50))


def test_median_and_ratio_keep_missing_figures_missing():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([math.nan, 4.0]) == 4.0
    assert math.isnan(stats.median([]))
    assert stats.ratio(4.0, 5.0) == 0.8
    assert math.isnan(stats.ratio(1.0, 0.0)) and math.isnan(stats.ratio(math.nan, 1.0))


def test_summarize_runs_takes_the_median_of_each_figure():
    runs = [{"rps": 100.0, "p50_ms": 2.0}, {"rps": 300.0, "p50_ms": 1.0}, {"rps": 200.0, "p50_ms": 9.0}]
    assert stats.summarize_runs(runs) == {"p50_ms": 2.0, "rps": 200.0}


def verdicts(results):
    return {t["name"]: t["verdict"] for t in targets.evaluate(results)}


def test_targets_pass_miss_and_not_measured():
    results = {
        "nonstream": {"ratio_rps": 0.79},
        "stream": {"first_byte": {"reference": {"delta_ms": 1.9}}},
        "concurrency": {"production_eight_s": 1.2},
        "memory": {"reference_mib": [40.0, 96.0]},
        "suite": {"parallel_s": 25.0, "requests": 100, "completion_tokens": 3001, "latency_multiple": 20.5},
    }
    assert verdicts(results) == {
        "nonstream-ratio": "MISS", "first-byte-delta": "PASS", "concurrent-streams": "PASS",
        "worker-rss": "MISS",  # 96 MiB is more than 100 MB
        "suite-parallel": "MISS", "suite-latency": "MISS", "suite-requests": "PASS", "suite-tokens": "MISS",
    }
    assert set(verdicts({}).values()) == {"n/a"}
    assert verdicts({"nonstream": {"ratio_rps": math.nan}})["nonstream-ratio"] == "n/a"
