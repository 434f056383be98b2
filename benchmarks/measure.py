"""One measurement of one server with one workload, by wrk or by the asyncio load generator."""

from __future__ import annotations

from benchmarks import loadgen, wrk
from benchmarks.stats import median, percentile
from benchmarks.workload import Workload

GENERATORS = ("auto", "wrk", "asyncio")


def pick_generator(choice: str) -> str:
    """``auto`` means wrk when installed, else the asyncio client; asking for wrk without it is an error."""
    if choice == "auto":
        return "wrk" if wrk.available() else "asyncio"
    if choice == "wrk" and not wrk.available():
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install -y wrk)")
    return choice


def load_run(port: int, workload: Workload, connections: int, duration: float, generator: str) -> dict[str, float]:
    """Throughput and latency of ``workload`` under ``connections`` busy keep-alive connections."""
    if generator == "wrk":
        res = wrk.run_wrk("127.0.0.1", port, workload, connections, duration)
        return {"rps": res.rps, "p50_ms": res.p50 * 1e3, "p99_ms": res.p99 * 1e3, "requests": res.requests,
                "failed": res.errors + res.bad_status}
    res = loadgen.run_load("127.0.0.1", port, workload.request_source("127.0.0.1", port), connections, duration)
    return {"rps": res.rps, "p50_ms": percentile(res.latencies, 50) * 1e3,
            "p99_ms": percentile(res.latencies, 99) * 1e3, "requests": res.requests,
            "failed": res.errors + res.bad_status}


def first_byte_run(port: int, stream: Workload, plain: Workload, pairs: int) -> dict[str, float]:
    """Unloaded latency, one request at a time: a stream's first body byte against the complete non-streamed
    answer to the same messages, in back-to-back pairs. ``delta_ms`` is the median of the per-pair differences
    (how much later the stream starts than the plain answer ends)."""
    host = "127.0.0.1"
    results = loadgen.paired_latencies(host, port, plain.raw_request(host, port), stream.raw_request(host, port),
                                       pairs)
    plain_total = [p[2] for p, _ in results]
    stream_first = [s[1] for _, s in results]
    return {"ttfb_p50_ms": percentile(stream_first, 50) * 1e3, "ttfb_p99_ms": percentile(stream_first, 99) * 1e3,
            "stream_total_p50_ms": percentile([s[2] for _, s in results], 50) * 1e3,
            "nonstream_p50_ms": percentile(plain_total, 50) * 1e3,
            "delta_ms": median([s - p for s, p in zip(stream_first, plain_total, strict=True)]) * 1e3,
            "failed": sum(1 for p, s in results if p[0] != 200 or s[0] != 200)}
