"""Schemathesis fuzz mode of the suite (being written)."""
