"""The embedded reference server: started when no ``--target-url`` is given.

This is the one module of ``conformance`` allowed to import ``reference_server`` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import re
import threading
from typing import Any


def _quiet_handler() -> type:
    """A request handler without access log: the client's transcripts already record every exchange, and the log
    would be noise. Built on first use: werkzeug's server is no import of a pytest run that never starts one."""
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:
            pass

    return QuietHandler


class EmbeddedServer:
    """The reference server for one profile on a free 127.0.0.1 port, served from a daemon thread."""

    def __init__(self, profile: str, faults: tuple[str, ...] = (), variants: tuple[str, ...] = (),
                 trace_faults: bool = False, *, host: str = "127.0.0.1", port: int = 0,
                 keys: dict[str, dict[str, Any]] | None = None) -> None:
        self.profile, self.faults, self.variants = profile, tuple(faults), tuple(variants)
        self.trace_faults = trace_faults
        self.host, self.port, self.keys = host, port, dict(keys or {})
        self.fault_trace = None  # with trace_faults: the server's FaultTrace, once started
        self._app = None  # the reference server's WSGI app, built once (its state survives pause/resume)
        self._server = None  # werkzeug's BaseWSGIServer, once started
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded server not started")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self._server.server_port}"

    def start(self) -> str:
        """Build the app and start serving; returns the base URL."""
        from reference_server import ServerConfig, create_app  # only here: keep the import one-way elsewhere

        config = ServerConfig.for_profile(self.profile, faults=self.faults, variants=self.variants,
                                          trace_faults=self.trace_faults)
        self.fault_trace = config.fault_trace
        config.keys.update(burst_keys(config.profile))
        config.keys.update(self.keys)
        self._app = create_app(config)
        self._serve(self.port)
        return self.url

    def _serve(self, port: int) -> None:
        from werkzeug.serving import make_server

        # threaded: streaming checks and concurrent checks (rate limits) need more than one request in flight.
        self._server = make_server(self.host, port, self._app, threaded=True, request_handler=_quiet_handler())
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="conformance-embedded-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop listening (connections to the port are refused) but keep the app and its state."""
        self.stop()

    def resume(self) -> None:
        """Listen again on the same port, with the same app and state."""
        if self._server is None:
            self._serve(self.port)

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# The 429 burst's key on the embedded server (test_rate_limits.py): a quota of its own, so the burst costs
# BURST_LIMIT + 1 requests (against openai's documented 600 a minute it would cost 605) and the run's key keeps
# its whole quota for the other checks.
BURST_LIMIT = 3
_BURST_TAIL = "b0057"  # hex digits, so a key pattern of hex characters still matches


def burst_key(profile: Any) -> str | None:
    """The key the embedded server limits to ``BURST_LIMIT`` requests a minute for ``profile`` (a
    ``gateway_spec.Profile``): derived from its test key so that it matches ``auth.key_pattern``; ``None`` when no
    candidate does (the burst then has no key of its own)."""
    base = profile.test_key or "conformance"
    pattern = profile.get("auth.key_pattern")
    taken = {base, *(profile.get("auth.extra_test_keys") or {}).values()}
    for candidate in (f"{base}-burst", base[:-len(_BURST_TAIL)] + _BURST_TAIL):
        if candidate not in taken and (not pattern or re.fullmatch(pattern, candidate)):
            return candidate
    return None


def burst_keys(profile: Any) -> dict[str, dict[str, Any]]:
    """``ServerConfig.keys`` entries that seed the burst key (none when ``burst_key`` finds no valid one)."""
    key = burst_key(profile)
    # tier "burst": a test key's "tier-<name>" part (unillm's) must not name the tier in the 429's message
    return {key: {"role": "burst", "tier": "burst", "requests_per_minute": BURST_LIMIT}} if key else {}


# --upstream-listen: the reference server the suite starts as a gateway's upstream. A gateway in front of it uses
# UPSTREAM_KEY (or the profile's test key) as its own upstream key. Its quota is the profile's (600 requests a
# minute, several runs' worth): the rate-limit headers a gateway relays then still match the profile's numbers.
UPSTREAM_PROFILE = "openai"
UPSTREAM_KEY = "sk-upstream-conformance"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``:PORT`` binds 127.0.0.1); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def upstream_server(listen: str) -> EmbeddedServer:
    """The reference server ``--upstream-listen HOST:PORT`` starts (not yet started)."""
    host, port = parse_listen(listen)
    return EmbeddedServer(UPSTREAM_PROFILE, host=host, port=port, keys={UPSTREAM_KEY: {"role": "test"}})
