"""Faults of error rendering: the ``ApiError`` about to become the envelope (``ERROR`` seam), the rendered error
response (``ERROR_RESPONSE``), and the answer to a routing or protocol error werkzeug raised (``HTTP_ERROR``).

``wire/errors.py`` renders the correct envelope; these transforms break it one requirement at a time.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from reference_server import faults
from reference_server.faults.seams import ERROR, ERROR_RESPONSE, HTTP_ERROR
from reference_server.wire.headers import json_response

if TYPE_CHECKING:
    from flask import Response
    from werkzeug.exceptions import HTTPException

    from reference_server.wire.errors import ApiError

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
FAULT_UPSTREAM_TIMEOUT_502 = F("ERRORS-018", "Upstream timeouts answer 502 instead of 504.")
FAULT_5XX_TYPE = F("ERRORS-025", "5xx errors carry the default type even where the profile's doc names another.")


@ERROR.transform(FAULT_UPSTREAM_TIMEOUT_502, lambda err: err.status == 504 and err.code == "upstream_timeout")
def _upstream_timeout_502(err: ApiError) -> ApiError:
    from reference_server.wire.errors import DEFAULT_TYPES

    err.status = 502
    if not err.type_given:
        err.type = DEFAULT_TYPES.get(502, "api_error")
    return err


@ERROR.transform(FAULT_ODD_TYPE)
def _odd_type(err: ApiError) -> ApiError:
    err.type = "error"
    return err


@ERROR.transform(FAULT_5XX_TYPE, lambda err: err.status >= 500 and not err.type_given)
def _default_5xx_type(err: ApiError) -> ApiError:
    from reference_server.wire.errors import DEFAULT_TYPES

    err.type = DEFAULT_TYPES.get(err.status, "api_error")
    return err


@ERROR_RESPONSE.transform(FAULT_BARE_5XX, lambda resp, err: err.status >= 500)
def _bare_5xx(resp: Response, err: ApiError) -> Response:
    resp.set_data(json.dumps(err.message) + "\n")
    return resp


@ERROR_RESPONSE.transform(FAULT_TEXT_TYPE)
def _text_type(resp: Response, err: ApiError) -> Response:
    resp.mimetype = "text/plain"
    return resp


@HTTP_ERROR.transform(FAULT_WRONG_METHOD_200, lambda resp, exc: exc.code == 405)
def _wrong_method_200(resp: Response, exc: HTTPException) -> Response:
    return json_response({})


@HTTP_ERROR.transform(FAULT_UNKNOWN_ROUTE_400, lambda resp, exc: exc.code == 404)
def _unknown_route_400(resp: Response, exc: HTTPException) -> Response:
    resp.status_code = 400  # the envelope's type is the same for 400 and 404 (invalid_request_error)
    return resp


@HTTP_ERROR.transform(FAULT_TOO_LARGE_400, lambda resp, exc: exc.code == 413)
def _too_large_400(resp: Response, exc: HTTPException) -> Response:
    resp.status_code = 400  # the same type as 413's
    return resp


@HTTP_ERROR.transform(FAULT_NO_ALLOW, lambda resp, exc: exc.code == 405 and bool(getattr(exc, "valid_methods", None)))
def _no_allow(resp: Response, exc: HTTPException) -> Response:
    resp.headers.pop("Allow", None)
    return resp
