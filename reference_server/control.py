"""Blueprint for the control surface (being written)."""

from flask import Blueprint

bp = Blueprint("control", __name__)
