"""Control endpoints for client developers: health, the request journal, counters reset; and the hook that records
every exchange in the journal (one entry per upstream attempt, with what was sent back). The X-Mock-* request
controls are in ``mock_controls``, the scripted rules' endpoints in ``scripts``."""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, jsonify, request

from reference_server.context import RequestContext, request_context
from reference_server.control import mock_controls
from reference_server.control.journal import MAX_BODY_CHARS, environ_headers, usage_of
from reference_server.mock import scripted
from reference_server.scripting.matching import ENDPOINT_ROUTES
from reference_server.wire.headers import ReferenceResponse

bp = Blueprint("control", __name__)
# This process's id for the journal (a system call each time it is asked), refreshed in a forked worker.
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def record_exchange(ctx: RequestContext, resp: ReferenceResponse) -> ReferenceResponse:
    """The app's last after step: record the exchange in the app's journal; credentials are redacted when the
    journal is read."""
    req = ctx.request
    path = req.path
    if mock_controls.is_control_path(path):
        return resp
    body = req.get_data(cache=True)
    server = ctx.server
    journal = server.journal
    # Raw facts only, in the order ``journal.render`` shows them: it formats them when somebody reads the journal.
    entry = {
        "time": time.time(),
        "method": req.method,
        "path": path,
        "query": req.query_string.decode("latin-1"),
        "raw_environ": environ_headers(req.environ),
        "raw_body": body if len(body) <= MAX_BODY_CHARS else None,  # a full ring of huge bodies stays bounded
        "body_bytes": len(body),
        "status": resp.status_code,
        "request_id": ctx.request_id,
        "route": ENDPOINT_ROUTES.get(req.endpoint or ""),
        "pid": _pid,  # which process answered (several gunicorn workers or hosts share a Redis journal)
        # what was sent back, rendered when read: the response's headers and the server's own wire headers
        "raw_response_headers": (resp.headers, getattr(resp, "sent_groups", None) or {}),
    }
    trace = server.config.fault_trace
    if trace is not None:  # with fault tracing, the live set of faults consulted (rendered by ``journal.render``)
        consults = trace.current()
        if consults is not None:
            entry["trace"] = consults
    if ctx.script_nonce is not None or ctx.script is not None:
        entry.update(scripted.journal_fields(ctx))
    if not resp.is_streamed:
        answer = resp.get_data() if resp.mimetype == "application/json" else b""
        if len(answer) <= MAX_BODY_CHARS:  # parsed for its usage when somebody reads the journal
            entry["raw_response_body"] = answer
        else:  # a large answer (an embeddings batch) is not kept: only its usage, read now
            entry["response_usage"] = usage_of(answer)
        journal.record(entry)
    elif resp.mimetype == "text/event-stream":  # chunks counted as they leave; a shared journal records at the end
        stats = entry["stream"] = {}
        shared = getattr(journal, "url", None) is not None
        resp.response = scripted.count_frames(resp.response, stats, (lambda: journal.record(entry)) if shared else None)
        if not shared:
            journal.record(entry)
    else:
        journal.record(entry)
    return resp


@bp.get("/healthz")
def healthz():
    """Liveness plus the profile being served."""
    return jsonify({"status": "ok", "profile": request_context().server.config.profile.name})


@bp.post("/_mock/reset")
def reset():
    """Reset rate-limit, quota and balance counters, fail-times attempt counts, scripted rules, the journal and the prompt cache."""
    server = request_context().server
    server.limits.reset()
    server.scripts.clear()
    server.state.reset_counters()
    server.journal.clear()
    server.prompt_cache.reset()  # mock/usage.py's emulated provider cache
    return jsonify({"status": "reset"})


@bp.get("/_mock/requests")
def list_requests():
    """The last N journal records (``?limit=N``), oldest first; ``?nonce=`` keeps the requests carrying that nonce."""
    server = request_context().server
    limit = request.args.get("limit", type=int)
    nonce = request.args.get("nonce")
    trace = server.config.fault_trace
    if trace is not None:  # this answer shows earlier requests: it depends on whatever they consulted
        trace.inherit_everything()
    if nonce is not None:
        entries = [e for e in server.journal.entries() if e.get("nonce") == nonce]
        entries = entries[-limit:] if limit and limit > 0 else entries
    else:
        entries = server.journal.entries(limit if limit and limit > 0 else None)
    return jsonify({"object": "list", "data": entries})


@bp.delete("/_mock/requests")
def clear_requests():
    request_context().server.journal.clear()
    return Response(status=204)
