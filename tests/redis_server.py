"""A real ``redis-server`` on a free 127.0.0.1 port, for tests of the Redis state store (never a fake): the
package's ``reference_server.state.local_redis`` with pytest's rules. Without the binary, tests skip, except under
``CI`` where its absence is an error (``.ci/run`` installs it).
"""

from __future__ import annotations

import os

import pytest

from reference_server.state.local_redis import LocalRedis, free_port, redis_binary

__all__ = ["RedisServer", "free_port", "redis_server", "redis_url"]


def installed_binary() -> str:
    found = redis_binary()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs the Debian package redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer(LocalRedis):
    """``LocalRedis`` on the installed binary (the test skips without one)."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(installed_binary(), port)


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server for the test session (per xdist worker)."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url
