"""Who may be served and how much: API key authentication, the key file, rate limits, quotas, balances and
model allowlists."""
