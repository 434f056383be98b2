"""Runner for the relay's suite matrix: the conformance suite itself, in sandwich mode, through a reference relay.

One in-process ``pytest.main`` per relay (faults, variants): ``--target-url <relay> --upstream <reference server>``
(or ``--upstream-listen``, where the suite stops its own upstream for UPSTREAM-FAILURES-007), selecting the transit
requirements only. Verdicts come from the run's ``results.json``, as for the server's matrix (tests/proof/matrix.py,
whose process-wide speed-ups this reuses).

The profile is ``openai`` with a documented upstream timeout of 1 s (``timeout_profile``): UPSTREAM-FAILURES-006
SKIPs without one, so its fault could not be proven otherwise; the relay reads the same file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import pytest

import gateway_spec
from conformance import results_schema
from conformance.embedded import UPSTREAM_KEY, upstream_server
from reference_relay import RelayConfig, create_relay_app
from reference_relay.serving import RelayThread
from tests.proof.matrix import _QUIET, _forget_suite_modules, _reuse_ssl_context

CLIENT_KEY = "sk-conformance-test"  # the profile's test key: the relay serves it
TRANSIT_GLOBS = ("RELAY-*", "UPSTREAM-FAILURES-*", "DISCLOSURE-*")
BROKEN = ("FAIL", "WARN", "ERROR")  # a transit requirement judged broken (WARN: a SHOULD), or a harness error
TIMEOUT_S = 1  # the documented upstream timeout of the matrix's profile


def timeout_profile(directory: Path) -> Path:
    """``openai`` with ``timeouts.upstream_seconds: 1``, as a profile file."""
    raw = copy.deepcopy(gateway_spec.load_yaml(gateway_spec.spec_dir() / "profiles" / "openai.yaml"))  # cached
    raw["timeouts"] = {**(raw.get("timeouts") or {}), "upstream_seconds": TIMEOUT_S}
    path = directory / "openai-timeout.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")  # JSON is YAML
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_upstream():
    """The session's reference server upstream (on a free port), its quota large enough for every row."""
    server = upstream_server("127.0.0.1:0")
    server.keys["undefined"] = dict(server.keys[UPSTREAM_KEY])  # the 'Bearer undefined' fault then reaches the app
    server.start()
    return server


def run_row(profile: Path, report_dir: Path, *, upstream_url: str | None = None, faults=(), variants=(),
            extra: tuple[str, ...] = (), requirements: tuple[str, ...] = TRANSIT_GLOBS) -> tuple[dict[str, str], int]:
    """The verdicts of one suite run through a relay with ``faults``/``variants``, selecting ``requirements``
    (``--gw-requirement`` globs; the transit ones by default); ``upstream_url`` None: the suite starts its own
    upstream (``--upstream-listen``) on a free port. (verdicts, exit code)."""
    listen = None if upstream_url else f"127.0.0.1:{free_port()}"
    relay = RelayThread(create_relay_app(RelayConfig.for_profile(
        str(profile), upstream_url or f"http://{listen}", upstream_key=UPSTREAM_KEY, faults=faults,
        variants=variants)))
    relay.start()
    try:
        _reuse_ssl_context()
        args = ["--pyargs", "conformance.suite", "--gw-profile", str(profile), "--target-url", relay.url,
                "--gw-api-key", CLIENT_KEY, "--gw-report-dir", str(report_dir), *_QUIET, *extra]
        args += ["--upstream", upstream_url] if upstream_url else ["--upstream-listen", listen]
        for glob in requirements:
            args += ["--gw-requirement", glob]
        return _suite(args, report_dir)
    finally:
        relay.stop()


def replay_row(profile: Path, recording: Path, report_dir: Path, *,
               requirements: tuple[str, ...] = TRANSIT_GLOBS) -> tuple[dict[str, str], int]:
    """The verdicts of ``--gw-replay recording`` (a ``run_row``'s report directory): nothing is sent."""
    args = ["--pyargs", "conformance.suite", "--gw-profile", str(profile), "--gw-replay", str(recording),
            "--gw-api-key", CLIENT_KEY, "--gw-report-dir", str(report_dir), *_QUIET]
    for glob in requirements:
        args += ["--gw-requirement", glob]
    return _suite(args, report_dir)


def _suite(args: list[str], report_dir: Path) -> tuple[dict[str, str], int]:
    results = report_dir / "results.json"
    results.unlink(missing_ok=True)
    _forget_suite_modules()
    with contextlib.redirect_stdout(io.StringIO()):
        code = int(pytest.main(args))
    if not results.is_file():
        raise RuntimeError(f"suite run wrote no results.json (exit {code}): pytest {' '.join(args)}")
    data = json.loads(results.read_text(encoding="utf-8"))
    results_schema.validate(data)
    return {rid: entry["verdict"] for rid, entry in data["requirements"].items()}, code


def broken(verdicts: dict[str, str]) -> dict[str, str]:
    return {rid: v for rid, v in verdicts.items() if v in BROKEN}
