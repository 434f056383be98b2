"""Blueprint for the embeddings surface (being written)."""

from flask import Blueprint

bp = Blueprint("embeddings", __name__)
