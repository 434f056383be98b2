"""Per-request response headers the server makes itself, handed to the WSGI server without werkzeug's ``Headers``.

Every API response carries up to nine headers computed for that request: ``x-request-id``, six
``x-ratelimit-*`` (or three ``X-RateLimit-*``) and two CORS headers. Added to ``Response.headers``, each is checked for
CR/LF when added and again when werkzeug copies the headers for the WSGI server (``get_wsgi_headers``), about
13,000 CPU instructions per header, a sixth of what the server spends on a request. These values are integers, Go
durations, request ids and constant lists, built here and never taken from a request, so they cannot hold CR/LF; the
WSGI server still validates every header it sends (gunicorn matches each value against its own pattern).

Hooks call :meth:`ReferenceResponse.send` with a group name; the response appends the groups to the header list it
hands to ``start_response``, after its own headers. A group is replaced, not extended, when its hook runs again.
Every response the app sends is a ``ReferenceResponse``: it is the app's ``response_class``, and Flask turns any
other werkzeug response a view returns into it (``force_type``), which keeps the object and sets no attribute: hence
the class-level ``None`` default of ``sent_groups``.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from reference_server.wire.json_text import compact_encoder

Header = tuple[str, str]
# What ``flask.jsonify`` produces for this app (compact, keys in insertion order, ASCII), without its per-call
# argument handling and app look-ups.
_JSON = compact_encoder(sort_keys=False, ensure_ascii=True)


class ReferenceResponse(Response):
    """Flask's response plus groups of server-made headers that go to the WSGI server as they are."""

    sent_groups: dict[str, list[Header]] | None = None

    def send(self, group: str, headers: list[Header]) -> None:
        """Send ``headers`` with this response, as ``group`` (replacing what that group set before)."""
        groups = self.sent_groups
        if groups is None:
            groups = self.sent_groups = {}
        groups[group] = headers

    def get_wsgi_response(self, environ: dict[str, Any]) -> tuple[Any, str, list[Header]]:
        """werkzeug's status, headers and body for the WSGI server, the sent groups after the headers."""
        headers = self.plain_wsgi_headers()
        if headers is None:
            app_iter, status, headers = super().get_wsgi_response(environ)
        else:
            app_iter, status = self.get_app_iter(environ), self.status
        groups = self.sent_groups
        if groups:
            for group in groups.values():  # ``headers`` is a new list either way: extended in place, in C
                headers.extend(group)
        return app_iter, status, headers

    def plain_wsgi_headers(self) -> list[Header] | None:
        """The response's own headers as werkzeug's ``get_wsgi_headers`` would give them, when it would change
        nothing; None when it would (a Location or Content-Location to make absolute, a status whose body headers
        go, a Content-Length to work out).

        werkzeug copies the headers into a new ``Headers`` to fix them up, checking every value for CR/LF once more
        (they were checked when set): on an ordinary answer a tenth of what the server spends outside its view.
        """
        status = self.status_code
        if status < 200 or status == 204 or status == 304:
            return None
        pairs = list(self.headers)
        has_length = False
        for name, _ in pairs:
            lowered = name.lower()
            if lowered == "content-length":
                has_length = True
            elif lowered == "location" or lowered == "content-location":
                return None
        if not has_length and self.automatically_set_content_length and self.is_sequence:
            return None
        return pairs


def json_response(value: Any, status: int = 200) -> ReferenceResponse:
    """``value`` as a JSON ``ReferenceResponse``: the bytes ``flask.jsonify`` gives in this app (compact, newline at
    the end), for the hot path of the chat surface."""
    # The body as bytes and the exact Content-Type: werkzeug neither encodes the text nor works the type out from
    # a mimetype (``get_content_type("application/json")`` is "application/json").
    return ReferenceResponse((_JSON(value) + "\n").encode(), status=status, content_type="application/json")
