"""Fixtures of the relay tests: one reference server upstream per module, relays started on demand."""

from __future__ import annotations

import pytest

from tests.relay.harness import Relays, Upstream


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def relays(upstream):
    pool = Relays(upstream)
    yield pool
    pool.stop()
