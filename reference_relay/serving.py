"""Serving the relay with werkzeug's threaded server, under the relay's own ``Server`` banner.

werkzeug's handler always sends ``Server: Werkzeug/x Python/y``, the same banner as a reference server upstream
run the same way; a relay that showed it could not be told apart from one leaking its upstream's banner.
"""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

SERVER_NAME = "reference-relay"


class RelayRequestHandler(WSGIRequestHandler):
    def version_string(self) -> str:
        return SERVER_NAME


class QuietRelayRequestHandler(RelayRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


def make_relay_server(app, host: str, port: int, quiet: bool = False) -> BaseWSGIServer:
    handler = QuietRelayRequestHandler if quiet else RelayRequestHandler
    return make_server(host, port, app, threaded=True, request_handler=handler)


class RelayThread:
    """The relay on a loopback port in a daemon thread (tests, embedded runs)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_relay_server(app, host, port, quiet=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="reference-relay", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> str:
        self.thread.start()
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
