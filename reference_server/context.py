"""Typed state: what one app owns (``Server``) and what one request carries (``RequestContext``).

Every request gets a ``RequestContext`` when Flask builds its request (``ReferenceFlask.request_context``), reached
from anywhere in the request with :func:`request_context`. Hooks fill it in request order: the X-Mock-* controls,
the accepted key and its settings, the key's policy and rate-limit snapshot, the ``x-request-id`` given to the
response. Views and streamed bodies read it; nothing about a request is kept on ``flask.g`` (which requests made
inside one outer app context share) or in the WSGI environ.

The per-app services (state store, limits, journal, attempt counts, answer cache, scripts) hang off ``RequestContext.server``, so a view
reaches the limiter through the request it serves, never through ``app.extensions``.

The lookup helpers resolve Flask's proxies once per question: each attribute read through the ``request`` or
``current_app`` proxy costs about 2 µs (werkzeug binds a new lookup on every access), twenty times the read itself.
This module imports nothing of the server at run time: it sits below every other module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Request, current_app, request

if TYPE_CHECKING:
    from reference_server.config import ServerConfig
    from reference_server.control.mock_controls import AttemptCounter, MockControls
    from reference_server.mock.answer_cache import AnswerCache
    from reference_server.mock.usage import PromptCache
    from reference_server.policy.limits import KeyPolicy, Limits, Snapshot
    from reference_server.scripting import ScriptEngine, Selection
    from reference_server.state.base import Journal, StateStore

_current_app = current_app._get_current_object
_current_request = request._get_current_object


@dataclass(eq=False)
class Server:
    """What one app owns besides its routes, built once by ``create_app``."""

    config: ServerConfig
    state: StateStore  # where counters, journal, rate-limit windows and rules live (memory or Redis)
    limits: Limits  # per-key counters and policies (policy/limits.py)
    journal: Journal  # the last requests answered (GET /_mock/requests), kept in the state store
    attempts: AttemptCounter  # X-Mock-Fail-Times attempt counts, kept in the state store
    answers: AnswerCache  # finished answers by request bytes (mock/answer_cache.py)
    scripts: ScriptEngine  # scripted rules (reference_server/scripting, docs/scripts.md)
    prompt_cache: PromptCache  # prompt prefixes the emulated provider cache holds (mock/usage.py)


@dataclass(slots=True, eq=False)
class RequestContext:
    """The state of one request, filled in by the hooks in the order they run."""

    server: Server
    request: Request
    mock: MockControls | None = None  # X-Mock-* controls (control/mock_controls.py); None before they are read
    api_key: str | None = None  # the key auth accepted; None on open paths and before auth
    key: dict[str, Any] | None = None  # that key's settings (tier, balance, allowed_models, ...)
    policy: KeyPolicy | None = None  # the key's limits policy, worked out once per request
    rate_limit: Snapshot | None = None  # the key's counters after this request, for the rate-limit headers
    limits_traced: bool = False  # fault tracing: the limiter already coupled this request to its key's channel
    request_id: str | None = None  # the x-request-id the response carries (None when a fault leaves it out)
    script: Selection | None = None  # the scripted rule answering this request (mock/scripted.py)
    script_nonce: str | None = None  # the request's [[mock:<nonce>]] marker, when it carries one
    script_attempt: int | None = None  # which attempt under that nonce this request is (1, 2, ...)


class ReferenceRequest(Request):
    """Flask's request with the server's typed per-request state attached."""

    context: RequestContext


def request_context() -> RequestContext:
    """The state of the request being served (AttributeError/RuntimeError outside one)."""
    return _current_request().context


def server_config() -> ServerConfig:
    """The ``ServerConfig`` of the app handling the current request (RuntimeError outside an app context)."""
    return _current_app().config["SERVER"]


def fault(requirement: Any) -> bool:
    """``server_config().fault(requirement)``: True when the server must break this requirement."""
    return _current_app().config["SERVER"].fault(requirement)


def current_request() -> ReferenceRequest:
    """The request being handled: ``flask.request`` resolved once."""
    return _current_request()
