"""A real ``redis-server`` on a free 127.0.0.1 port with no persistence: what the project's tests and benchmarks
run the Redis state store against (never a fake).

``LocalRedis(binary).start()`` spawns ``redis-server --port N --bind 127.0.0.1 --save '' --appendonly no`` and waits
for PING; ``stop()`` ends that process (by its own handle) and ``start()`` brings it back on the same port. As a
context manager it stops what it started. Nothing here imports a Redis client.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

START_SECONDS = 10.0


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str | None:
    """The ``redis-server`` executable (on PATH, or Debian's /usr/bin/redis-server), None when not installed."""
    return shutil.which("redis-server") or shutil.which("/usr/bin/redis-server")


class LocalRedis:
    """One ``redis-server`` process on ``127.0.0.1:port``."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        """Spawn the server and wait until it answers PING (RuntimeError after ``START_SECONDS``)."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        """End the process this object started (terminate, then kill after 5 s)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def flush(self) -> None:
        """Empty every database (FLUSHALL)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
