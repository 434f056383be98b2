"""The server's hooks as one ordered pipeline (``ReferenceFlask.before_steps``/``after_steps``), and Flask's own
hooks and signals around it, as an app embedding the server sees them."""

from __future__ import annotations

import flask

from reference_server.context import request_context
from tests.server.conftest import auth_headers, chat_body, make_client


def test_the_steps_run_in_their_documented_order():
    app = make_client("openai").application
    before = [getattr(s, "__name__", getattr(getattr(s, "func", None), "__name__", "")) for s in app.before_steps]
    after = [getattr(s, "__name__", getattr(getattr(s, "func", None), "__name__", "")) for s in app.after_steps]
    assert before == ["refuse_oversized_body", "preflight", "apply_mock_controls", "authenticate", "count_request",
                      "choose"]
    assert after == ["add_headers", "add_cors_headers", "add_request_id", "own_headers", "record_exchange"]
    traced = make_client("openai", trace_faults=True).application
    assert traced.before_steps[0] == traced.config["SERVER"].fault_trace.begin_request


def test_hooks_registered_the_flask_way_run_around_the_steps_as_hooks_registered_later_did():
    client = make_client("openai")
    app = client.application
    seen: dict[str, object] = {}

    @app.before_request
    def user_before():  # runs after the server's before steps: the key is known, the request counted
        ctx = request_context()
        seen["before"] = (ctx.api_key is not None, ctx.rate_limit is not None)

    @app.after_request
    def user_after(resp):  # runs before the server's after steps: no request id yet; the journal sees this header
        seen["after"] = request_context().request_id
        resp.headers["X-Embedder"] = "1"
        return resp

    started: list[str] = []

    def on_started(sender, **extra):
        started.append(flask.request.path)

    with flask.request_started.connected_to(on_started, app):
        resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=chat_body())
    assert resp.status_code == 200 and resp.headers["X-Embedder"] == "1" and resp.headers["x-request-id"]
    assert seen == {"before": (True, True), "after": None}
    assert started == ["/v1/chat/completions"]
    entry = client.get("/_mock/requests").get_json()["data"][-1]
    assert entry["response"]["headers"]["X-Embedder"] == "1"


def test_a_before_request_hook_answering_is_still_decorated_by_the_after_steps():
    client = make_client("openai")
    client.application.before_request(
        lambda: flask.Response(b"early", status=418) if flask.request.path.endswith("/completions") else None)
    resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=chat_body())
    assert resp.status_code == 418 and resp.get_data() == b"early"
    assert resp.headers["x-request-id"] and resp.headers["x-ratelimit-remaining-requests"]
    assert client.get("/_mock/requests").get_json()["data"][-1]["status"] == 418


def test_url_adapters_are_kept_per_environ_and_a_bad_host_is_refused_every_time():
    client = make_client("openai")
    app = client.application
    for _ in range(2):
        assert client.get("/healthz").status_code == 200
        bad = client.get("/healthz", headers={"Host": "x" * 64 + ".example"})  # IDNA: a label over 63 characters
        assert bad.status_code == 400
    assert len(app.url_adapters) == 1  # the good host's adapter only
    with app.test_request_context("/healthz", base_url="http://api.example:8080"):
        assert flask.url_for("control.healthz", _external=True) == "http://api.example:8080/healthz"
    with app.test_request_context("/healthz", base_url="http://other.example"):  # another host: its own adapter
        assert flask.url_for("control.healthz", _external=True) == "http://other.example/healthz"


def test_an_embedder_using_flask_sessions_still_gets_its_cookie():
    client = make_client("openai")
    app = client.application
    app.secret_key = "embedder-secret"

    @app.before_request
    def remember():
        flask.session["seen"] = True

    resp = client.get("/healthz")
    assert resp.status_code == 200 and "session=" in resp.headers.get("Set-Cookie", "")
