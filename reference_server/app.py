"""Application factory: one blueprint per surface mounted at the profile's base paths, shared error handling,
and the response headers every surface carries (``x-request-id``)."""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from reference_server import (
    answer_cache,
    auth,
    chat,
    control,
    embeddings,
    errors,
    faults,
    limits,
    models,
    ollama,
)
from reference_server.config import ServerConfig
from reference_server.context import server_config

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

_request_numbers = itertools.count(1)
# One random prefix per process plus a counter: unique per request without a uuid4() system call on each response.
_REQUEST_ID_PREFIX = os.urandom(12).hex()


def add_request_id(resp: Response) -> Response:
    """after_request: a fresh ``x-request-id`` on every API response (different for every request, HEADERS-003)."""
    config = server_config()
    is_error = resp.status_code >= 400 or resp.mimetype == "text/event-stream"
    if not is_error and config.fault(FAULT_NO_REQUEST_ID):
        return resp
    if is_error and config.fault(FAULT_NO_REQUEST_ID_ERRORS):
        return resp
    if config.fault(FAULT_SAME_REQUEST_ID):
        resp.headers["x-request-id"] = "req_00000000000000000000000000000000"
    else:
        resp.headers["x-request-id"] = f"req_{_REQUEST_ID_PREFIX}{next(_request_numbers):08x}"
    if config.fault_trace is not None:
        config.fault_trace.link(resp.headers["x-request-id"])
    return resp


def unusual_header_case(resp: Response) -> Response:
    """after_request (variant ``header-case``): header names upper-cased; HTTP names are case-insensitive."""
    if server_config().variant("header-case"):
        items = list(resp.headers.items())
        resp.headers.clear()
        for name, value in items:
            resp.headers.add(name.upper(), value)
    return resp


def refuse_oversized_body() -> None:
    """before_request: answer 413 for a declared body over the limit before any hook reads it.

    The cached empty body keeps later readers (the request journal's after_request) from raising the 413 again
    while the error response is being finalized, which would turn it into a 500.
    """
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    req = request._get_current_object()
    if limit and req.content_length is not None and req.content_length > limit:
        req._cached_data = b""
        raise RequestEntityTooLarge()


def reject_stainless() -> None:
    """before_request (fault HEADERS-007 only): refuse the SDK's own headers."""
    if any(name.lower().startswith("x-stainless-") for name in request.headers.keys()) and \
            server_config().fault(FAULT_STAINLESS_REJECTED):
        raise errors.ApiError(400, "Unrecognized request header X-Stainless-Lang.")


class ReferenceFlask(Flask):
    """Flask with one change: whether a view or hook is a coroutine function is asked once per function.

    Flask asks ``inspect.iscoroutinefunction`` for every hook on every request (a dozen here); functions do not
    change, so the answer is remembered.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable) -> Callable:
        """The sync callable Flask would use for ``func``, worked out once per plain function."""
        sync = self._sync_functions.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if inspect.isfunction(func):  # bound methods are new objects on each access: not worth keeping
                self._sync_functions[func] = sync
        return sync


def create_app(config: ServerConfig | None = None) -> Flask:
    """Build the reference server for one profile. ``config`` defaults to the strict ``openai`` profile.

    Raises ``ValueError`` when ``config.faults`` or ``config.variants`` names something the catalogues lack.
    """
    config = config or ServerConfig.for_profile("openai")
    faults.validate(config.faults)
    from reference_server import variants  # variants imports nothing of the app; kept local for clarity

    variants.validate(config.variants)
    app = ReferenceFlask(__name__)
    app.config["SERVER"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.compact = True
    if config.fault_trace is not None:  # first of all hooks: every fault a request consults lands in its trace
        app.before_request(config.fault_trace.begin_request)
    errors.init_app(app)
    answer_cache.init_app(app)
    app.before_request(refuse_oversized_body)
    app.after_request(unusual_header_case)  # after_request hooks run in reverse: this one runs last
    app.after_request(add_request_id)
    # Hook order matters: control (journal, X-Mock-* headers) sees every request first, then auth, then limits.
    control.init_app(app) if hasattr(control, "init_app") else None
    app.before_request(reject_stainless)
    auth.init_app(app)
    limits.init_app(app)
    register_blueprints(app, config)
    return app


def register_blueprints(app: Flask, config: ServerConfig) -> None:
    """Mount each surface: control at the root, the OpenAI surface at ``base_path``, Ollama at its own base path."""
    profile = config.profile
    app.register_blueprint(control.bp)
    for module in (models, chat, embeddings):
        app.register_blueprint(module.bp, url_prefix=profile.base_path or None)
    if profile.ollama_base_path:
        app.register_blueprint(ollama.bp, url_prefix=profile.ollama_base_path)
    root_bp = getattr(ollama, "root_bp", None)  # e.g. ``GET /`` "Ollama is running", outside the base path
    if root_bp is not None and profile.ollama_base_path:
        app.register_blueprint(root_bp)
