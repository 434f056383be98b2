"""Write the figures as JSON (``reports/benchmarks/<timestamp>.json`` and ``latest.json``) and print them as a
table, each target beside its figure with PASS, MISS or n/a."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from benchmarks.servers import ROOT

REPORT_DIR = ROOT / "reports" / "benchmarks"


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: a figure that was not measured is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: dict[str, Any], directory: Path = REPORT_DIR) -> Path:
    """Write ``<UTC timestamp>.json`` and ``latest.json``; returns the timestamped path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(_json_safe(report), indent=2) + "\n"
    path = directory / f"{stamp}.json"
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _load_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name in ("nonstream", "first-seen", "stream", "embeddings"):
        section = results.get(name)
        if not section:
            continue
        bare, ref = section["bare"], section["reference"]
        for key, label, digits in (("rps", "req/s", 0), ("p50_ms", "p50 ms", 2), ("p99_ms", "p99 ms", 2)):
            ratio_key = {"rps": "ratio_rps", "p50_ms": "ratio_p50"}.get(key)
            rows.append([f"{name} {label}", _fmt(bare.get(key), digits), _fmt(ref.get(key), digits),
                         _fmt(section.get(ratio_key), 2) if ratio_key else ""])
            rounds = [r for r in section.get("ratio_rps_rounds") or [] if not math.isnan(r)]
            if key == "rps" and rounds:
                rows.append([f"{name} req/s ratio by round", "", "", f"{min(rounds):.2f}-{max(rounds):.2f}"])
        if "first_byte" in section:
            fb = section["first_byte"]
            for key, label in (("ttfb_p50_ms", "first byte p50 ms"), ("ttfb_p99_ms", "first byte p99 ms"),
                               ("stream_total_p50_ms", "total p50 ms (1 conn)"),
                               ("nonstream_p50_ms", "non-stream p50 ms (1 conn)"),
                               ("delta_ms", "first byte - non-stream ms")):
                rows.append([f"stream {label}", _fmt(fb["bare"].get(key), 2), _fmt(fb["reference"].get(key), 2), ""])
    return rows


def _other_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for worker_class, fig in (results.get("concurrency") or {}).get("classes", {}).items():
        rows.append([f"{worker_class}: 1 stream / 8 streams s", "", f"{_fmt(fig['one_s'], 2)} / "
                     f"{_fmt(fig['eight_s'], 2)}", _fmt(fig["ratio"], 2)])
    state = results.get("state") or {}
    if "ratio_rps_redis" in state:
        rows.append(["nonstream req/s, state memory / redis", _fmt(state["bare"]["rps"], 0),
                     f"{_fmt(state['memory']['rps'], 0)} / {_fmt(state['redis']['rps'], 0)}",
                     f"{state['ratio_rps_memory']:.2f} / {state['ratio_rps_redis']:.2f}"])
    elif state:
        rows.append(["nonstream req/s, state memory / redis", "", state.get("skipped", "-"), ""])
    memory = results.get("memory") or {}
    if memory:
        rows.append(["worker RSS MiB", ", ".join(_fmt(v) for v in memory.get("bare_mib", [])),
                     ", ".join(_fmt(v) for v in memory.get("reference_mib", [])), ""])
    counted = results.get("instructions") or {}
    if "ratio" in counted:
        rows.append([f"{counted['workload']} instructions/request (callgrind)", _fmt(counted["bare"], 0),
                     _fmt(counted["reference"], 0), f"{counted['ratio']:.2f} (bare/ref)"])
        first = counted.get("first_seen")
        if first:
            rows.append(["first-seen instructions/request (callgrind)", _fmt(first["bare"], 0),
                         _fmt(first["reference"], 0), f"{first['ratio']:.2f} (bare/ref)"])
    elif counted:
        rows.append(["instructions/request (callgrind)", "", counted.get("skipped", "-"), ""])
    suite = results.get("suite") or {}
    if suite:
        rows.append(["suite wall s (1 process / -n 2)", "", f"{_fmt(suite['single_s'])} / "
                     f"{_fmt(suite['parallel_s'])}", ""])
        rows.append(["suite wall s, -n 2, no plugin autoload", "", _fmt(suite.get("parallel_no_autoload_s")), ""])
        rows.append(["black-box run requests / completion tokens", "", f"{_fmt(suite['requests'])} / "
                     f"{_fmt(suite['completion_tokens'])}", ""])
        if "latency_multiple" in suite:
            rows.append([f"black-box run, {_fmt(suite['black_box_latency_ms'])} ms answers: wall s (x latency)", "",
                         f"{_fmt(suite['black_box_delayed_s'])} ({_fmt(suite['latency_multiple'])}x)", ""])
        if "embedded_requests" in suite:
            rows.append(["embedded run requests / completion tokens", "", f"{_fmt(suite['embedded_requests'])} / "
                         f"{_fmt(suite['embedded_completion_tokens'])}", ""])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def render(report: dict[str, Any]) -> str:
    """The human table: figures (bare, reference, ratio), then targets with verdicts."""
    results = report["results"]
    parts = [f"generator: {report['generator']}   gunicorn: {' '.join(report['gunicorn'])}   "
             f"duration {report['settings']['duration']:g} s x {report['settings']['rounds']} rounds, "
             f"{report['settings']['connections']} connections"]
    env = report.get("environment") or {}
    if "load_average_1m" in env:
        parts[0] += (f"\nmachine: {env.get('cpus')} CPUs, load average {env.get('load_average_1m_before', 0):.1f}"
                     f" before / {env['load_average_1m']:.1f} after (other load skews absolute figures)")
    if "asyncio_client_ceiling_rps" in env:
        parts[0] += f"\nasyncio client ceiling: {env['asyncio_client_ceiling_rps']:,.0f} req/s against a null server"
    rows = _load_rows(results) + _other_rows(results)
    if rows:
        parts.append(_table(["figure", "bare", "reference", "ratio ref/bare"], rows))
    concurrency = results.get("concurrency")
    if concurrency:
        parts.append(f"best worker class for streams: {concurrency['best']} "
                     f"(configured: {concurrency['production']})")
    target_rows = [[t["verdict"], t["target"], f"{_fmt(t['value'], 2)} {t['unit']}".strip()]
                   for t in report["targets"]]
    parts.append(_table(["verdict", "target", "figure"], target_rows))
    return "\n\n".join(parts)
