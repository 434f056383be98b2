"""Section ``state``: non-streamed chat throughput of the reference server on each state store, side by side.

Three gunicorn servers with the same process model run at once: the bare Flask app, the reference server with the
in-process ``memory`` store (the default), and the reference server on a ``redis-server`` started here on a free
loopback port (``--state redis://...``: rate-limit windows, counters, scripts and the journal in Redis). Rounds
alternate bare, memory, redis; the figures are medians and the ratios are each store's req/s over the bare app's.
Skipped (with the reason) when ``redis-server`` or the ``redis``/``limits`` packages are missing.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from benchmarks import measure
from benchmarks.servers import BARE_APP, REFERENCE_APP, GunicornServer, reference_env
from benchmarks.stats import ratio, summarize_runs
from benchmarks.workload import NONSTREAM
from reference_server.state.local_redis import LocalRedis, redis_binary

START_TIMEOUT = 120.0  # three servers start at once, on a machine the benchmark shares


def missing() -> str | None:
    """Why the section cannot run here, or None."""
    if redis_binary() is None:
        return "redis-server is not installed"
    for module in ("redis", "limits"):
        if importlib.util.find_spec(module) is None:
            return f"the {module} package is not installed (pip install 'llm-gateway-conformance[redis]')"
    return None


def state_section(settings: Any) -> dict[str, Any]:
    """Req/s and latency of non-streamed chat: bare, reference on memory, reference on Redis; ratios over bare."""
    reason = missing()
    if reason is not None:
        return {"skipped": reason}
    env = reference_env(settings.profile)
    with LocalRedis(redis_binary()) as redis, \
            GunicornServer(BARE_APP, settings.gunicorn, start_timeout=START_TIMEOUT) as bare, \
            GunicornServer(REFERENCE_APP, settings.gunicorn, env=env, start_timeout=START_TIMEOUT) as memory, \
            GunicornServer(REFERENCE_APP, settings.gunicorn, env={**env, "REFERENCE_SERVER_STATE": redis.url},
                           start_timeout=START_TIMEOUT) as on_redis:
        servers = {"bare": bare, "memory": memory, "redis": on_redis}
        for server in servers.values():  # warm-up, not recorded
            measure.load_run(server.port, NONSTREAM, settings.connections, min(1.0, settings.duration),
                             settings.generator)
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        for _ in range(settings.rounds):
            for name, server in servers.items():
                runs[name].append(measure.load_run(server.port, NONSTREAM, settings.connections, settings.duration,
                                                   settings.generator))
    result: dict[str, Any] = {name: summarize_runs(r) for name, r in runs.items()}
    result["ratio_rps_memory"] = ratio(result["memory"]["rps"], result["bare"]["rps"])
    result["ratio_rps_redis"] = ratio(result["redis"]["rps"], result["bare"]["rps"])
    result["ratio_rps_redis_over_memory"] = ratio(result["redis"]["rps"], result["memory"]["rps"])
    result["workers"] = settings.gunicorn.workers
    result["runs"] = runs
    return result
