"""gunicorn settings for the reference server: ``gunicorn -c python:reference_server.gunicorn_conf
'reference_server.wsgi:app'`` (by module name: works from an installed package; a checkout may also give the path).

One worker process with threads (``gthread``) by default: with the default in-process state (``memory``), rate-limit
counters, the request journal, fail-times attempts and scripted rules live in each process, so several processes
would each count on their own. With ``REFERENCE_SERVER_STATE=redis://...`` they live in Redis and
``REFERENCE_SERVER_WORKERS`` (default 1) worker processes, on this host or others, share them exactly. Threads keep
long streams from blocking other requests. ``REFERENCE_SERVER_BIND`` (default ``127.0.0.1:8080``) and
``REFERENCE_SERVER_THREADS`` (default 32) tune it; ``REFERENCE_SERVER_ACCESS_LOG`` (a path, or ``-`` for stdout)
turns the access log on.
"""

import os

bind = os.environ.get("REFERENCE_SERVER_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("REFERENCE_SERVER_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("REFERENCE_SERVER_THREADS", "32"))
# Streams may be paced or stalled on purpose (X-Mock-Stream-Stall-After): give them room before a worker restart.
timeout = 600
graceful_timeout = 5
# The access log costs a fifth of a worker under load (a lock and a write per request): opt in with a path or "-".
accesslog = os.environ.get("REFERENCE_SERVER_ACCESS_LOG") or None


def post_worker_init(worker):
    """Once the worker has loaded the app: move everything loaded so far (modules, the spec, profiles, routes) out of
    the garbage collector's sight with ``gc.freeze()``. Those objects live as long as the worker, yet each full
    collection walked all of them again; the request journal keeps enough objects alive to trigger one every few
    thousand requests."""
    import gc

    gc.freeze()


def on_starting(server):
    """Check the configuration once in the master, before any worker forks: a state store that cannot be reached
    (or a malformed script file) stops gunicorn with the one line ``reference_server.wsgi`` prints, instead of
    workers failing to boot one after another (gunicorn's arbiter then halts with a traceback of its own)."""
    import sys

    from reference_server.settings import config_from_env
    from reference_server.state import StateStoreUnavailable, open_store

    try:
        config = config_from_env()
        open_store(config.state, namespace=config.profile.name).close()
    except (ValueError, OSError, StateStoreUnavailable) as exc:
        print(f"reference_server: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
