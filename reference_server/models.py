"""Blueprint for the models surface (being written)."""

from flask import Blueprint

bp = Blueprint("models", __name__)
