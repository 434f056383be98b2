"""Application factory: one blueprint per surface, shared error handling."""

from __future__ import annotations

from flask import Flask

from reference_server import errors
from reference_server.config import ServerConfig


def create_app(config: ServerConfig | None = None) -> Flask:
    """Build the reference server for one profile. ``config`` defaults to the strict ``openai`` profile."""
    config = config or ServerConfig.for_profile("openai")
    app = Flask(__name__)
    app.config["SERVER"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.compact = True
    errors.init_app(app)
    # Blueprints are registered here as they are written (chat, models, embeddings, ollama, control).
    return app
