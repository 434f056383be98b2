"""CORS for profiles that claim browser access (``cors: true``): preflight answers and headers on every response.

A few lines of our own instead of flask-cors: the contract needs exactly one policy (any origin, bearer auth, no
cookies), and owning it lets faults break single parts of it (e.g. a preflight that omits Authorization): the
faults are transforms at the ``CORS_PREFLIGHT`` and ``CORS_HEADERS`` seams (faults/cors.py).
"""

from __future__ import annotations

from flask import Request, Response

from reference_server.config import ServerConfig
from reference_server.context import RequestContext
from reference_server.faults import seams
from reference_server.wire.headers import ReferenceResponse

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
EXPOSED = ", ".join(EXPOSE_HEADERS)


def is_preflight(req: Request) -> bool:
    """A CORS preflight: OPTIONS with an Origin and the method the browser wants to use."""
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
    return ", ".join(names)


def preflight_response(req: Request) -> Response:
    """204 with the Access-Control-Allow-* headers; preflights carry no credentials, so no auth applies."""
    resp = Response(status=204)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    resp.headers["Access-Control-Allow-Headers"] = allow_headers(
        req.headers.get("Access-Control-Request-Headers")
    )
    resp.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return resp


def preflight(config: ServerConfig, ctx: RequestContext) -> Response | None:
    """Before step (profiles that claim browser access): answer a preflight before anything else (auth, limits)
    sees it, through the ``CORS_PREFLIGHT`` seam."""
    req = ctx.request
    if not is_preflight(req):
        return None
    return seams.CORS_PREFLIGHT(config, preflight_response(req))


def add_cors_headers(config: ServerConfig, ctx: RequestContext, resp: ReferenceResponse) -> ReferenceResponse:
    """After step (profiles that claim browser access): the headers every actual response needs so browser code
    can read it (errors included), through the ``CORS_HEADERS`` seam."""
    if is_preflight(ctx.request):
        return resp
    pairs = seams.CORS_HEADERS(config, [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSED)],
                               resp)
    resp.send("cors", pairs)  # constants: straight to the WSGI server (see wire/headers.py)
    return resp
