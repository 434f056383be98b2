"""Application factory: one blueprint per surface mounted at the profile's base paths, shared error handling,
and the response headers every surface carries (``x-request-id``)."""

from __future__ import annotations

import functools
import inspect
import itertools
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import RequestEntityTooLarge

from reference_server import faults
from reference_server.config import ServerConfig
from reference_server.context import current_request, server_config
from reference_server.control import endpoints as control
from reference_server.control import scripts
from reference_server.faults import variants
from reference_server.mock import answer_cache, scripted
from reference_server.policy import auth, limits
from reference_server.surfaces import chat, embeddings, models, ollama
from reference_server.wire import errors
from reference_server.wire import headers as wire_headers

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


def add_request_id(resp: Response, config: ServerConfig) -> Response:
    """after_request: a fresh ``x-request-id`` on every API response (different for every request, HEADERS-003).
    ``config`` is bound by ``create_app``."""
    if config.fault_questions_matter():  # which of the two faults applies is only worth working out when one may
        # resp.mimetype parses the whole Content-Type on each read; the media type is all this needs.
        is_error = resp.status_code >= 400 or \
            resp.headers.get("Content-Type", "").partition(";")[0].strip().lower() == "text/event-stream"
        if not is_error and config.fault(FAULT_NO_REQUEST_ID):
            return resp
        if is_error and config.fault(FAULT_NO_REQUEST_ID_ERRORS):
            return resp
    if config.fault(FAULT_SAME_REQUEST_ID):
        request_id = "req_00000000000000000000000000000000"
    else:
        request_id = f"req_{_REQUEST_ID_PREFIX}{next(_request_numbers):08x}"
    # Made here: straight to the WSGI server (see wire_headers), where the journal reads it too.
    wire_headers.add("request-id", [("x-request-id", request_id)])
    if config.fault_trace is not None:
        config.fault_trace.link(request_id)
    return resp


def unusual_header_case(resp: Response) -> Response:
    """after_request (installed with variant ``header-case`` only): header names upper-cased; HTTP names are
    case-insensitive."""
    items = list(resp.headers.items())
    resp.headers.clear()
    for name, value in items:
        resp.headers.add(name.upper(), value)
    for group in wire_headers.pending(current_request().environ).values():
        group[:] = [(name.upper(), value) for name, value in group]
    return resp


def refuse_oversized_body(limit: int) -> None:
    """before_request: answer 413 for a declared body over ``limit`` before any hook reads it.

    ``limit`` is bound by ``create_app`` (``ServerConfig.max_body_bytes``, also Flask's MAX_CONTENT_LENGTH). The
    cached empty body keeps later readers (the request journal's after_request) from raising the 413 again
    while the error response is being finalized, which would turn it into a 500.
    """
    req = current_request()
    # The declared length as the server passed it: werkzeug's req.content_length parses it on every read, and this
    # check only needs the early answer (reading the body past MAX_CONTENT_LENGTH still raises 413 in werkzeug).
    declared = req.environ.get("CONTENT_LENGTH", "").strip()
    if limit and declared.isdigit() and int(declared) > limit:
        req._cached_data = b""
        raise RequestEntityTooLarge()


def reject_stainless() -> None:
    """before_request (installed only where a fault may be on or is traced): refuse the SDK's own headers under
    fault HEADERS-007."""
    config = server_config()
    # WSGI names every header HTTP_<NAME> in upper case with "_" for "-".
    if any(name.startswith("HTTP_X_STAINLESS_") for name in current_request().environ) and \
            config.fault(FAULT_STAINLESS_REJECTED):
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
        """The sync callable Flask would use for ``func``, worked out once per hook or view."""
        sync = self._sync_functions.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            # Plain functions, bound methods (limits.AppLimits) and partials (hooks bound to their config): the
            # hook lists hold the same objects request after request (a bound method hashes by object and function).
            if inspect.isfunction(func) or inspect.ismethod(func) or isinstance(func, functools.partial):
                self._sync_functions[func] = sync
        return sync


def create_app(config: ServerConfig | None = None) -> Flask:
    """Build the reference server for one profile. ``config`` defaults to the strict ``openai`` profile.

    Raises ``ValueError`` when ``config.faults`` or ``config.variants`` names something the catalogues lack.
    """
    config = config or ServerConfig.for_profile("openai")
    faults.validate(config.faults)
    variants.validate(config.variants)
    app = ReferenceFlask(__name__)
    app.config["SERVER"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.compact = True
    if config.fault_trace is not None:  # first of all hooks: every fault a request consults lands in its trace
        app.before_request(config.fault_trace.begin_request)
    errors.init_app(app)
    store = scripts.init_state(app)  # before every part that keeps state in it (journal, counters, limits, rules)
    answer_cache.init_app(app)
    # Hooks run on every request, so each takes what it needs from ``config`` now, and hooks that cannot act for
    # this config (faults and variants are fixed per app) are not installed at all.
    app.before_request(functools.partial(refuse_oversized_body, config.max_body_bytes))
    if config.variant("header-case"):
        app.after_request(unusual_header_case)  # after_request hooks run in reverse: this one runs last
    app.after_request(functools.partial(add_request_id, config=config))
    # Hook order matters: control (journal, X-Mock-* headers) sees every request first, then auth, then limits.
    control.init_app(app)
    if config.fault_questions_matter():
        app.before_request(reject_stainless)
    auth.init_app(app)
    limits.init_app(app)
    engine = scripted.init_app(app, store)  # after auth and the limiter: a scripted answer is a counted request
    scripts.load_startup_rules(engine, config.scripts)
    register_blueprints(app, config)
    app.wsgi_app = wire_headers.Middleware(app.wsgi_app)  # Flask's documented way to wrap the app in middleware
    return app


def register_blueprints(app: Flask, config: ServerConfig) -> None:
    """Mount each surface: control at the root, the OpenAI surface at ``base_path``, Ollama at its own base path."""
    profile = config.profile
    app.register_blueprint(control.bp)
    app.register_blueprint(scripts.bp)
    for module in (models, chat, embeddings):
        app.register_blueprint(module.bp, url_prefix=profile.base_path or None)
    if profile.ollama_base_path:
        app.register_blueprint(ollama.bp, url_prefix=profile.ollama_base_path)
    root_bp = getattr(ollama, "root_bp", None)  # e.g. ``GET /`` "Ollama is running", outside the base path
    if root_bp is not None and profile.ollama_base_path:
        app.register_blueprint(root_bp)
