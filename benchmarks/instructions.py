"""CPU instructions per request, counted by callgrind: a figure the machine's other load cannot move.

Requests per second on a shared 2-core machine move by a fifth from one round to the next; the instructions a
gunicorn worker executes for the same request do not. Each app runs under the production gunicorn configuration
inside ``valgrind --tool=callgrind`` (which follows the fork into the worker); after a warm-up the worker's counters
are zeroed with ``callgrind_control``, a fixed number of requests is sent one at a time on a keep-alive connection,
and the counters are dumped and divided by that number. Needs valgrind (``apt-get install valgrind``); the section
is skipped without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import loadgen
from benchmarks.servers import GunicornServer
from benchmarks.workload import Workload

REQUESTS = 300
WARM_UP = 50
# Under callgrind the worker runs some 50 times slower: start-up takes seconds, each request tens of milliseconds.
START_TIMEOUT = 240.0
REQUEST_TIMEOUT = 60.0
CONTROL_TIMEOUT = 60.0
_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def available() -> bool:
    """True when valgrind and callgrind_control are installed."""
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def dump_total(text: str) -> int:
    """The instruction total of one callgrind dump (its ``summary:`` or ``totals:`` line); ValueError without."""
    totals = [int(n) for n in _TOTAL.findall(text)]
    if not totals:
        raise ValueError("not a callgrind dump: no summary or totals line")
    return max(totals)


@dataclass
class CallgrindServer(GunicornServer):
    """``GunicornServer`` run inside callgrind; its dumps go to ``out_dir`` as ``callgrind.<pid>[.<n>]``."""

    out_dir: Path = Path(".")

    def command(self) -> list[str]:
        return ["valgrind", "--tool=callgrind", "--trace-children=yes",
                f"--callgrind-out-file={self.out_dir}/callgrind.%p", *super().command()]


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True,
                   timeout=CONTROL_TIMEOUT)


def _send(port: int, workload: Workload, count: int) -> int:
    """Send ``count`` requests one at a time on one keep-alive connection (for a ``first_seen`` workload, each with a
    body never sent before); returns how many."""
    source = workload.request_source("127.0.0.1", port)
    requests = [source() if callable(source) else source for _ in range(max(1, count))]
    statuses = {status for status, _, _ in loadgen.sequential("127.0.0.1", port, requests, timeout=REQUEST_TIMEOUT)}
    if statuses != {200}:
        raise RuntimeError(f"callgrind run answered {sorted(statuses)}, not only 200")
    return len(requests)


def instructions_per_request(server: CallgrindServer, workload: Workload, requests: int = REQUESTS,
                             warm_up: int = WARM_UP) -> float:
    """Instructions the (single) worker of a started ``server`` executes per ``workload`` request."""
    worker = server.worker_pids()[0]
    _send(server.port, workload, warm_up)
    _control("--zero", worker)
    sent = _send(server.port, workload, requests)
    before = set(server.out_dir.glob(f"callgrind.{worker}.*"))
    _control("--dump", worker)
    dumps = sorted(set(server.out_dir.glob(f"callgrind.{worker}.*")) - before)
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for worker {worker}")
    return dump_total(dumps[-1].read_text(errors="replace")) / sent


def measure(apps: dict[str, tuple[str, dict[str, str]]], config, workload: Workload,
            requests: int = REQUESTS, warm_up: int = WARM_UP) -> dict[str, float]:
    """``{name: instructions per request}`` for each ``name: (wsgi app, environment)``, one worker each."""
    return {name: counts[workload.name]
            for name, counts in measure_workloads(apps, config, (workload,), requests, warm_up).items()}


def measure_workloads(apps: dict[str, tuple[str, dict[str, str]]], config, workloads: tuple[Workload, ...],
                      requests: int = REQUESTS, warm_up: int = WARM_UP) -> dict[str, dict[str, float]]:
    """``{name: {workload: instructions per request}}``: each app started once under callgrind, its workloads
    counted one after the other (each after its own warm-up)."""
    single = replace(config, workers=1)
    figures: dict[str, dict[str, float]] = {}
    for name, (app, env) in apps.items():
        with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp, \
                CallgrindServer(app, single, env=env, out_dir=Path(tmp), start_timeout=START_TIMEOUT) as server:
            figures[name] = {w.name: instructions_per_request(server, w, requests, warm_up) for w in workloads}
    return figures
