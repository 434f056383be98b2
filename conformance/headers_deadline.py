"""A total deadline for the status line and headers of a response, which httpx does not have.

httpx's timeouts are per read: a target that trickles its status line and headers one byte per
(read timeout - epsilon) holds a request for ``len(headers) x timeout`` (a 1 s request took ~22 s against the
hostile "trickle" target). ``HeadersDeadline`` is a timer that shuts the request's socket down when the total
deadline passes first; the client turns the resulting transport error into ``RequestTimedOut``. Once the headers
are in, the body phase enforces the deadline itself between chunks.
"""

from __future__ import annotations

import socket
import threading


class SocketWatch:
    """The sockets a client's connections use, so a deadline can break the one a request is stuck on.

    httpx has no total timeout for the status line and headers: a target that trickles them one byte per
    read-timeout holds a request for ``len(headers) x timeout``. A timer shuts the request's socket down
    instead. New connections report their socket through httpcore's ``trace`` extension; a reused pooled
    connection sends no event, so every socket seen is remembered, and at the deadline every remembered socket
    not carrying an open streamed body is shut (idle pooled ones cost only a reconnect).
    """

    def __init__(self) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self._busy: set[int] = set()
        self._lock = threading.Lock()

    def add(self, sock: socket.socket | None) -> int | None:
        """Remember ``sock``; returns its key (None when the transport has no socket, e.g. MockTransport)."""
        if sock is None:
            return None
        with self._lock:
            for key in [k for k, s in self._sockets.items() if s.fileno() == -1]:
                del self._sockets[key]
            self._sockets[id(sock)] = sock
        return id(sock)

    def hold(self, key: int | None) -> None:
        """Mark a socket as carrying an open body: other requests' deadlines leave it alone."""
        if key is not None:
            self._busy.add(key)

    def release(self, key: int | None) -> None:
        self._busy.discard(key)

    def shut_idle(self) -> None:
        """Shut down every remembered socket that no open body is using."""
        with self._lock:
            victims = [s for k, s in self._sockets.items() if k not in self._busy]
        for sock in victims:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class HeadersDeadline:
    """A timer that breaks the connection when the response headers have not arrived by the total deadline."""

    def __init__(self, watch: SocketWatch, seconds: float) -> None:
        self._watch = watch
        self._lock = threading.Lock()
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict) -> None:
        """httpcore trace hook: remember the socket of a new connection (shut at once if already too late)."""
        if event == "connection.connect_tcp.complete":
            self._watch.add(info["return_value"].get_extra_info("socket"))
            if self.fired:
                self._watch.shut_idle()

    def __enter__(self) -> HeadersDeadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._watch.shut_idle()
