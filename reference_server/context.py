"""The running app's ``ServerConfig``, reached without ``current_app``'s per-attribute proxy lookups.

Every surface asks "is fault X on?" dozens of times per request. ``current_app.config`` resolves the proxy through
werkzeug's descriptor machinery on each access (about a fifth of a request's CPU when counted); calling the proxy's
documented ``_get_current_object()`` once per question skips that and still follows the active app context, so
several apps (tests, the negative-control matrix) can live in one process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

if TYPE_CHECKING:
    from flask import Request
    from flask.ctx import _AppCtxGlobals

    from reference_server.config import ServerConfig

_current_app = current_app._get_current_object
_current_request = request._get_current_object
_current_g = g._get_current_object


def server_config() -> ServerConfig:
    """The ``ServerConfig`` of the app handling the current request (RuntimeError outside an app context)."""
    return _current_app().config["SERVER"]


def fault(requirement: Any) -> bool:
    """``server_config().fault(requirement)``: True when the server must break this requirement."""
    return _current_app().config["SERVER"].fault(requirement)


def extension(name: str) -> Any:
    """``current_app.extensions[name]`` (the journal, the rate limiter, the answer cache, ...)."""
    return _current_app().extensions[name]


def current_request() -> Request:
    """The request being handled: ``flask.request`` resolved once.

    Each attribute read through the ``request`` proxy costs about 2 µs (werkzeug binds a new lookup on every
    access), twenty times the read itself; hooks that run on every request resolve it once and read the object.
    """
    return _current_request()


def request_state() -> _AppCtxGlobals:
    """``flask.g`` resolved once (what hooks leave for later hooks: the key, rate-limit snapshot, X-Mock-* controls)."""
    return _current_g()
