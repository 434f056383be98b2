"""Per-request response headers the server makes itself, handed to the WSGI server without werkzeug's ``Headers``.

Every API response carries up to nine headers computed for that request: ``x-request-id``, six
``x-ratelimit-*`` (or three ``X-RateLimit-*``) and two CORS headers. Added to ``Response.headers``, each is checked for
CR/LF when added and again when werkzeug copies the headers for the WSGI server (``get_wsgi_headers``), about
13,000 CPU instructions per header, a sixth of what the server spends on a request. These values are integers, Go
durations, request ids and constant lists, built here and never taken from a request, so they cannot hold CR/LF; the
WSGI server still validates every header it sends (gunicorn matches each value against its own pattern).

Hooks call :func:`add` with a group name; :class:`Middleware` (wrapping ``app.wsgi_app``) appends the groups to the
header list of ``start_response``, after the response's own headers. A group is replaced, not extended, when its hook
runs again (Flask runs the after_request hooks a second time when it answers an error raised by one of them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from reference_server.context import current_request

ENVIRON_KEY = "reference_server.wire.headers"

Header = tuple[str, str]


def add(group: str, headers: Iterable[Header]) -> None:
    """Send ``headers`` with the current response, as ``group`` (replacing what that group set before)."""
    environ = current_request().environ
    groups = environ.get(ENVIRON_KEY)
    if groups is None:
        groups = environ[ENVIRON_KEY] = {}
    groups[group] = list(headers)


def pending(environ: dict[str, Any]) -> dict[str, list[Header]]:
    """The groups waiting to be sent with this request's response (empty when none); hooks may edit them."""
    return environ.get(ENVIRON_KEY) or {}


class Middleware:
    """WSGI middleware: appends the request's pending groups to the headers the app starts its response with."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        def start(status: str, headers: list[Header], exc_info: Any = None) -> Any:
            groups = environ.pop(ENVIRON_KEY, None)
            if groups:
                headers = [*headers, *(header for group in groups.values() for header in group)]
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
