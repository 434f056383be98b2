"""Deterministic reference implementation of the gateway contract in ``spec/``, with faults on demand."""

from reference_server.app import create_app
from reference_server.config import ServerConfig

__all__ = ["create_app", "ServerConfig"]
