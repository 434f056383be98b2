"""The OpenAI error envelope, and the handlers that make every client-caused error use it.

Every error a client can cause leaves the server as ``{"error": {"message", "type", "param", "code"}}`` with the
right status; nothing a client sends produces a traceback or a bare HTML page.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, has_app_context, jsonify
from werkzeug.exceptions import HTTPException

from reference_server import faults
from reference_server.context import server_config

log = logging.getLogger(__name__)

F = faults.declare
FAULT_TEXT_TYPE = F("ERRORS-003", "Error responses are sent as text/plain (the body is still the envelope).")
FAULT_UNKNOWN_ROUTE_400 = F("ERRORS-011", "Unknown routes answer 400 instead of 404.")
FAULT_WRONG_METHOD_200 = F("ERRORS-012", "A wrong method on a known route answers 200 with an empty object.",
                           collateral=("ERRORS-013",))
FAULT_NO_ALLOW = F("ERRORS-013", "405 answers carry no Allow header.")
FAULT_TOO_LARGE_400 = F("ERRORS-014", "Oversized bodies answer 400 instead of 413.")
FAULT_BARE_5XX = F("ERRORS-019", "5xx answers carry a bare JSON string instead of the envelope.",
                   collateral=("ERRORS-001", "ERRORS-002"))
FAULT_ODD_TYPE = F("ERRORS-022", 'Every error carries type "error".', collateral=("ERRORS-025",))
FAULT_5XX_TYPE = F("ERRORS-025", "5xx errors carry the default type even where the profile's doc names another.")

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


def _fault(fault: faults.Fault) -> bool:
    return has_app_context() and server_config().fault(fault)


def error_response(err: ApiError) -> Response:
    """Render an ApiError as a JSON response with the envelope and its headers."""
    if not err.type_given and err.status >= 500 and has_app_context():
        documented = (server_config().profile.get("errors.types") or {}).get(err.status)
        if isinstance(documented, str) and not _fault(FAULT_5XX_TYPE):
            err.type = documented  # UnifiedAI: "provider_error 502 Error from the upstream provider API"
    if _fault(FAULT_ODD_TYPE):
        err.type = "error"
    resp = jsonify(err.message if err.status >= 500 and _fault(FAULT_BARE_5XX) else err.body())
    resp.status_code = err.status
    if _fault(FAULT_TEXT_TYPE):
        resp.mimetype = "text/plain"
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


def init_app(app: Flask) -> None:
    """Install handlers so that routing errors, oversize bodies and crashes all answer with the envelope."""

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 405 and _fault(FAULT_WRONG_METHOD_200):
            return jsonify({})
        if status == 404 and _fault(FAULT_UNKNOWN_ROUTE_400):
            status = 400
        if status == 413 and _fault(FAULT_TOO_LARGE_400):
            status = 400
        messages = {
            404: "Unknown request URL. Please check the URL and method.",
            405: "Method not allowed for this URL.",
            413: "Request body too large.",
        }
        err = ApiError(status, messages.get(status, exc.description or exc.name), code=None)
        resp = error_response(err)
        if status == 405 and getattr(exc, "valid_methods", None) and not _fault(FAULT_NO_ALLOW):
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _crash(exc: Exception):  # pragma: no cover - a crash is a bug; still answer with the envelope
        log.exception("unhandled error")
        return error_response(ApiError(500, "The server had an error while processing your request."))
