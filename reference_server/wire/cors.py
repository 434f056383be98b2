"""CORS for profiles that claim browser access (``cors: true``): preflight answers and headers on every response.

A few lines of our own instead of flask-cors: the contract needs exactly one policy (any origin, bearer auth, no
cookies), and owning it lets faults break single parts of it (e.g. a preflight that omits Authorization).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from reference_server import faults
from reference_server.context import current_request
from reference_server.context import fault as _fault
from reference_server.wire import headers as wire_headers
from reference_server.wire.errors import ApiError

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
# Authorization is listed by name: a wildcard in Access-Control-Allow-Headers does not cover it (Fetch standard).
BASE_ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept", "OpenAI-Organization", "OpenAI-Project")
MAX_AGE_SECONDS = 600

F = faults.declare
FAULT_PREFLIGHT_AUTH = F("CORS-001", "Preflights go through auth and are answered 401 (with CORS headers).",
                         collateral=("CORS-002", "CORS-003", "CORS-004"))
FAULT_PREFLIGHT_NO_ORIGIN = F("CORS-002", "Preflight responses lack Access-Control-Allow-Origin.")
FAULT_PREFLIGHT_METHODS = F("CORS-003", "Preflight responses allow only GET and OPTIONS.")
FAULT_NO_AUTHORIZATION = F("CORS-004", "Preflight Access-Control-Allow-Headers leaves out Authorization.")
FAULT_ACTUAL_NO_ORIGIN = F("CORS-005", "Successful responses (streams included) lack Access-Control-Allow-Origin.")
FAULT_NO_EXPOSE = F("CORS-006", "Responses carry no Access-Control-Expose-Headers.")
FAULT_ERRORS_NO_ORIGIN = F("CORS-007", "Error responses lack Access-Control-Allow-Origin.")
# What browser code may read: request ids for support tickets, rate-limit state and retry hints.
EXPOSE_HEADERS = (
    "x-request-id",
    "openai-processing-ms",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
EXPOSED = ", ".join(EXPOSE_HEADERS)


def is_preflight() -> bool:
    """A CORS preflight: OPTIONS with an Origin and the method the browser wants to use."""
    req = current_request()
    return (
        req.method == "OPTIONS"
        and "HTTP_ORIGIN" in req.environ
        and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in req.environ
    )


def allow_headers(requested: str | None) -> str:
    """Our fixed list plus whatever extra headers the browser asks for (SDKs send x-stainless-* headers)."""
    names = list(BASE_ALLOW_HEADERS)
    seen = {n.lower() for n in names}
    for name in (requested or "").split(","):
        name = name.strip()
        if name and name.lower() not in seen:
            names.append(name)
            seen.add(name.lower())
    if _fault(FAULT_NO_AUTHORIZATION):
        names = [n for n in names if n.lower() != "authorization"]
    return ", ".join(names)


def preflight_response() -> Response:
    """204 with the Access-Control-Allow-* headers; preflights carry no credentials, so no auth applies."""
    resp = Response(status=204)
    if not _fault(FAULT_PREFLIGHT_NO_ORIGIN):
        resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS" if _fault(FAULT_PREFLIGHT_METHODS) else ALLOW_METHODS
    resp.headers["Access-Control-Allow-Headers"] = allow_headers(
        request.headers.get("Access-Control-Request-Headers")
    )
    resp.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return resp


def add_cors_headers(resp: Response, fault: Callable[[Any], bool]) -> Response:
    """Headers every actual response needs so browser code can read it (errors included); ``fault`` is the app's
    ``ServerConfig.fault``."""
    is_error = resp.status_code >= 400
    pairs = []
    if not fault(FAULT_ERRORS_NO_ORIGIN if is_error else FAULT_ACTUAL_NO_ORIGIN):
        pairs.append(("Access-Control-Allow-Origin", "*"))
    if not fault(FAULT_NO_EXPOSE):
        pairs.append(("Access-Control-Expose-Headers", EXPOSED))
    wire_headers.add("cors", pairs)  # constants: straight to the WSGI server (see wire_headers)
    return resp


def init_app(app: Flask) -> None:
    """Answer preflights before anything else (auth, limits) sees them, and decorate every response.

    Profiles that do not claim browser access get neither hook (whether one does is fixed per app).
    """
    config = app.config["SERVER"]
    if not config.profile.get("cors"):
        return
    fault = config.fault  # bound once: these hooks run on every request

    @app.before_request
    def _preflight():
        if not is_preflight():
            return None
        if fault(FAULT_PREFLIGHT_AUTH):
            raise ApiError(401, "You didn't provide an API key.", code="invalid_api_key")
        return preflight_response()

    @app.after_request
    def _headers(resp: Response) -> Response:
        preflight = is_preflight()
        if preflight and fault(FAULT_PREFLIGHT_AUTH):
            # the 401 from auth still carries the preflight headers, so only CORS-001 is the visible break
            for name, value in preflight_response().headers.items():
                if name.lower().startswith("access-control-"):
                    resp.headers[name] = value
        elif not preflight:
            add_cors_headers(resp, fault)
        return resp
