"""Bearer-key authentication per profile, checked before anything reads the body (AUTH-009).

Accepted keys: the profile's ``auth.test_key`` and ``auth.extra_test_keys`` plus ``ServerConfig.keys`` (which
``ServerConfig`` seeds with the profile's keys; the CLI adds a keys file and ``REFERENCE_SERVER_KEYS``). A key must
also match ``auth.key_pattern``. Profiles with ``auth.key_required_but_ignored`` accept any non-empty key, and
profiles with ``auth.any_key_with_prefix`` any key that starts with it (UnifiedAI: "Any API key starting with sk-").

Every rejection is a 401 envelope with code ``invalid_api_key`` whose message shows at most a masked prefix of the
key (``sk-abc***``), never the key itself. The accepted key is on the request context (``RequestContext.api_key``)
and its settings on ``RequestContext.key`` (a dict: ``tier``, ``balance``, ``allowed_models``, ...), which
``limits`` reads.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from flask import Flask

from reference_server import faults
from reference_server.context import current_request, request_context
from reference_server.context import fault as _fault
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from reference_server.config import ServerConfig

# CORS-007 can only be provoked by the keyless 401 this fault removes (a CORS check has no other safe error).
FAULT_NO_AUTH = faults.declare("AUTH-001", "Requests without an Authorization header are served.",
                               collateral=("AUTH-010", "CORS-007"))
FAULT_ANY_SCHEME = faults.declare("AUTH-002", "Any auth scheme (e.g. Basic) is accepted with a known key.")
FAULT_STALE_KEY_OK = faults.declare("AUTH-012", "Expired and disabled keys are accepted like valid ones.")
FAULT_NO_PATTERN = faults.declare("AUTH-003", "Keys that break the profile's key_pattern answer 400, not 401.")
# SDK-007's check presents a well-formed unknown key too: served, so no 401 reaches the SDK to map.
FAULT_UNKNOWN_KEY = faults.declare("AUTH-004", "Well-formed unknown keys are accepted.", collateral=("SDK-007",))
# The models list is the one route every profile serves; what it proves cannot be checked while it is refused,
# nor can the SDK list it with that key (SDK-012: models.list() raises PermissionDeniedError).
FAULT_TEST_KEY_403 = faults.declare(
    "AUTH-005", "The profile's test key is refused with 403 on the models list.",
    collateral=("MODELS-001", "MODELS-002", "MODELS-003", "MODELS-004", "MODELS-005", "MODELS-006", "MODELS-007",
                "MODELS-008",
                "MODELS-018", "MODELS-019", "MODELS-020", "MODELS-021", "SDK-012"),
)
FAULT_ECHO_KEY = faults.declare("AUTH-006", "401 messages echo the full key that was presented.")
FAULT_EMPTY_TOKEN = faults.declare("AUTH-007", '"Bearer " with an empty token is served.')
FAULT_SCHEME_CASE = faults.declare("AUTH-008", 'The scheme name is matched case-sensitively ("bearer" is refused).')
FAULT_BODY_FIRST = faults.declare("AUTH-009", "Chat bodies are validated before the key, so bad key + bad body is 400.")
FAULT_MODELS_OPEN = faults.declare("AUTH-010", "GET {base}/models is served without an Authorization header.")

ALWAYS_OPEN = ("/healthz", "/_mock/")


def mask_key(key: str) -> str:
    """OpenAI's way of naming a key in an error: the first 6 characters then ``***`` (``sk-abc***``)."""
    return key[:6] + "***" if len(key) > 6 else "***"


def is_open_path(path: str, config: ServerConfig) -> bool:
    """Paths that never need a key: health, the mock control surface, ``GET /``, and an Ollama surface the
    profile documents without auth."""
    if path == "/" or path == "/healthz" or path.startswith("/_mock/"):
        return True
    profile = config.profile
    base = profile.ollama_base_path
    if base and not profile.get("ollama.auth_required") and (path == base or path.startswith(base + "/")):
        return True
    if path[-7:] != "/models" or current_request().method != "GET":  # the one keyed route a fault may open
        return False
    return path == f"{profile.base_path}/models" and _fault(FAULT_MODELS_OPEN)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, type="invalid_request_error", code="invalid_api_key")


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or raise the 401 the header deserves."""
    if header is None or not header.strip():
        raise unauthorized("You didn't provide an API key. You need to provide your API key in an Authorization "
                           "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    scheme, _, token = header.strip().partition(" ")
    scheme_ok = scheme == "Bearer" or (scheme.lower() == "bearer" and not _fault(FAULT_SCHEME_CASE))
    if not scheme_ok and not _fault(FAULT_ANY_SCHEME):
        raise unauthorized(f"Unsupported authorization scheme {scheme[:16]!r}; use 'Authorization: Bearer <key>'.")
    token = token.strip()
    if not token and not _fault(FAULT_EMPTY_TOKEN):
        raise unauthorized("You didn't provide an API key: the Bearer token is empty.")
    return token


def check_key(token: str, config: ServerConfig) -> dict[str, Any]:
    """Settings of an accepted key, or raise 401 (AUTH-003 pattern, AUTH-004 unknown)."""
    profile = config.profile
    pattern = profile.get("auth.key_pattern")
    if pattern and not re.fullmatch(pattern, token):
        status = 400 if _fault(FAULT_NO_PATTERN) else 401
        err = unauthorized(f"Incorrect API key format: {_shown(token)}. Expected {profile.get('auth.key_format')}.")
        err.status = status
        raise err
    settings = config.keys.get(token)
    if settings is not None:
        state = settings.get("role")
        if state in ("expired", "disabled") and not _fault(FAULT_STALE_KEY_OK):
            raise unauthorized(f"The API key {_shown(token)} is {state}.")
        return settings
    if profile.get("auth.key_required_but_ignored") or profile.accepts_every_key(token) or _fault(FAULT_UNKNOWN_KEY):
        return {"role": "any"}
    raise unauthorized(f"Incorrect API key provided: {_shown(token)}. You can find your API key in your dashboard.")


def _shown(token: str) -> str:
    """The key as a 401 message names it (asked only when refusing, so an accepted key never consults AUTH-006)."""
    return token if _fault(FAULT_ECHO_KEY) else mask_key(token)


def authenticate(config: ServerConfig) -> None:
    """before_request: reject unauthenticated calls to the API surfaces; remember the key on the request context.
    ``config`` is bound by ``init_app``."""
    ctx = request_context()
    req = ctx.request
    if req.method == "OPTIONS" or is_open_path(req.path, config):
        return
    header = req.environ.get("HTTP_AUTHORIZATION")  # what req.headers.get("Authorization") reads, without its work
    if header is None and _fault(FAULT_NO_AUTH):
        ctx.key = {"role": "anonymous"}
        return
    token = bearer_token(header)
    if not token and _fault(FAULT_EMPTY_TOKEN):  # served as no key at all, since no key can match ""
        ctx.key = {"role": "anonymous"}
        return
    # is_json parses Content-Type: only worth it when a fault may be on (asked in this order so traces stay small).
    if config.fault_questions_matter() and req.is_json and config.fault(FAULT_BODY_FIRST) \
            and req.get_json(silent=True) is None:
        raise ApiError(400, "We could not parse the JSON body of your request.")
    settings = check_key(token, config)
    if settings.get("role") == "test" and req.path.endswith("/models") and _fault(FAULT_TEST_KEY_403):
        raise ApiError(403, "This key may not access this route.", code="forbidden")
    ctx.api_key = token
    ctx.key = settings


def init_app(app: Flask) -> None:
    """Install the authentication hook (after control's, before limits')."""
    config = app.config["SERVER"]

    def authenticate_request() -> None:
        authenticate(config)

    app.before_request(authenticate_request)
