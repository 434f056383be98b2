"""The server's own controls: the request journal, X-Mock-* request controls, and the /healthz and /_mock/*
endpoints."""
