"""Fixtures for the reference server's own tests: an app per profile, its test client and auth headers."""

from __future__ import annotations

import pytest

from reference_server import ServerConfig, create_app


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
