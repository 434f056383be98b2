"""Blueprint for the ollama surface (being written)."""

from flask import Blueprint

bp = Blueprint("ollama", __name__)
