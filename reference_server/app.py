"""Application factory: one blueprint per surface, shared error handling."""

from __future__ import annotations

from flask import Flask

from reference_server import auth, chat, control, embeddings, errors, limits, models, ollama
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
    # Hook order matters: control (journal, X-Mock-* headers) sees every request first, then auth, then limits.
    control.init_app(app) if hasattr(control, "init_app") else None
    auth.init_app(app)
    limits.init_app(app)
    for module in (control, models, chat, embeddings, ollama):
        app.register_blueprint(module.bp)
    return app
