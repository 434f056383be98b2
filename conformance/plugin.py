"""pytest plugin entry point (being written)."""


def pytest_addoption(parser):
    parser.getgroup("llm-gateway-conformance", "LLM gateway conformance")
