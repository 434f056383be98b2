"""Application factory: one blueprint per surface mounted at the profile's base paths, shared error handling,
and the response headers every surface carries (``x-request-id``)."""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask, request_tearing_down
from flask.ctx import RequestContext as FlaskRequestContext
from flask.globals import _cv_request
from werkzeug.exceptions import RequestEntityTooLarge

from reference_server import faults
from reference_server.config import ServerConfig
from reference_server.context import ReferenceRequest, RequestContext, Server
from reference_server.control import endpoints as control
from reference_server.control import mock_controls, scripts
from reference_server.faults import answer as _answer_faults  # noqa: F401  (registers its transforms at the seams)
from reference_server.faults import auth as _auth_faults  # noqa: F401  (the same)
from reference_server.faults import completion as _completion_faults  # noqa: F401  (the same)
from reference_server.faults import cors as _cors_faults  # noqa: F401  (the same)
from reference_server.faults import embeddings as _embedding_faults  # noqa: F401  (the same)
from reference_server.faults import errors as _error_faults  # noqa: F401  (the same)
from reference_server.faults import headers as header_faults
from reference_server.faults import limits as _limit_faults  # noqa: F401  (the same)
from reference_server.faults import models as _model_faults  # noqa: F401  (the same)
from reference_server.faults import ollama as _ollama_faults  # noqa: F401  (the same)
from reference_server.faults import problems as _problem_faults  # noqa: F401  (the same)
from reference_server.faults import seams, variants
from reference_server.faults import sse as _sse_faults  # noqa: F401  (the same)
from reference_server.faults import stream as _stream_faults  # noqa: F401  (the same)
from reference_server.faults import usage as _usage_faults  # noqa: F401  (the same)
from reference_server.faults import validation as _validation_faults  # noqa: F401  (the same)
from reference_server.mock import answer_cache, scripted, usage
from reference_server.policy import auth, limits
from reference_server.scripting import ScriptEngine
from reference_server.surfaces import chat, embeddings, models, ollama
from reference_server.wire import body_limit, cors, errors
from reference_server.wire.headers import ReferenceResponse

_request_numbers = itertools.count(1)
# One random prefix per process plus a counter: unique per request without a uuid4() system call on each response.
_REQUEST_ID_PREFIX = os.urandom(12).hex()


def add_request_id(config: ServerConfig, ctx: RequestContext, resp: ReferenceResponse) -> ReferenceResponse:
    """After step: a fresh ``x-request-id`` on every API response (different for every request, HEADERS-003),
    through the ``REQUEST_ID`` seam (a fault may leave it out). ``config`` is bound by ``create_app``."""
    request_id = seams.REQUEST_ID(config, f"req_{_REQUEST_ID_PREFIX}{next(_request_numbers):08x}", resp)
    if request_id is None:
        return resp
    ctx.request_id = request_id  # what the journal records
    resp.send("request-id", [("x-request-id", request_id)])  # made here: straight to the WSGI server
    if config.fault_trace is not None:
        config.fault_trace.link(request_id)
    return resp


def unusual_header_case(ctx: RequestContext, resp: ReferenceResponse) -> ReferenceResponse:
    """After step (installed with variant ``header-case`` only): header names upper-cased; HTTP names are
    case-insensitive."""
    items = list(resp.headers.items())
    resp.headers.clear()
    for name, value in items:
        resp.headers.add(name.upper(), value)
    for group in (resp.sent_groups or {}).values():
        group[:] = [(name.upper(), value) for name, value in group]
    return resp


def refuse_oversized_body(limit: int, read_caps: dict[str, int] | None, ctx: RequestContext) -> None:
    """Before step: answer 413 for a declared body over ``limit`` before any hook reads it.

    ``limit`` is bound by ``create_app`` (``ServerConfig.max_body_bytes``, also Flask's MAX_CONTENT_LENGTH). The
    cached empty body keeps later readers (the request journal's after step) from raising the 413 again
    while the error response is being finalized, which would turn it into a 500. ``read_caps`` (variant
    ``body-limit-after-parse`` only): endpoints that measure their body themselves once parsed, with the most they
    read.
    """
    req = ctx.request
    if read_caps is not None:
        limit = read_caps.get(req.endpoint or "", limit)
    # The declared length as the server passed it: werkzeug's req.content_length parses it on every read, and this
    # check only needs the early answer (reading the body past MAX_CONTENT_LENGTH still raises 413 in werkzeug).
    declared = req.environ.get("CONTENT_LENGTH", "").strip()
    if limit and declared.isdigit() and int(declared) > limit:
        req._cached_data = b""
        raise RequestEntityTooLarge()


# Requests of different (method, path) pairs an app remembers matching; past this, the rest are matched each time.
ROUTE_TABLE_SIZE = 1024
# The WSGI environ keys werkzeug builds a URL adapter from (Map.bind_to_environ and the host it reads), and how
# many different combinations of them an app keeps an adapter for.
ADAPTER_ENVIRON_KEYS = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "HTTP_CONNECTION",
                        "HTTP_UPGRADE", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD")
ADAPTER_CACHE_SIZE = 1024
_UNSET: Any = object()  # an argument not given, or an attribute this Flask version lacks


class ReferenceRequestContext(FlaskRequestContext):
    """Flask's request context, matching a (method, path) pair against the URL map once per app.

    werkzeug's matcher walks its state machine on every request (a few dozen Python calls); the app's rules do not
    change once it serves, and without host or subdomain matching the match depends on the method and the path
    alone. Only matches are remembered: a 404, a 405 or a redirect is raised afresh each time.
    """

    app: ReferenceFlask

    def match_request(self) -> None:
        table = self.app.route_table
        if table is None:
            return super().match_request()
        adapter = self.url_adapter
        key = (adapter.default_method, adapter.path_info, adapter.websocket)
        found = table.get(key)
        req = self.request
        if found is not None:
            req.url_rule, view_args = found
            req.view_args = dict(view_args)  # the request's own: a view or preprocessor may change it
            return None
        super().match_request()
        if req.routing_exception is None and len(table) < ROUTE_TABLE_SIZE:
            table[key] = (req.url_rule, dict(req.view_args or {}))
        return None


BeforeStep = Callable[[RequestContext], Any]  # returns None to go on, or the response (e.g. a preflight's answer)
AfterStep = Callable[[RequestContext, ReferenceResponse], ReferenceResponse]


class ReferenceFlask(Flask):
    """Flask with the server's typed state: every request carries a ``RequestContext``, every response is a
    ``ReferenceResponse`` (server-made headers straight to the WSGI server), and ``server`` holds what the app owns.

    The server's own hooks are one ordered pipeline (``before_steps``, ``after_steps``, built by ``create_app``),
    each step called with the request's ``RequestContext``. Registered as a dozen Flask hooks they cost, on every
    request, Flask's loops over the blueprint names, an ``ensure_sync`` per hook and a proxy resolution per hook to
    find the request again (about a sixth of a repeated request's instructions). The pipeline runs exactly where
    the app-level hooks ``create_app`` used to register ran: before steps after any ``url_value_preprocessors`` and
    before every ``before_request`` hook registered the Flask way (a blueprint's, an embedding user's), after steps
    after every ``after_request`` hook registered the Flask way and before the session is saved. Flask's own
    signals, teardown and error handling are untouched.

    One more change: whether a view or hook is a coroutine function is asked once per function. Flask asks
    ``inspect.iscoroutinefunction`` on every call; functions do not change, so the answer is remembered.
    """

    request_class = ReferenceRequest
    response_class = ReferenceResponse
    server: Server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable, Callable] = {}
        # (method, path, websocket) -> (rule, view args); None where the host takes part in matching
        self.route_table: dict[tuple[str, str, bool], tuple[Any, dict[str, Any]]] | None = (
            None if self.url_map.host_matching or self.subdomain_matching else {})
        # environ values (ADAPTER_ENVIRON_KEYS) -> the URL adapter werkzeug built from them; None as route_table
        self.url_adapters: dict[tuple[Any, ...], Any] | None = None if self.route_table is None else {}
        self.before_steps: tuple[BeforeStep, ...] = ()  # in the order they run
        self.after_steps: tuple[AfterStep, ...] = ()  # in the order they run

    def request_context(self, environ: dict) -> FlaskRequestContext:
        """Flask's request context (matching through the app's route table), with the request's own
        ``RequestContext`` attached before any hook runs."""
        flask_context = ReferenceRequestContext(self, environ)
        req = flask_context.request
        req.context = RequestContext(self.server, req)
        limit = self.config["MAX_CONTENT_LENGTH"]
        if limit is not None:  # what Flask's Request.max_content_length reads through two ``current_app`` proxies
            req._max_content_length = limit  # on every access (each body read asks); a view may still change it
        return flask_context

    def create_url_adapter(self, request: Any) -> Any:
        """Flask's URL adapter for ``request``, built once per combination of the environ values it comes from.

        Building one (``Map.bind_to_environ``: the host twice, IDNA encoding, WSGI string decoding, a new
        ``MapAdapter``) costs about a tenth of a repeated request. An adapter is never changed once built, and it
        depends on those environ values alone when neither ``TRUSTED_HOSTS`` nor ``SERVER_NAME`` is configured
        and the host takes no part in matching; elsewhere Flask builds it each time. Flask also sets
        ``request.host`` here, which werkzeug works out the same way when first read. An adapter werkzeug refuses
        to build (a bad host: 400) is not kept.
        """
        adapters = self.url_adapters
        if (request is None or adapters is None or self.config["TRUSTED_HOSTS"] is not None
                or self.config["SERVER_NAME"] is not None):
            return super().create_url_adapter(request)
        key = tuple(map(request.environ.get, ADAPTER_ENVIRON_KEYS))
        adapter = adapters.get(key)
        if adapter is None:
            adapter = super().create_url_adapter(request)
            if len(adapters) < ADAPTER_CACHE_SIZE:
                adapters[key] = adapter
        return adapter

    def preprocess_request(self) -> Any:
        """Flask's ``preprocess_request`` with the before steps first of the ``before_request`` hooks.

        The request is found once (``_cv_request``: the context variable Flask's ``request`` proxy reads), not once
        per hook.
        """
        req = _cv_request.get().request
        names = None
        if self.url_value_preprocessors:
            names = (None, *reversed(req.blueprints))
            for name in names:
                for url_func in self.url_value_preprocessors.get(name, ()):
                    url_func(req.endpoint, req.view_args)
        ctx = req.context
        for step in self.before_steps:
            rv = step(ctx)
            if rv is not None:
                return rv
        if self.before_request_funcs:
            for name in names or (None, *reversed(req.blueprints)):
                for before_func in self.before_request_funcs.get(name, ()):
                    rv = self.ensure_sync(before_func)()
                    if rv is not None:
                        return rv
        return None

    def process_response(self, response: ReferenceResponse) -> ReferenceResponse:
        """Flask's ``process_response`` with the after steps last of the ``after_request`` hooks (then the session
        is saved, as Flask does)."""
        flask_context = _cv_request.get()
        for func in flask_context._after_request_functions:
            response = self.ensure_sync(func)(response)
        req = flask_context.request
        if self.after_request_funcs:
            for name in (*req.blueprints, None):
                for func in reversed(self.after_request_funcs.get(name, ())):
                    response = self.ensure_sync(func)(response)
        ctx = req.context
        for step in self.after_steps:
            response = step(ctx, response)
        # Flask 3.1 keeps the session as ``_session`` (its ``session`` property marks it accessed); 3.0 as ``session``
        session = getattr(flask_context, "_session", _UNSET)
        if session is _UNSET:
            session = flask_context.session
        if not self.session_interface.is_null_session(session):
            self.session_interface.save_session(self, session, response)
        return response

    def do_teardown_request(self, exc: BaseException | None = _UNSET) -> None:  # type: ignore[assignment]
        """Flask's ``do_teardown_request``; an app without teardown functions only sends the signal (Flask would
        first look up the request's blueprint names through the ``request`` proxy to find none)."""
        if self.teardown_request_funcs:
            return super().do_teardown_request(*(() if exc is _UNSET else (exc,)))
        if exc is _UNSET:
            exc = sys.exc_info()[1]
        request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)
        return None

    def ensure_sync(self, func: Callable) -> Callable:
        """The sync callable Flask would use for ``func``, worked out once per hook or view."""
        sync = self._sync_functions.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            # Plain functions, bound methods and partials: the hook lists and views hold the same objects request
            # after request (a bound method hashes by object and function).
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
    # The state store first: journal, fail-times counts, rate-limit windows and scripted rules all live in it.
    store = scripts.open_state(config)
    app.server = Server(config=config, state=store, limits=limits.Limits(config, store.rate_limiter(limits.Snapshot)),
                        journal=store.journal(config.journal_size), attempts=mock_controls.AttemptCounter(store),
                        answers=answer_cache.AnswerCache(), scripts=ScriptEngine(store),
                        prompt_cache=usage.PromptCache())
    app.config["SERVER"] = config
    seams.bind(config)  # every fault module is imported above: each seam keeps the transforms this app can use
    read_cap = body_limit.read_cap(config)  # variant body-limit-after-parse: the chat route reads more
    app.config["MAX_CONTENT_LENGTH"] = read_cap or config.max_body_bytes
    app.json.sort_keys = False
    app.json.compact = True
    errors.init_app(app)
    scripts.init_app(app)  # a StateStoreUnavailable from any request becomes a 503 envelope naming the store
    app.before_steps, app.after_steps = request_steps(app.server, read_cap)
    scripts.load_startup_rules(app.server.scripts, config.scripts)
    register_blueprints(app, config)
    return app


def request_steps(server: Server, read_cap: int | None) -> tuple[tuple[BeforeStep, ...], tuple[AfterStep, ...]]:
    """The server's hooks, in the order they run on every request (``ReferenceFlask.before_steps``/``after_steps``).

    Each step takes what it needs from the config now (``functools.partial``: no look-up per request), and steps
    that cannot act for this config (faults and variants are fixed per app) are left out.
    """
    config = server.config
    caps = {f"{chat.bp.name}.create_chat_completion": read_cap} if read_cap else None
    cors_on = bool(config.profile.get("cors"))
    before: list[BeforeStep | None] = [
        # every fault a request consults lands in its trace: first of all
        config.fault_trace.begin_request if config.fault_trace is not None else None,
        functools.partial(refuse_oversized_body, config.max_body_bytes, caps),  # before anything reads the body
        functools.partial(cors.preflight, config) if cors_on else None,  # preflights: before auth and limits
        functools.partial(mock_controls.apply_mock_controls, mock_controls.default_controls(config.extra)),
        header_faults.reject_stainless if config.fault_questions_matter() else None,
        functools.partial(auth.authenticate, config, auth.open_ollama_base(config)),
        server.limits.count_request,  # only requests auth accepted count
        functools.partial(scripted.choose, server.scripts),  # after auth and the limiter: a counted request
    ]
    after: list[AfterStep | None] = [
        server.limits.add_headers,
        functools.partial(cors.add_cors_headers, config) if cors_on else None,
        functools.partial(add_request_id, config),
        unusual_header_case if config.variant("header-case") else None,
        scripted.own_headers,  # after every step that adds the server's own headers: the rule's win
        control.record_exchange,  # last: the journal sees the final status and every header
    ]
    return tuple(step for step in before if step is not None), tuple(step for step in after if step is not None)


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
