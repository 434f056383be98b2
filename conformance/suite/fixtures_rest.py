"""Shared exchanges for the rest checks (session-cached so the run spends few requests)."""
