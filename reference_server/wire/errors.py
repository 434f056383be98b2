"""The OpenAI error envelope, and the handlers that make every client-caused error use it.

Every error a client can cause leaves the server as ``{"error": {"message", "type", "param", "code"}}`` with the
right status; nothing a client sends produces a traceback or a bare HTML page.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from reference_server.context import server_config
from reference_server.faults import seams
from reference_server.wire.headers import json_response

log = logging.getLogger(__name__)

# Default error `type` per status, following OpenAI's observed vocabulary.
DEFAULT_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ApiError(Exception):
    """Raise anywhere in a request to answer with the error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or DEFAULT_TYPES.get(status, "api_error")
        self.type_given = type is not None  # else the profile's documented type for the status wins (errors.types)
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_response(err: ApiError) -> Response:
    """Render an ApiError as a JSON response with the envelope and its headers (through the ``ERROR`` and
    ``ERROR_RESPONSE`` seams: faults/errors.py)."""
    config = server_config()
    if not err.type_given and err.status >= 500:
        documented = (config.profile.get("errors.types") or {}).get(err.status)
        if isinstance(documented, str):
            err.type = documented  # UnifiedAI: "provider_error 502 Error from the upstream provider API"
    err = seams.ERROR(config, err)
    resp = json_response(err.body(), err.status)
    for k, v in err.headers.items():
        resp.headers[k] = v
    return seams.ERROR_RESPONSE(config, resp, err)


HTTP_MESSAGES = {
    404: "Unknown request URL. Please check the URL and method.",
    405: "Method not allowed for this URL.",
    413: "Request body too large.",
}


def http_error_response(exc: HTTPException) -> Response:
    """A routing or protocol error werkzeug raised (unknown route, wrong method, oversized body) in the envelope,
    with ``Allow`` on a 405; through the ``HTTP_ERROR`` seam."""
    status = exc.code or 500
    resp = error_response(ApiError(status, HTTP_MESSAGES.get(status, exc.description or exc.name)))
    if status == 405 and getattr(exc, "valid_methods", None):
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return seams.HTTP_ERROR(server_config(), resp, exc)


def init_app(app: Flask) -> None:
    """Install handlers so that routing errors, oversize bodies and crashes all answer with the envelope."""
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(Exception)
    def _crash(exc: Exception):  # pragma: no cover - a crash is a bug; still answer with the envelope
        log.exception("unhandled error")
        return error_response(ApiError(500, "The server had an error while processing your request."))
