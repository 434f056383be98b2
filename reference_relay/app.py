"""The relay's WSGI app: client auth, the four forwarded routes, and the seams applied at their fixed points."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from reference_relay import cors, faults, variants
from reference_relay.config import RelayConfig
from reference_relay.seams import Exchange, Failure, Policy, Seams
from reference_relay.stream import encode, upstream_events
from reference_relay.upstream import Upstream, envelope, failure, relayed_headers

JSON = "application/json"


class ClientError(Exception):
    """A request the relay refuses itself (before any upstream attempt)."""

    def __init__(self, status: int, message: str, etype: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, envelope(message, etype, code, param)


class Relay:
    """Per-app state: config, seams, upstream client."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.seams = Seams()
        faults.install(self.seams, config.faults)
        variants.install(self.seams, config.variants, config)
        self.upstream = Upstream()

    # -- the client side ------------------------------------------------------------------------------------
    def exchange(self, route: str) -> Exchange:
        """Authenticate the client (401 first, like any gateway), then read the JSON body of a POST route."""
        authorization = request.headers.get("Authorization")
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not self.config.accepts_client_key(key.strip()):
            raise ClientError(401, "Missing or invalid API key. Send Authorization: Bearer <key>.",
                              code="invalid_api_key")
        body = None
        if request.method == "POST":
            if request.mimetype != JSON and not request.mimetype.endswith("+json"):
                raise ClientError(415, f"Unsupported Content-Type {request.mimetype or 'none'!r}: send "
                                  "application/json.")
            body = request.get_json(silent=True, force=True)
            if not isinstance(body, dict):
                raise ClientError(400, "The request body must be a JSON object.")
        stream = route == "chat" and body.get("stream") is True
        return Exchange(self.config, route, body, authorization, stream=stream)

    def policy(self, ex: Exchange) -> Policy:
        c = self.config
        base = Policy(c.max_attempts, True, c.upstream_timeout, c.connect_timeout, c.max_retry_wait)
        return self.seams.apply("policy", base, ex)

    def outbound_headers(self, ex: Exchange) -> dict[str, str]:
        passthrough = self.config.profile.get("upstream.key_passthrough") is True
        if passthrough:  # documented passthrough: the caller's own credential, and none when the caller sent none
            auth = {"Authorization": ex.client_authorization} if ex.client_authorization else {}
        else:
            auth = {"Authorization": f"Bearer {self.config.upstream_key}"}
        headers = {**auth, "Content-Type": JSON, "Accept-Encoding": "identity", "User-Agent": "reference-relay"}
        if ex.stream:
            headers["Accept"] = "text/event-stream"
        if self.config.forward_mock_headers:  # test-only: see RelayConfig
            headers.update({k: v for k, v in request.headers.items() if k.lower().startswith("x-mock-")})
        return self.seams.apply("outbound_headers", headers, ex)

    # -- answers ----------------------------------------------------------------------------------------------
    def client_headers(self, ex: Exchange | None, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        headers = list(extra)
        if not any(name.lower() == "x-request-id" for name, _ in headers):
            headers.append(("x-request-id", f"req_relay_{uuid.uuid4().hex}"))
        return self.seams.apply("headers", headers, ex) if ex is not None else headers

    def respond_json(self, ex: Exchange | None, status: int, body: Any, extra=()) -> Response:
        resp = Response(_dumps(body), status=status, content_type=JSON)
        for name, value in self.client_headers(ex, list(extra)):
            resp.headers[name] = value
        return resp

    def respond_failure(self, ex: Exchange, fail: Failure) -> Response:
        fail = self.seams.apply("failure", fail, ex)
        payload = fail.raw if fail.body is None else _dumps(fail.body)
        resp = Response(payload, status=fail.status, content_type=fail.content_type)
        for name, value in self.client_headers(ex, fail.headers):
            resp.headers[name] = value
        return resp

    def forward(self, ex: Exchange, method: str, path: str, body: dict[str, Any] | None) -> Response:
        if body is not None:
            body = dict(body)
            if "model" in body:
                body["model"] = self.config.to_upstream_model(body["model"])
            body = self.seams.apply("request", body, ex)
        outcome = self.upstream.send(ex, self.policy(ex), method, self.config.upstream_url(path),
                                     self.outbound_headers(ex), body)
        if isinstance(outcome, Failure):
            return self.respond_failure(ex, outcome)
        extra = relayed_headers(outcome.headers)
        if outcome.headers.get("content-type", "").startswith("text/event-stream"):
            return self.respond_stream(ex, outcome, extra)
        try:
            answer = _loads(outcome.read())
        except (httpx.TransportError, ValueError) as exc:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "server_error"
            return self.respond_failure(ex, failure(ex, kind, outcome.status_code))
        finally:
            outcome.close()
        answer = self.map_models(answer)
        return self.respond_json(ex, outcome.status_code, self.seams.apply("answer", answer, ex), extra)

    def respond_stream(self, ex: Exchange, resp: httpx.Response, extra: list[tuple[str, str]]) -> Response:
        events = self.seams.stream("chunks", upstream_events(resp, self.config.to_client_model), ex)
        frames: Iterator[bytes] = self.seams.stream("bytes", encode(events), ex)
        out = Response(frames, status=resp.status_code, content_type="text/event-stream; charset=utf-8")
        out.headers["Cache-Control"] = "no-cache"
        out.headers["X-Accel-Buffering"] = "no"
        for name, value in self.client_headers(ex, extra):
            out.headers[name] = value
        return out

    def map_models(self, answer: Any) -> Any:
        """Upstream model names back to the client's names (answers, chunks, model lists)."""
        if not isinstance(answer, dict):
            return answer
        if "model" in answer:
            answer["model"] = self.config.to_client_model(answer["model"])
        if answer.get("object") == "model" and "id" in answer:
            answer["id"] = self.config.to_client_model(answer["id"])
        if answer.get("object") == "list" and isinstance(answer.get("data"), list):
            answer["data"] = [self.map_models(item) for item in answer["data"]]
        return answer


def _dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _loads(raw: bytes) -> Any:
    return json.loads(raw)


def create_relay_app(config: RelayConfig) -> Flask:
    """The relay as a Flask app; ``app.extensions["relay"]`` holds its state."""
    faults.validate(config.faults)
    variants.validate(config.variants)
    app = Flask("reference_relay")
    relay = app.extensions["relay"] = Relay(config)
    base = config.base_path
    cors.init_app(app, bool(config.profile.get("cors")))

    @app.post(f"{base}/chat/completions")
    def chat():
        ex = relay.exchange("chat")
        return relay.forward(ex, "POST", "/chat/completions", ex.client_body)

    @app.post(f"{base}/embeddings")
    def embeddings():
        ex = relay.exchange("embeddings")
        return relay.forward(ex, "POST", "/embeddings", ex.client_body)

    @app.get(f"{base}/models")
    def models():
        return relay.forward(relay.exchange("models"), "GET", "/models", None)

    @app.get(f"{base}/models/<path:model>")
    def model(model: str):
        upstream_name = relay.config.to_upstream_model(model)
        return relay.forward(relay.exchange("model"), "GET", f"/models/{upstream_name}", None)

    @app.get("/healthz")
    def healthz():
        return relay.respond_json(None, 200, {"status": "ok", "relay": True})

    @app.errorhandler(ClientError)
    def client_error(exc: ClientError):
        return relay.respond_json(None, exc.status, exc.body)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        etype = "invalid_request_error" if (exc.code or 500) < 500 else "server_error"
        allow = [(k, v) for k, v in exc.get_headers() if k.lower() == "allow"]  # 405 names the allowed methods
        return relay.respond_json(None, exc.code or 500, envelope(exc.description or exc.name, etype), allow)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # never a traceback to the client
        app.logger.exception("relay error")
        return relay.respond_json(None, 500, envelope("The gateway failed to handle the request.", "server_error"))

    return app
