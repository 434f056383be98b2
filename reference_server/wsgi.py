"""WSGI entry point for production servers: ``gunicorn -c reference_server/gunicorn_conf.py
'reference_server.wsgi:app'``. The configuration comes from ``REFERENCE_SERVER_*`` variables (see ``settings``)."""

from reference_server.app import create_app
from reference_server.settings import config_from_env

app = create_app(config_from_env())
