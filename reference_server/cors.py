"""CORS for profiles that claim browser access (``cors: true``): preflight answers and headers on every response.

A few lines of our own instead of flask-cors: the contract needs exactly one policy (any origin, bearer auth, no
cookies), and owning it lets faults break single parts of it (e.g. a preflight that omits Authorization).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
# Authorization is listed by name: a wildcard in Access-Control-Allow-Headers does not cover it (Fetch standard).
BASE_ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept", "OpenAI-Organization", "OpenAI-Project")
MAX_AGE_SECONDS = 600
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


def _enabled() -> bool:
    return bool(current_app.config["SERVER"].profile.get("cors"))


def _fault(requirement_id: str) -> bool:
    return current_app.config["SERVER"].fault(requirement_id)


def is_preflight() -> bool:
    """A CORS preflight: OPTIONS with an Origin and the method the browser wants to use."""
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def allow_headers(requested: str | None) -> str:
    """Our fixed list plus whatever extra headers the browser asks for (SDKs send x-stainless-* headers)."""
    names = list(BASE_ALLOW_HEADERS)
    if _fault("CORS-002"):
        names.remove("Authorization")
    seen = {n.lower() for n in names}
    for name in (requested or "").split(","):
        name = name.strip()
        if name and name.lower() not in seen and not (_fault("CORS-002") and name.lower() == "authorization"):
            names.append(name)
            seen.add(name.lower())
    return ", ".join(names)


def preflight_response() -> Response:
    """204 with the Access-Control-Allow-* headers; preflights carry no credentials, so no auth applies."""
    resp = Response(status=204)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    resp.headers["Access-Control-Allow-Headers"] = allow_headers(
        request.headers.get("Access-Control-Request-Headers")
    )
    resp.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return resp


def add_cors_headers(resp: Response) -> Response:
    """Headers every actual response needs so browser code can read it (errors included)."""
    if _fault("CORS-001"):
        return resp
    resp.headers["Access-Control-Allow-Origin"] = "*"
    if not _fault("CORS-003"):
        resp.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSE_HEADERS)
    return resp


def init_app(app: Flask) -> None:
    """Answer preflights before anything else (auth, limits) sees them, and decorate every response."""

    @app.before_request
    def _preflight():
        if _enabled() and is_preflight():
            return preflight_response()
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        if _enabled() and not is_preflight():
            add_cors_headers(resp)
        return resp
