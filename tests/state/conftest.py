from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)
