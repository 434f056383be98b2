"""Bearer-key authentication per profile, checked before anything reads the body (AUTH-009).

Accepted keys: the profile's ``auth.test_key`` and ``auth.extra_test_keys`` plus ``ServerConfig.keys`` (which
``ServerConfig`` seeds with the profile's keys; the CLI adds a keys file and ``REFERENCE_SERVER_KEYS``). A key must
also match ``auth.key_pattern``. Profiles with ``auth.key_required_but_ignored`` accept any non-empty key, and
profiles with ``auth.any_key_with_prefix`` any key that starts with it (UnifiedAI: "Any API key starting with sk-").

Each check's decision (its refusal, or None) goes through the ``AUTH`` seam (:func:`check`), where faults act.
Every rejection is a 401 envelope with code ``invalid_api_key`` whose message shows at most a masked prefix of the
key (``sk-abc***``), never the key itself. The accepted key is on the request context (``RequestContext.api_key``)
and its settings on ``RequestContext.key`` (a dict: ``tier``, ``balance``, ``allowed_models``, ...), which
``limits`` reads.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from reference_server.faults import seams
from reference_server.wire.errors import ApiError

if TYPE_CHECKING:
    from reference_server.config import ServerConfig
    from reference_server.context import RequestContext

ALWAYS_OPEN = ("/healthz", "/_mock/")
NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
          "auth (i.e. Authorization: Bearer YOUR_KEY).")


def mask_key(key: str) -> str:
    """OpenAI's way of naming a key in an error: the first 6 characters then ``***`` (``sk-abc***``)."""
    return key[:6] + "***" if len(key) > 6 else "***"


def open_ollama_base(config: ServerConfig) -> str | None:
    """The base path of an Ollama surface the profile documents without auth (None when there is none)."""
    profile = config.profile
    base = profile.ollama_base_path
    return base if base and not profile.get("ollama.auth_required") else None


def is_open_path(path: str, open_base: str | None) -> bool:
    """Paths that never need a key: health, the mock control surface, ``GET /``, and an Ollama surface the
    profile documents without auth (``open_base``: :func:`open_ollama_base`, worked out once per app)."""
    if path == "/" or path == "/healthz" or path.startswith("/_mock/"):
        return True
    return open_base is not None and (path == open_base or path.startswith(open_base + "/"))


# A key pattern compiled once (re.fullmatch looks its cache up in Python code on every call).
_compiled = functools.lru_cache(maxsize=64)(re.compile)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, type="invalid_request_error", code="invalid_api_key")


def check(config: ServerConfig, name: str, refusal: ApiError | None, subject: str | None = None,
          settings: dict[str, Any] | None = None) -> None:
    """One check's decision through the ``AUTH`` seam: raise the refusal it returns; None, the check passes.

    ``name``: header (present), scheme (Bearer), token (not empty), pattern (``auth.key_pattern``), state (not
    expired or disabled), known (a key the server knows) or route (the accepted key may call it); ``subject`` what it
    judged (the header, the scheme, the token), ``settings`` the key's settings where known. Faults act there
    (faults/auth.py): they let a refused request pass, refuse a passing one, or reshape the refusal.
    """
    refusal = seams.AUTH(config, refusal, name, subject, settings)
    if refusal is not None:
        raise refusal


def bearer_token(header: str, config: ServerConfig) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), or raise the 401 the
    header deserves."""
    scheme, _, token = header.strip().partition(" ")
    if scheme != "Bearer":
        check(config, "scheme", None if scheme.lower() == "bearer" else unauthorized(
            f"Unsupported authorization scheme {scheme[:16]!r}; use 'Authorization: Bearer <key>'."), scheme)
    return token.strip()


def check_key(token: str, config: ServerConfig) -> dict[str, Any]:
    """Settings of an accepted key, or raise 401 (AUTH-003 pattern, AUTH-012 state, AUTH-004 unknown)."""
    profile = config.profile
    pattern = profile.get("auth.key_pattern")
    if pattern and not _compiled(pattern).fullmatch(token):
        check(config, "pattern", unauthorized(f"Incorrect API key format: {mask_key(token)}. Expected "
                                              f"{profile.get('auth.key_format')}."), token)
    settings = config.keys.get(token)
    if settings is not None:
        state = settings.get("role")
        if state in ("expired", "disabled"):
            check(config, "state", unauthorized(f"The API key {mask_key(token)} is {state}."), token, settings)
        return settings
    if not (profile.get("auth.key_required_but_ignored") or profile.accepts_every_key(token)):
        check(config, "known", unauthorized(f"Incorrect API key provided: {mask_key(token)}. You can find your API "
                                            "key in your dashboard."), token)
    return {"role": "any"}


def authenticate(config: ServerConfig, open_base: str | None, ctx: RequestContext) -> None:
    """Before step: reject unauthenticated calls to the API surfaces; remember the key on the request context.
    ``config`` and ``open_base`` (:func:`open_ollama_base`) are bound by ``create_app``. A request whose missing or empty key a check lets pass is served without
    a key (``RequestContext.key`` says ``anonymous``)."""
    req = ctx.request
    if req.method == "OPTIONS" or is_open_path(req.path, open_base):
        return
    header = req.environ.get("HTTP_AUTHORIZATION")  # what req.headers.get("Authorization") reads, without its work
    if header is None or not header.strip():
        check(config, "header", unauthorized(NO_KEY), header)
        ctx.key = {"role": "anonymous"}
        return
    token = bearer_token(header, config)
    if not token:
        check(config, "token", unauthorized("You didn't provide an API key: the Bearer token is empty."), token)
        ctx.key = {"role": "anonymous"}
        return
    settings = check_key(token, config)
    refusal = seams.AUTH(config, None, "route", token, settings)  # check() inlined: every keyed request passes here
    if refusal is not None:
        raise refusal
    ctx.api_key = token
    ctx.key = settings
