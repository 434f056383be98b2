"""WSGI entry point for production servers: ``gunicorn -c python:reference_server.gunicorn_conf
'reference_server.wsgi:app'`` (the config by module name, so it works from an installed package too). The
configuration comes from ``REFERENCE_SERVER_*`` variables (see ``settings``).

A configuration that cannot start (an unreachable ``REFERENCE_SERVER_STATE``, a malformed script file) prints one
line naming the problem and exits with gunicorn's worker-boot-error status (3), which stops the master too.
"""

import sys

from reference_server.app import create_app
from reference_server.settings import config_from_env
from reference_server.state import StateStoreUnavailable

WORKER_BOOT_ERROR = 3

try:
    app = create_app(config_from_env())
except (ValueError, OSError, StateStoreUnavailable) as exc:
    print(f"reference_server: error: {exc}", file=sys.stderr, flush=True)
    sys.exit(WORKER_BOOT_ERROR)
