"""``/_mock/scripts``: register, list and remove scripted rules (docs/scripts.md), and the state store's glue.

``POST {"rules": [...]}`` -> 201 ``{"rules": [{"id": ...}]}``; a bad rule is a 400 envelope whose ``param`` names
the rule index and field (``rules[1].respond.status``). ``GET`` lists, ``DELETE`` clears, ``DELETE /<id>`` removes
one. ``POST /_mock/reset`` (endpoints.py) clears rules too.

``open_state`` opens the app's state store (``ServerConfig.state``), ``load_startup_rules`` registers the rules of
``--script`` files, and ``init_app`` answers :class:`StateStoreUnavailable` with a 503 envelope naming the store,
from any request. The engine is the app's ``Server.scripts`` (reached through the request context).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, jsonify, request

from reference_server.config import ServerConfig
from reference_server.context import request_context
from reference_server.scripting import RuleError, ScriptEngine
from reference_server.state import StateStore, StateStoreUnavailable, open_store
from reference_server.wire.errors import ApiError, error_response

bp = Blueprint("scripts", __name__)
log = logging.getLogger(__name__)


@bp.post("/_mock/scripts")
def add_scripts():
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, 'Body must be JSON: {"rules": [...]}.', param="rules")
    try:
        rules = request_context().server.scripts.add(data)
    except RuleError as err:
        raise ApiError(400, f"Invalid script: {err}", param=err.path, code="invalid_rule") from None
    return jsonify({"rules": [{"id": rule.id} for rule in rules]}), 201


@bp.get("/_mock/scripts")
def list_scripts():
    return jsonify({"rules": request_context().server.scripts.listing()})


@bp.delete("/_mock/scripts")
def clear_scripts():
    request_context().server.scripts.clear()
    return Response(status=204)


@bp.delete("/_mock/scripts/<rule_id>")
def delete_script(rule_id: str):
    if not request_context().server.scripts.delete(rule_id):
        raise ApiError(404, f"No scripted rule with id '{rule_id}'.", param="id")
    return Response(status=204)


def unavailable(exc: StateStoreUnavailable) -> Response:
    """503 in the OpenAI envelope naming the state store (never a traceback); the next request tries again."""
    log.warning("%s", exc)
    return error_response(ApiError(503, f"The reference server's state store ({exc.url}) is unavailable: "
                                        f"{exc.reason}. Retry when it is back.", code="state_store_unavailable"))


def load_startup_rules(engine: ScriptEngine, rules: list[dict]) -> None:
    """Register ``--script`` rules once per store: a shared store already holding a rule's id keeps it (every
    gunicorn worker and every host loads the same file), so ids are given to rules that lack one by position."""
    known = {raw["id"] for raw in engine.store.rule_list()}
    fresh = [{**raw, "id": raw.get("id") or f"script-{index}"} for index, raw in enumerate(rules)]
    fresh = [raw for raw in fresh if raw["id"] not in known]
    if fresh:
        try:
            engine.add(fresh)
        except RuleError as err:
            if err.field != "id":  # another worker registered the same ids a moment ago: nothing to do
                raise


def open_state(config: ServerConfig) -> StateStore:
    """Open ``config.state`` (memory when unset); the first thing ``create_app`` builds."""
    return open_store(config.state, namespace=config.profile.name)


def init_app(app: Flask) -> None:
    """Answer a :class:`StateStoreUnavailable` raised by any request with a 503 envelope."""
    app.register_error_handler(StateStoreUnavailable, unavailable)
