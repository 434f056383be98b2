"""The reference server as gunicorn serves it in the benchmark: ``benchmarks.reference_wsgi:app``.

The same ``create_app`` as production, for the profile in ``REFERENCE_SERVER_PROFILE`` (default ``openai``), plus
one benchmark key whose request and token limits are out of reach: a load run sends thousands of requests a
minute, and the documented 60 requests/minute would turn the benchmark into a measurement of 429 answers.
"""

from __future__ import annotations

import os

from benchmarks.workload import BENCH_KEY
from reference_server import ServerConfig, create_app

UNLIMITED = {"role": "benchmark", "requests_per_minute": 10**12, "tokens_per_minute": 10**15}


def build_app():
    """The reference app with the unlimited benchmark key added to the profile's keys."""
    profile = os.environ.get("REFERENCE_SERVER_PROFILE", "openai")
    return create_app(ServerConfig.for_profile(profile, keys={BENCH_KEY: dict(UNLIMITED)}))


app = build_app()
