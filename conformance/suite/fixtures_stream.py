"""Shared exchanges for the stream checks (session-cached so the run spends few requests)."""
