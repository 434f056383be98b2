"""Shared exchanges for the chat checks (session-cached so the run spends few requests)."""
