"""One measurement of one server with one workload, by wrk or by the asyncio load generator."""

from __future__ import annotations

from benchmarks import loadgen, wrk
from benchmarks.stats import percentile
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
    res = loadgen.run_load("127.0.0.1", port, workload.raw_request("127.0.0.1", port), connections, duration)
    return {"rps": res.rps, "p50_ms": percentile(res.latencies, 50) * 1e3,
            "p99_ms": percentile(res.latencies, 99) * 1e3, "requests": res.requests,
            "failed": res.errors + res.bad_status}


def first_byte_run(port: int, stream: Workload, plain: Workload, duration: float) -> dict[str, float]:
    """Unloaded latency, one connection at a time: the stream's first body byte against the complete
    non-streamed answer to the same messages. ``delta_ms`` is how much later the stream starts."""
    host = "127.0.0.1"
    streamed = loadgen.run_load(host, port, stream.raw_request(host, port), 1, duration / 2)
    answered = loadgen.run_load(host, port, plain.raw_request(host, port), 1, duration / 2)
    ttfb_p50 = percentile(streamed.first_bytes, 50) * 1e3
    plain_p50 = percentile(answered.latencies, 50) * 1e3
    return {"ttfb_p50_ms": ttfb_p50, "ttfb_p99_ms": percentile(streamed.first_bytes, 99) * 1e3,
            "stream_total_p50_ms": percentile(streamed.latencies, 50) * 1e3,
            "nonstream_p50_ms": plain_p50, "delta_ms": ttfb_p50 - plain_p50,
            "failed": streamed.errors + streamed.bad_status + answered.errors + answered.bad_status}
