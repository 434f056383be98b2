"""Fixtures for the reference server's own tests: an app per profile, its test client and auth headers."""

from __future__ import annotations

import pytest

from reference_server import ServerConfig, create_app
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures: a real redis-server per session)


def make_client(profile: str = "openai", **kwargs):
    """A Flask test client for ``profile`` with the given ServerConfig options (faults, variants, keys, ...)."""
    app = create_app(ServerConfig.for_profile(profile, **kwargs))
    return app.test_client()


def auth_headers(client) -> dict[str, str]:
    """Authorization header with the profile's test key."""
    return {"Authorization": f"Bearer {client.application.config['SERVER'].profile.test_key}"}


@pytest.fixture
def client():
    """Test client of the strict openai profile."""
    return make_client("openai")


@pytest.fixture
def headers(client):
    return auth_headers(client)


@pytest.fixture
def post_chat(client, headers):
    """POST a chat completion body to the openai profile; returns the response."""

    def _post(body, **kwargs):
        return client.post("/v1/chat/completions", json=body, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)

    return _post


def assert_envelope(resp, status: int, *, param=None, code=None) -> dict:
    """The response is ``status`` with the four-key error envelope (and the given param / code); returns the error."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    error = resp.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def sse_data(raw: bytes | str) -> list[str]:
    """The data of every event of an SSE body (LF, CRLF or CR line ends; comments skipped)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def stream_chunks(resp) -> list[dict]:
    """The JSON chunks of a chat stream, asserting it ends with [DONE]."""
    import json

    events = sse_data(resp.get_data())
    assert events and events[-1] == "[DONE]", events[-3:]
    return [json.loads(e) for e in events[:-1]]


def chat_body(content: str = "Hello there", **extra) -> dict:
    """A minimal valid chat request for the openai profile."""
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}
