"""llm-gateway-conformance: the pytest plugin and the conformance suite.

PYTEST_DONT_REWRITE: ``llm-conformance`` imports this package before pytest starts, so pytest could not rewrite its
asserts anyway (it warned so on every run); the plugin grades through ``expect``, never through bare asserts.
"""
