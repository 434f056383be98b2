"""WSGI entry point for production servers: ``gunicorn -c python:reference_server.gunicorn_conf
'reference_server.wsgi:app'`` (the config by module name, so it works from an installed package too). The configuration comes from ``REFERENCE_SERVER_*`` variables (see ``settings``)."""

from reference_server.app import create_app
from reference_server.settings import config_from_env

app = create_app(config_from_env())
