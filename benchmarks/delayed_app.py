"""The reference server behind a fixed answer latency: what a gateway whose model takes ``BENCH_LATENCY_MS``
milliseconds per request looks like to the suite (``gunicorn benchmarks.delayed_app:app``).

A WSGI middleware, so the latency is the same for every route, streamed or not (the wait comes before the status
line, as a model's time to first token does), and the reference server itself is unchanged. Health checks are
not delayed: the benchmark's start-up probe uses them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

LATENCY_ENV = "BENCH_LATENCY_MS"


class Delayed:
    """Waits ``latency_ms`` before handing each request (but ``/healthz``) to ``app``."""

    def __init__(self, app: Callable, latency_ms: float) -> None:
        self.app, self.latency_s = app, latency_ms / 1000

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if self.latency_s > 0 and environ.get("PATH_INFO") != "/healthz":
            time.sleep(self.latency_s)
        return self.app(environ, start_response)


def _build() -> Delayed:
    from reference_server.wsgi import app as reference

    return Delayed(reference, float(os.environ.get(LATENCY_ENV, "0")))


app = _build()
