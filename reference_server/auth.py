"""auth hooks (being written)."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Install this module's request hooks."""
