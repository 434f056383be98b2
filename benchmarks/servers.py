"""Start and stop gunicorn on a loopback port, and read its workers' resident memory from /proc.

Both apps run under the same configuration: the reference server's ``gunicorn_conf.py`` when it exists (so the
benchmark measures what production runs), with bind, workers, worker class and threads given on the command line,
which gunicorn lets override the config file.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.workload import BENCH_KEY

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "reference_server" / "gunicorn_conf.py"
BARE_APP = "benchmarks.bare_app:app"
REFERENCE_APP = "reference_server.wsgi:app"
# One key whose request and token limits are out of reach: a load run sends thousands of requests a minute, and the
# profile's documented 60 requests/minute would turn the benchmark into a measurement of 429 answers.
UNLIMITED_KEY_SETTINGS = {"role": "benchmark", "requests_per_minute": 10**12, "tokens_per_minute": 10**15}
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class GunicornConfig:
    """What both apps share: process model and concurrency."""

    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 16

    def args(self) -> list[str]:
        # --threads always: gunicorn quietly turns a sync worker with threads > 1 (from the config file) into gthread.
        threads = self.threads if self.worker_class == "gthread" else 1
        return ["--workers", str(self.workers), "--worker-class", self.worker_class, "--threads", str(threads)]


def reference_env(profile: str) -> dict[str, str]:
    """Environment for ``reference_server.wsgi``: the profile, plus the unlimited benchmark key."""
    keys = json.dumps({BENCH_KEY: UNLIMITED_KEY_SETTINGS})
    return {"REFERENCE_SERVER_PROFILE": profile, "REFERENCE_SERVER_KEYS": keys}


def production_config() -> GunicornConfig:
    """Workers, worker class and threads of the reference server's gunicorn_conf.py (defaults when absent)."""
    if not GUNICORN_CONF.exists():
        return GunicornConfig()
    settings = runpy.run_path(str(GUNICORN_CONF))
    return GunicornConfig(
        workers=int(settings.get("workers", GunicornConfig.workers)),
        worker_class=str(settings.get("worker_class", "sync")).rsplit(".", 1)[-1].lower().removesuffix("worker"),
        threads=int(settings.get("threads", GunicornConfig.threads)),
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the benchmark only ever listens on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GunicornServer:
    """One gunicorn master serving ``app`` on ``127.0.0.1:port``; use as a context manager."""

    app: str
    config: GunicornConfig
    env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen | None = None
    start_timeout: float = START_TIMEOUT

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "gunicorn"]
        if GUNICORN_CONF.exists():
            cmd += ["-c", str(GUNICORN_CONF)]
        # Only the bind is forced; logging and timeouts stay as production has them (stdout goes to /dev/null).
        cmd += ["--bind", f"{self.host}:{self.port}"]
        return cmd + self.config.args() + [self.app]

    def __enter__(self) -> GunicornServer:
        self.port = self.port or free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self.process = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        url = f"http://{self.host}:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.process.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200 and len(self.worker_pids()) >= self.config.workers:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer {url} within {self.start_timeout} s")

    def worker_pids(self) -> list[int]:
        """PIDs of the master's worker processes."""
        return child_pids(self.process.pid) if self.process else []

    def worker_rss_mib(self) -> list[float]:
        """Resident set size of each worker, in MiB."""
        return [rss for rss in (vm_rss_mib(pid) for pid in self.worker_pids()) if rss is not None]

    def stop(self) -> None:
        """SIGTERM the master (graceful), SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc/<pid>/stat (field 4 is the parent PID)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is parenthesised and may hold spaces: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def vm_rss_mib(pid: int) -> float | None:
    """VmRSS of ``pid`` from /proc/<pid>/status in MiB, None when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None
