"""Faults of authentication: the ``AUTH`` seam, where each check of ``policy/auth.py`` passes its decision.

A transform is ``(refusal, check, subject, settings) -> refusal``: ``refusal`` is the ``ApiError`` the check answers,
None when it passes. A fault lets a refused request pass (returns None: auth goes on as the check had passed),
refuses a passing one, or reshapes the refusal.
"""

from __future__ import annotations

from typing import Any

from reference_server import faults
from reference_server.context import current_request, server_config
from reference_server.faults.seams import AUTH
from reference_server.wire.errors import ApiError

F = faults.declare
# CORS-007 can only be provoked by the keyless 401 this fault removes (a CORS check has no other safe error).
FAULT_NO_AUTH = F("AUTH-001", "Requests without an Authorization header are served.",
                  collateral=("AUTH-010", "CORS-007"))
FAULT_ANY_SCHEME = F("AUTH-002", "Any auth scheme (e.g. Basic) is accepted with a known key.")
FAULT_STALE_KEY_OK = F("AUTH-012", "Expired and disabled keys are accepted like valid ones.")
FAULT_NO_PATTERN = F("AUTH-003", "Keys that break the profile's key_pattern answer 400, not 401.")
# SDK-007's check presents a well-formed unknown key too: served, so no 401 reaches the SDK to map.
FAULT_UNKNOWN_KEY = F("AUTH-004", "Well-formed unknown keys are accepted.", collateral=("SDK-007",))
# The models list is the one route every profile serves; what it proves cannot be checked while it is refused,
# nor can the SDK list it with that key (SDK-012: models.list() raises PermissionDeniedError).
FAULT_TEST_KEY_403 = F(
    "AUTH-005", "The profile's test key is refused with 403 on the models list.",
    collateral=("MODELS-001", "MODELS-002", "MODELS-003", "MODELS-004", "MODELS-005", "MODELS-006", "MODELS-007",
                "MODELS-008",
                "MODELS-018", "MODELS-019", "MODELS-020", "MODELS-021", "SDK-012"),
)
FAULT_ECHO_KEY = F("AUTH-006", "401 messages echo the full key that was presented.")
FAULT_EMPTY_TOKEN = F("AUTH-007", '"Bearer " with an empty token is served.')
FAULT_SCHEME_CASE = F("AUTH-008", 'The scheme name is matched case-sensitively ("bearer" is refused).')
FAULT_BODY_FIRST = F("AUTH-009", "Chat bodies are validated before the key, so bad key + bad body is 400.")
FAULT_MODELS_OPEN = F("AUTH-010", "GET {base}/models is served without an Authorization header.")

at = AUTH.transform
KEY_CHECKS = ("pattern", "state", "known")  # the checks that judge the key itself (their 401s name it)


def _refused(*names: str) -> Any:
    """``applies``: one of the checks ``names`` refuses."""
    return lambda refusal, check, subject, settings: refusal is not None and check in names


# A lower-case "bearer" passes the scheme check (HTTP auth schemes are case-insensitive): refused here.
@at(FAULT_SCHEME_CASE, lambda refusal, check, subject, settings: refusal is None and check == "scheme")
def _scheme_case(refusal: ApiError | None, check: str, subject: str | None, settings: dict | None) -> ApiError | None:
    return ApiError(401, f"Unsupported authorization scheme {(subject or '')[:16]!r}; use 'Authorization: Bearer "
                    "<key>'.", type="invalid_request_error", code="invalid_api_key")


@at(FAULT_NO_PATTERN, _refused("pattern"))
def _no_pattern(refusal: ApiError, check: str, subject: str | None, settings: dict | None) -> ApiError | None:
    refusal.status = 400
    return refusal


@at(FAULT_ECHO_KEY, _refused(*KEY_CHECKS))
def _echo_key(refusal: ApiError, check: str, subject: str | None, settings: dict | None) -> ApiError | None:
    token = subject or ""
    masked = token[:6] + "***" if len(token) > 6 else "***"  # how policy/auth.mask_key names it
    refusal.message = refusal.message.replace(masked, token, 1)
    return refusal


# A bad key with a body that is not JSON answers the body's 400 (as if the body were read first), not the 401.
@at(FAULT_BODY_FIRST, lambda refusal, check, subject, settings: refusal is not None and check in KEY_CHECKS
    and current_request().is_json)
def _body_first(refusal: ApiError, check: str, subject: str | None, settings: dict | None) -> ApiError | None:
    if current_request().get_json(silent=True) is None:
        return ApiError(400, "We could not parse the JSON body of your request.")
    return refusal


@at(FAULT_TEST_KEY_403, lambda refusal, check, subject, settings: refusal is None and check == "route"
    and (settings or {}).get("role") == "test" and current_request().path.endswith("/models"))
def _test_key_403(refusal: ApiError | None, check: str, subject: str | None, settings: dict | None) -> ApiError | None:
    return ApiError(403, "This key may not access this route.", code="forbidden")


# ---------------------------------------------------------------- refused requests let pass (registered last:
# a refusal the transforms above made or reshaped is what they let pass)


def _let_pass(refusal: ApiError | None, check: str, subject: str | None, settings: dict | None) -> ApiError | None:
    return None


at(FAULT_NO_AUTH, lambda refusal, check, subject, settings: check == "header" and subject is None)(_let_pass)
at(FAULT_ANY_SCHEME, _refused("scheme"))(_let_pass)
at(FAULT_EMPTY_TOKEN, _refused("token"))(_let_pass)
at(FAULT_STALE_KEY_OK, _refused("state"))(_let_pass)
at(FAULT_UNKNOWN_KEY, _refused("known"))(_let_pass)


def _keyless_models_list(refusal: ApiError | None, check: str, subject: str | None, settings: dict | None) -> bool:
    if check != "header" or subject is not None:
        return False
    req = current_request()
    return req.method == "GET" and req.path == f"{server_config().profile.base_path}/models"


at(FAULT_MODELS_OPEN, _keyless_models_list)(_let_pass)
