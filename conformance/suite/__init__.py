"""The conformance checks, one module per area; every test names its requirement IDs in a marker."""
