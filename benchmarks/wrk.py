"""Drive wrk (when installed) with the benchmark's requests and parse what it prints.

wrk is the preferred generator: C, an event loop per thread, no GIL, so on a 2-core machine it takes the least CPU
from the server. It reports rate and latency percentiles but not time to first byte, so stream first-byte figures
come from ``loadgen`` in every case.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.workload import SERIAL_MARK, SERIAL_WIDTH, Workload

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
PERCENTILE = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
TOTAL = re.compile(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)", re.M)
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    p50: float
    p99: float
    errors: int
    bad_status: int


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_script(workload: Workload) -> str:
    """The wrk script that turns every request into the workload's POST (a first-seen workload: a body with a
    serial unique across wrk's threads on each request, as ``Workload.request_source`` makes them)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(workload.body_bytes().decode())}"]
    lines += [f"wrk.headers[{_lua_string(n)}] = {_lua_string(v)}" for n, v in workload.headers()]
    if workload.first_seen:
        head, _, tail = workload.body_bytes().decode().partition(SERIAL_MARK)
        lines += [
            "local threads = 0",
            "function setup(thread) thread:set(\"tid\", threads); threads = threads + 1 end",
            "local sent = 0",
            "function request()",
            "  sent = sent + 1",
            f"  local serial = string.format(\"v%03d%0{SERIAL_WIDTH - 3}d\", tid, sent)",
            f"  return wrk.format(nil, nil, nil, {_lua_string(head)} .. serial .. {_lua_string(tail)})",
            "end",
        ]
    return "\n".join(lines) + "\n"


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _seconds(value: str, unit: str) -> float:
    return float(value) * UNITS[unit]


def parse_output(text: str) -> WrkResult:
    """Parse ``wrk --latency`` output; raises ValueError when it is not there."""
    rate = RATE.search(text)
    total = TOTAL.search(text)
    percentiles = {m.group(1): _seconds(m.group(2), m.group(3)) for m in PERCENTILE.finditer(text)}
    if not rate or not total or "50" not in percentiles or "99" not in percentiles:
        raise ValueError(f"unrecognised wrk output: {text[:500]!r}")
    sockets = SOCKET_ERRORS.search(text)
    non_2xx = NON_2XX.search(text)
    return WrkResult(
        rps=float(rate.group(1)),
        requests=int(total.group(1)),
        p50=percentiles["50"],
        p99=percentiles["99"],
        errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        bad_status=int(non_2xx.group(1)) if non_2xx else 0,
    )


def run_wrk(host: str, port: int, workload: Workload, connections: int, duration: float) -> WrkResult:
    """One wrk run, one thread (the server needs the other core more than wrk does)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "request.lua"
        script.write_text(lua_script(workload))
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
               "--timeout", "30s", "-s", str(script), f"http://{host}:{port}{workload.path}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    return parse_output(proc.stdout)
