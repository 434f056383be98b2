"""Blueprint for the chat surface (being written)."""

from flask import Blueprint

bp = Blueprint("chat", __name__)
