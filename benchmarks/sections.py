"""The benchmark's sections. Each returns a JSON-ready dict; ``run_sections`` runs the chosen ones in order.

Load sections alternate the two apps (bare, reference, bare, reference, ...) with both servers up for the whole run,
so drift of the shared machine (other processes, CPU frequency) falls on both sides alike; figures are medians.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from typing import Any

from benchmarks import instructions, loadgen, measure, state_stores, suite_cost
from benchmarks.servers import BARE_APP, REFERENCE_APP, GunicornConfig, GunicornServer, reference_env
from benchmarks.stats import ratio, summarize_runs
from benchmarks.workload import FIRST_SEEN, NONSTREAM, STREAM, WORKLOADS, paced_stream

SECTIONS = ("nonstream", "first-seen", "stream", "embeddings", "state", "concurrency", "suite", "memory",
            "instructions")
LOAD_SECTIONS = ("nonstream", "first-seen", "stream", "embeddings")
STREAM_SECONDS = 1.0
CONCURRENT_STREAMS = 8
FIRST_BYTE_PAIRS_PER_SECOND = 40  # ~100 pairs per round at the default 5 s: a stable median, a few seconds


@dataclass(frozen=True)
class Settings:
    """Everything the command line decides."""

    gunicorn: GunicornConfig
    duration: float = 5.0
    connections: int = 16
    rounds: int = 3
    generator: str = "asyncio"
    profile: str = "openai"
    sections: tuple[str, ...] = SECTIONS
    instruction_requests: int = instructions.REQUESTS
    black_box_latency_ms: float = suite_cost.BLACK_BOX_LATENCY_MS


def _alternate(servers: dict[str, GunicornServer], rounds: int, measure_one) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            runs[name].append(measure_one(server.port))
    return runs


def load_section(servers: dict[str, GunicornServer], name: str, settings: Settings) -> dict[str, Any]:
    """Rate and latency of one workload on both apps, and the ratios reference/bare."""
    workload = WORKLOADS[name]
    for server in servers.values():  # warm-up: imports, first-request caches, TCP buffers; not recorded
        measure.load_run(server.port, workload, settings.connections, min(1.0, settings.duration),
                         settings.generator)
    runs = _alternate(servers, settings.rounds, lambda port: measure.load_run(
        port, workload, settings.connections, settings.duration, settings.generator))
    result: dict[str, Any] = {name: summarize_runs(r) for name, r in runs.items()}
    result["ratio_rps"] = ratio(result["reference"]["rps"], result["bare"]["rps"])
    result["ratio_p50"] = ratio(result["reference"]["p50_ms"], result["bare"]["p50_ms"])
    # Each reference run over the bare run just before it: how far the rounds spread on a shared machine.
    result["ratio_rps_rounds"] = [ratio(ref["rps"], bare["rps"])
                                  for bare, ref in zip(runs["bare"], runs["reference"], strict=True)]
    result["runs"] = runs
    if name == "stream":
        result["first_byte"] = first_byte_section(servers, settings)
    return result


def first_byte_section(servers: dict[str, GunicornServer], settings: Settings) -> dict[str, Any]:
    """Unloaded first-byte latency of a stream against the non-streamed answer, per app (alternated)."""
    pairs = max(20, round(settings.duration * FIRST_BYTE_PAIRS_PER_SECOND))
    runs = _alternate(servers, settings.rounds, lambda port: measure.first_byte_run(port, STREAM, NONSTREAM, pairs))
    return {name: summarize_runs(r) for name, r in runs.items()}


def _worker_classes(configured: str) -> list[str]:
    classes = ["sync", "gthread"] + (["gevent"] if importlib.util.find_spec("gevent") else [])
    return classes if configured in classes else classes + [configured]


def concurrency_section(settings: Settings) -> dict[str, Any]:
    """Per worker class: one paced 1-second stream alone, then 8 at once; the ratio shows whether streams block."""
    classes: dict[str, Any] = {}
    for worker_class in _worker_classes(settings.gunicorn.worker_class):
        config = replace(settings.gunicorn, worker_class=worker_class)
        with GunicornServer(REFERENCE_APP, config, env=reference_env(settings.profile)) as server:
            classes[worker_class] = {**_streams_alone_and_together(server.port), "config": config.args()}
    best = min(classes, key=lambda name: (classes[name]["failed"], classes[name]["eight_s"]))
    configured = settings.gunicorn.worker_class
    return {"classes": classes, "best": best, "production": configured,
            "production_eight_s": classes[configured]["eight_s"], "production_ratio": classes[configured]["ratio"]}


def _streams_alone_and_together(port: int) -> dict[str, Any]:
    request = paced_stream(STREAM_SECONDS).raw_request("127.0.0.1", port)
    loadgen.concurrent_wall("127.0.0.1", port, request, 1)  # warm-up
    one, _ = loadgen.concurrent_wall("127.0.0.1", port, request, 1)
    eight, statuses = loadgen.concurrent_wall("127.0.0.1", port, request, CONCURRENT_STREAMS)
    return {"one_s": one, "eight_s": eight, "ratio": ratio(eight, one),
            "failed": sum(1 for status in statuses if status != 200)}


def memory_section(servers: dict[str, GunicornServer], settings: Settings) -> dict[str, Any]:
    """VmRSS of every worker of both apps, read after the load sections ran (a short load first if none did)."""
    if not any(s in settings.sections for s in LOAD_SECTIONS):
        for server in servers.values():
            measure.load_run(server.port, NONSTREAM, settings.connections, min(2.0, settings.duration),
                             settings.generator)
    return {f"{name}_mib": server.worker_rss_mib() for name, server in servers.items()}


def instructions_section(settings: Settings) -> dict[str, Any]:
    """Instructions per non-streamed request of each app under callgrind, and bare/reference (higher is better, as
    for req/s): the one figure here that the machine's other load does not move."""
    if not instructions.available():
        return {"skipped": "valgrind is not installed"}
    apps = {"bare": (BARE_APP, {}), "reference": (REFERENCE_APP, reference_env(settings.profile))}
    requests = settings.instruction_requests
    counts = instructions.measure_workloads(apps, settings.gunicorn, (NONSTREAM, FIRST_SEEN), requests=requests,
                                            warm_up=min(instructions.WARM_UP, requests))
    bare, reference = counts["bare"], counts["reference"]
    first_seen = {"bare": bare[FIRST_SEEN.name], "reference": reference[FIRST_SEEN.name],
                  "ratio": ratio(bare[FIRST_SEEN.name], reference[FIRST_SEEN.name])}
    return {"bare": bare[NONSTREAM.name], "reference": reference[NONSTREAM.name],
            "ratio": ratio(bare[NONSTREAM.name], reference[NONSTREAM.name]), "requests": requests,
            "workload": NONSTREAM.name, "first_seen": first_seen}


def run_sections(settings: Settings, progress=print) -> dict[str, Any]:
    """Run the chosen sections; the two load servers stay up from the first load section to the memory reading."""
    results: dict[str, Any] = {}
    needs_servers = any(s in settings.sections for s in (*LOAD_SECTIONS, "memory"))
    if needs_servers:
        env = reference_env(settings.profile)
        with GunicornServer(BARE_APP, settings.gunicorn) as bare, \
                GunicornServer(REFERENCE_APP, settings.gunicorn, env=env) as reference:
            servers = {"bare": bare, "reference": reference}
            for name in LOAD_SECTIONS:
                if name in settings.sections:
                    progress(f"[{name}] {settings.rounds} x (bare, reference), {settings.duration:g} s each")
                    results[name] = load_section(servers, name, settings)
            if "memory" in settings.sections:
                progress("[memory] worker VmRSS")
                results["memory"] = memory_section(servers, settings)
    if "state" in settings.sections:
        progress(f"[state] {settings.rounds} x (bare, reference on memory, reference on redis), {settings.duration:g} s each")
        results["state"] = state_stores.state_section(settings)
    if "concurrency" in settings.sections:
        progress(f"[concurrency] {CONCURRENT_STREAMS} x {STREAM_SECONDS:g} s streams per worker class")
        results["concurrency"] = concurrency_section(settings)
    if "suite" in settings.sections:
        progress("[suite] full suite, single process and -n 2")
        results["suite"] = suite_cost.measure_suite(settings.profile, settings.black_box_latency_ms)
    if "instructions" in settings.sections:
        progress(f"[instructions] {settings.instruction_requests} non-streamed requests per app under callgrind")
        results["instructions"] = instructions_section(settings)
    return results

