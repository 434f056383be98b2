"""Per-request headers handed to the WSGI server directly (wire/headers.py), and the hooks bound per app."""

from __future__ import annotations

from flask import Flask, Response

from reference_server.control.journal import environ_headers
from reference_server.wire.headers import ReferenceResponse
from tests.server.conftest import auth_headers, chat_body, make_client

PER_REQUEST = ("x-request-id", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
               "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
               "x-ratelimit-reset-tokens", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers")


def test_a_chat_answer_carries_each_per_request_header_once_after_its_own_headers(client, headers):
    resp = client.post("/v1/chat/completions", headers=headers, json=chat_body())
    names = [name.lower() for name, _ in resp.headers.items()]
    for name in PER_REQUEST:
        assert names.count(name.lower()) == 1, name
    assert names.index("content-type") < names.index("x-request-id")


def test_errors_and_streams_carry_them_too(client, headers):
    error = client.post("/v1/chat/completions", headers=headers, json={"model": "gpt-4o-mini"})
    stream = client.post("/v1/chat/completions", headers=headers, json=chat_body(stream=True))
    for resp in (error, stream):
        assert resp.headers["x-request-id"].startswith("req_")
        assert int(resp.headers["x-ratelimit-remaining-requests"]) >= 0
    assert stream.get_data().endswith(b"data: [DONE]\n\n")


def test_open_paths_get_no_rate_limit_headers(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and "x-ratelimit-limit-requests" not in resp.headers


def _app_adding(*groups: tuple[str, list[tuple[str, str]]]) -> Flask:
    app = Flask(__name__)
    app.response_class = ReferenceResponse

    @app.get("/")
    def index():
        resp = Response(b"ok", headers={"X-Own": "1"})  # a plain Flask response: the app turns it into its class
        return resp

    @app.after_request
    def send(resp: ReferenceResponse) -> ReferenceResponse:
        for group, headers in groups:
            resp.send(group, headers)
        return resp

    return app


def test_a_group_added_again_replaces_what_it_set_before():
    app = _app_adding(("a", [("X-A", "1")]), ("b", [("X-B", "2")]), ("a", [("X-A", "3")]))
    resp = app.test_client().get("/")
    assert resp.headers.getlist("X-A") == ["3"] and resp.headers["X-B"] == "2" and resp.headers["X-Own"] == "1"


def test_without_sent_groups_the_headers_pass_unchanged():
    assert list(_app_adding().test_client().get("/").headers.keys()) == ["X-Own", "Content-Type", "Content-Length"]


def test_the_groups_follow_the_response_own_headers_to_the_wsgi_server():
    resp = ReferenceResponse(b"x", headers={"X-Own": "1"})
    resp.send("g", [("X-G", "1")])
    _, status, headers = resp.get_wsgi_response({"REQUEST_METHOD": "GET"})
    assert status == "200 OK" and headers[0] == ("X-Own", "1") and headers[-1] == ("X-G", "1")


def test_header_case_variant_upper_cases_them_too():
    client = make_client("openai", variants=["header-case"])
    resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=chat_body())
    names = [name for name, _ in resp.headers.items()]
    assert "X-RATELIMIT-REMAINING-TOKENS" in names and "ACCESS-CONTROL-ALLOW-ORIGIN" in names


def _hook_names(app: Flask, kind: str) -> set[str]:
    funcs = app.before_steps if kind == "before" else app.after_steps
    return {getattr(f, "__name__", getattr(getattr(f, "func", None), "__name__", "")) for f in funcs}


def test_hooks_that_cannot_act_for_a_config_are_not_installed():
    plain = make_client("openai").application
    assert "reject_stainless" not in _hook_names(plain, "before")
    assert "unusual_header_case" not in _hook_names(plain, "after")
    assert "reject_stainless" in _hook_names(make_client("openai", faults=["HEADERS-007"]).application, "before")
    assert "reject_stainless" in _hook_names(make_client("openai", trace_faults=True).application, "before")
    assert {"preflight"} <= _hook_names(plain, "before")
    no_cors = make_client("unifiedai")
    assert "preflight" not in _hook_names(no_cors.application, "before")
    resp = no_cors.post("/v1/chat/completions", headers=auth_headers(no_cors), json=chat_body())
    assert resp.headers["x-request-id"] and "Access-Control-Allow-Origin" not in resp.headers


def test_journal_keeps_request_headers_only_and_reads_each_environ_layout_once():
    environ = {"REQUEST_METHOD": "POST", "HTTP_X_B": "2", "HTTP_AUTHORIZATION": "Bearer k", "CONTENT_TYPE": "a/b",
               "CONTENT_LENGTH": "", "wsgi.input": object(), "custom.server.object": object(), "HTTP_ACCEPT": "*/*"}
    expected = {"CONTENT_TYPE": "a/b", "HTTP_ACCEPT": "*/*", "HTTP_AUTHORIZATION": "Bearer k", "HTTP_X_B": "2"}
    assert environ_headers(environ) == expected
    # the same layout again, other values: the values are read afresh, an empty content header still left out
    environ.update(HTTP_X_B="3", CONTENT_TYPE="", CONTENT_LENGTH="7")
    assert environ_headers(environ) == {"CONTENT_LENGTH": "7", "HTTP_ACCEPT": "*/*", "HTTP_AUTHORIZATION": "Bearer k",
                                        "HTTP_X_B": "3"}


def test_the_journal_shows_request_headers_sorted_by_environ_key(client, headers):
    client.post("/v1/chat/completions", headers={**headers, "X-Zeta": "1", "X-Alpha": "2"}, json=chat_body())
    shown = list(client.get("/_mock/requests").get_json()["data"][-1]["headers"])
    environ_key = {name: ("" if name.startswith("Content-") else "HTTP_") + name.upper().replace("-", "_")
                   for name in shown}
    assert shown == sorted(shown, key=environ_key.get) and "X-Zeta" in shown


def test_requests_inside_one_outer_app_context_keep_their_own_limits_and_ids():
    keys = {"sk-limit-five": {"requests_per_minute": 5}, "sk-limit-seven": {"requests_per_minute": 7}}
    client = make_client("openai", keys=keys)
    app = client.application
    with app.app_context():  # the requests below share this app context (and its flask.g)
        five = client.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": "Bearer sk-limit-five"})
        seven = client.post("/v1/chat/completions", json=chat_body(),
                            headers={"Authorization": "Bearer sk-limit-seven"})
    assert (five.headers["x-ratelimit-limit-requests"], seven.headers["x-ratelimit-limit-requests"]) == ("5", "7")
    entries = client.get("/_mock/requests").get_json()["data"]
    assert [e["request_id"] for e in entries[-2:]] == [five.headers["x-request-id"], seven.headers["x-request-id"]]


def test_the_own_headers_reach_the_wsgi_server_as_werkzeug_would_send_them():
    from werkzeug.wrappers import Response as WerkzeugResponse

    def variants():
        yield ReferenceResponse(b'{"a":1}', mimetype="application/json")
        yield ReferenceResponse(b"", status=204)
        yield ReferenceResponse(b"x", status=304, headers={"Content-Language": "en", "ETag": "1"})
        yield ReferenceResponse(b"moved", status=302, headers={"Location": "/v1/models?ü=1"})
        yield ReferenceResponse(b"x", headers={"Content-Location": "/ä"})
        yield ReferenceResponse(iter([b"a", b"b"]), mimetype="text/event-stream")
        listed = ReferenceResponse([b"ab", b"cd"], status=503)
        del listed.headers["Content-Length"]
        yield listed
        upper = ReferenceResponse(b"abc", headers={"X-UPPER": "1"})
        yield upper

    for method in ("POST", "HEAD"):
        environ = {"REQUEST_METHOD": method, "wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "80",
                   "PATH_INFO": "/v1/chat"}
        for ours, theirs in zip(variants(), variants(), strict=True):
            _, status, headers = ours.get_wsgi_response(environ)
            _, their_status, their_headers = WerkzeugResponse.get_wsgi_response(theirs, environ)
            assert (status, headers) == (their_status, their_headers)
