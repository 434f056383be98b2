"""Faults of CORS (profiles with ``cors: true``): the preflight answer (``CORS_PREFLIGHT`` seam) and the CORS
headers of actual responses (``CORS_HEADERS``). ``wire/cors.py`` builds the correct policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_server import faults
from reference_server.faults.seams import CORS_HEADERS, CORS_PREFLIGHT
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from flask import Response

    from reference_server.wire.headers import Header, ReferenceResponse

F = faults.declare
FAULT_PREFLIGHT_AUTH = F("CORS-001", "Preflights go through auth and are answered 401 (with CORS headers).",
                         collateral=("CORS-002", "CORS-003", "CORS-004"))
FAULT_PREFLIGHT_NO_ORIGIN = F("CORS-002", "Preflight responses lack Access-Control-Allow-Origin.")
FAULT_PREFLIGHT_METHODS = F("CORS-003", "Preflight responses allow only GET and OPTIONS.")
FAULT_NO_AUTHORIZATION = F("CORS-004", "Preflight Access-Control-Allow-Headers leaves out Authorization.")
FAULT_ACTUAL_NO_ORIGIN = F("CORS-005", "Successful responses (streams included) lack Access-Control-Allow-Origin.")
FAULT_NO_EXPOSE = F("CORS-006", "Responses carry no Access-Control-Expose-Headers.")
FAULT_ERRORS_NO_ORIGIN = F("CORS-007", "Error responses lack Access-Control-Allow-Origin.")


@CORS_PREFLIGHT.transform(FAULT_PREFLIGHT_AUTH)
def _preflight_auth(resp: Response) -> Response:
    # the 401 still carries the preflight headers, so only CORS-001 is the visible break
    headers = {name: value for name, value in resp.headers.items() if name.lower().startswith("access-control-")}
    raise ApiError(401, "You didn't provide an API key.", code="invalid_api_key", headers=headers)


@CORS_PREFLIGHT.transform(FAULT_PREFLIGHT_NO_ORIGIN)
def _preflight_no_origin(resp: Response) -> Response:
    del resp.headers["Access-Control-Allow-Origin"]
    return resp


@CORS_PREFLIGHT.transform(FAULT_PREFLIGHT_METHODS)
def _preflight_methods(resp: Response) -> Response:
    resp.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
    return resp


@CORS_PREFLIGHT.transform(FAULT_NO_AUTHORIZATION)
def _no_authorization(resp: Response) -> Response:
    names = resp.headers["Access-Control-Allow-Headers"].split(", ")
    resp.headers["Access-Control-Allow-Headers"] = ", ".join(n for n in names if n.lower() != "authorization")
    return resp


def _without(pairs: list[Header], name: str) -> list[Header]:
    return [pair for pair in pairs if pair[0] != name]


@CORS_HEADERS.transform(FAULT_ACTUAL_NO_ORIGIN, lambda pairs, resp: resp.status_code < 400)
def _actual_no_origin(pairs: list[Header], resp: ReferenceResponse) -> list[Header]:
    return _without(pairs, "Access-Control-Allow-Origin")


@CORS_HEADERS.transform(FAULT_ERRORS_NO_ORIGIN, lambda pairs, resp: resp.status_code >= 400)
def _errors_no_origin(pairs: list[Header], resp: ReferenceResponse) -> list[Header]:
    return _without(pairs, "Access-Control-Allow-Origin")


@CORS_HEADERS.transform(FAULT_NO_EXPOSE)
def _no_expose(pairs: list[Header], resp: ReferenceResponse) -> list[Header]:
    return _without(pairs, "Access-Control-Expose-Headers")
