"""pytest11 plugin ``llm_mock``: the ``llm_mock`` fixture and the ``llm_mock`` marker, nothing else.

Pick the profile with ``@pytest.mark.llm_mock(profile="unit23")`` on a test, class or module, or with
``@pytest.mark.parametrize("llm_mock", ["openai", "unit23"], indirect=True)``; the default is ``openai``.
Loading the plugin imports nothing but this module and ``llm_mock`` (stdlib only): the reference server is built
on the first test that asks for the fixture.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from llm_mock import LlmMock

DEFAULT_PROFILE = "openai"
_SERVERS = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "llm_mock(profile='openai'): the gateway profile the llm_mock fixture's reference server serves")


class _Server:
    """The reference server for one profile on a free 127.0.0.1 port, served from a daemon thread."""

    def __init__(self, profile: str) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        from reference_server import ServerConfig, create_app

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.app = create_app(ServerConfig.for_profile(profile))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=Quiet)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"llm-mock-{profile}", daemon=True)
        self.thread.start()
        self.handle = LlmMock(f"http://127.0.0.1:{self.server.server_port}", self.app.config["SERVER"].profile)

    def reset(self) -> None:
        self.app.test_client().post("/_mock/reset")  # in process: the same endpoint, no socket

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _profile(request: pytest.FixtureRequest) -> str:
    if getattr(request, "param", None):
        return str(request.param)
    marker = request.node.get_closest_marker("llm_mock")
    if marker is not None:
        return str(marker.kwargs.get("profile") or (marker.args[0] if marker.args else DEFAULT_PROFILE))
    return DEFAULT_PROFILE


@pytest.fixture
def llm_mock(request: pytest.FixtureRequest) -> LlmMock:
    """A reference server for the test's profile (session-wide), reset for this test: rules, counters, journal."""
    servers = request.config.stash.setdefault(_SERVERS, {})
    name = _profile(request)
    server = servers.get(name)
    if server is None:
        server = servers[name] = _Server(name)
        request.config.add_cleanup(server.stop)
    server.reset()
    return server.handle
