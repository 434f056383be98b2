"""Suite fixtures. The core ones (``profile``, ``target``, ``client``, ``make_client``, ``expect``,
``requirements``, ``api_key``, ``conformance``) come from the plugin so that any suite can use them; the fixtures
here only make sense for the bundled checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class ModelChoice:
    """Model ids the checks use: ``--gw-model`` / ``--gw-embedding-model`` or the profile's defaults."""

    chat: str
    embedding: str | None


@pytest.fixture(scope="session")
def models(conformance, profile) -> ModelChoice:
    """The chat (and embedding) model to exercise."""
    opts = conformance.options
    return ModelChoice(chat=opts.model or profile.get("models.default_chat"),
                       embedding=opts.embedding_model or profile.get("models.default_embedding"))


@pytest.fixture(scope="session")
def chat_model(models: ModelChoice) -> str:
    """Shortcut: the chat model id."""
    return models.chat


@pytest.fixture
def models_list(client, expect):
    """``GET {base}/models`` parsed; stops the case (MODELS-001 fatal) when it is not a JSON list object.

    Only for tests that carry MODELS-001 in their marker.
    """
    response = client.get("/models")
    expect.fatal("MODELS-001", response.status_code == 200, expected="HTTP 200",
                 received=f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        body = response.json()
    except ValueError:
        body = None
    expect.fatal("MODELS-001", isinstance(body, dict) and body.get("object") == "list"
                 and isinstance(body.get("data"), list),
                 expected='{"object": "list", "data": [...]}', received=body if body is not None else response.text)
    return body["data"]


# Shared exchanges of each group of checks, declared to the run's exchange store (conformance.exchanges).
from conformance.suite.fixtures_chat import *  # noqa: E402,F401,F403
from conformance.suite.fixtures_rest import *  # noqa: E402,F401,F403
from conformance.suite.fixtures_stream import *  # noqa: E402,F401,F403
