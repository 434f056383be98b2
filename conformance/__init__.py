"""Conformance suite: pytest plugin and checks for OpenAI-compatible LLM gateways."""
