"""CORS for profiles that claim browser access (``cors: true``): the relay answers preflights itself and lets
browser code read its answers, as the gateway it stands for would (one policy: any origin, bearer auth)."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOW_METHODS = "GET, POST, OPTIONS"
# Authorization by name: a wildcard in Access-Control-Allow-Headers never covers it (Fetch standard).
ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept", "OpenAI-Organization", "OpenAI-Project")
EXPOSE = ", ".join(("x-request-id", "retry-after", "retry-after-ms", "x-ratelimit-limit-requests",
                    "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
                    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "X-RateLimit-Limit",
                    "X-RateLimit-Remaining", "X-RateLimit-Reset"))


def _preflight() -> Response | None:
    if request.method != "OPTIONS" or "Origin" not in request.headers or \
            "Access-Control-Request-Method" not in request.headers:
        return None
    names = list(ALLOW_HEADERS)
    for name in (request.headers.get("Access-Control-Request-Headers") or "").split(","):
        if name.strip() and name.strip().lower() not in {n.lower() for n in names}:
            names.append(name.strip())
    resp = Response(status=204)
    resp.headers.update({"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": ALLOW_METHODS,
                         "Access-Control-Allow-Headers": ", ".join(names), "Access-Control-Max-Age": "600"})
    return resp


def _decorate(resp: Response) -> Response:
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Expose-Headers"] = EXPOSE
    return resp


def init_app(app: Flask, enabled: bool) -> None:
    if enabled:
        app.before_request(_preflight)
        app.after_request(_decorate)
