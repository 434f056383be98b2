"""Faults of the headers every answer carries: ``x-request-id`` (the ``REQUEST_ID`` seam, transforms
``(request_id, resp) -> request_id or None``: None leaves the header out), and the SDK's own request headers
refused (a hook ``create_app`` installs only where a fault may be on or is traced).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_server import faults
from reference_server.context import RequestContext
from reference_server.faults.seams import REQUEST_ID
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from flask import Response

FAULT_NO_REQUEST_ID = faults.declare("HEADERS-001", "Successful responses lack x-request-id.")
# APIStatusError.request_id is read from the error response's x-request-id (openai _exceptions.py): SDK-017.
FAULT_NO_REQUEST_ID_ERRORS = faults.declare("HEADERS-002", "Error responses and streams lack x-request-id.",
                                            collateral=("SDK-017",))
FAULT_SAME_REQUEST_ID = faults.declare("HEADERS-003", "Every response carries the same x-request-id.")
# openai-python sends X-Stainless-* on every request (_base_client.py platform_headers), so every SDK check that
# expects anything but a 400 breaks. Not SDK-008 (it expects a 400), SDK-014 (the 400 is an APIError too),
# SDK-017 (the 400 carries x-request-id), nor SDK-010/019 (X-Mock-Status is answered before this hook).
FAULT_STAINLESS_REJECTED = faults.declare(
    "HEADERS-007", "Requests carrying X-Stainless-* headers are answered 400.",
    collateral=("SDK-001", "SDK-002", "SDK-003", "SDK-004", "SDK-005", "SDK-006", "SDK-007", "SDK-009", "SDK-012",
                "SDK-013", "SDK-015", "SDK-016", "SDK-018", "SDK-020"),
)



def is_error_or_stream(resp: Response) -> bool:
    """An error answer or an event stream (where HEADERS-002 acts; HEADERS-001 acts on the other answers)."""
    # resp.mimetype parses the whole Content-Type on each read; the media type is all this needs.
    return resp.status_code >= 400 or \
        resp.headers.get("Content-Type", "").partition(";")[0].strip().lower() == "text/event-stream"


@REQUEST_ID.transform(FAULT_SAME_REQUEST_ID)
def _same_request_id(request_id: str, resp: Response) -> str:
    return "req_00000000000000000000000000000000"


@REQUEST_ID.transform(FAULT_NO_REQUEST_ID, lambda request_id, resp: not is_error_or_stream(resp))
def _no_request_id(request_id: str, resp: Response) -> None:
    return None


@REQUEST_ID.transform(FAULT_NO_REQUEST_ID_ERRORS, lambda request_id, resp: is_error_or_stream(resp))
def _no_request_id_errors(request_id: str, resp: Response) -> None:
    return None


def reject_stainless(ctx: RequestContext) -> None:
    """Before step (apps that serve or trace faults): refuse the SDK's own headers under fault HEADERS-007."""
    config = ctx.server.config
    # WSGI names every header HTTP_<NAME> in upper case with "_" for "-".
    if any(name.startswith("HTTP_X_STAINLESS_") for name in ctx.request.environ) and \
            config.fault(FAULT_STAINLESS_REJECTED):
        raise ApiError(400, "Unrecognized request header X-Stainless-Lang.")
