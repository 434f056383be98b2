"""Command line: ``python -m reference_server --profile unit23 --port 8080 [--fault ID ...] [--variant V ...]``.

Also installed as ``llm-reference-server``. Development-grade serving (werkzeug, threaded); for production use
gunicorn with ``-c python:reference_server.gunicorn_conf``. ``GET /healthz`` answers once the server is ready.
"""

from __future__ import annotations

import argparse
import os
import sys

from gateway_spec import profile_names
from reference_server import faults
from reference_server.faults import variants


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-reference-server",
                                     description="Deterministic reference LLM gateway, with faults on demand.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one; default 8080)")
    parser.add_argument("--profile", default=os.environ.get("REFERENCE_SERVER_PROFILE", "openai"),
                        help="bundled profile name or profile file path (default openai)")
    parser.add_argument("--fault", action="append", default=[], metavar="REQ-ID",
                        help="break this requirement on purpose (repeatable; see --list-faults)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME",
                        help="switch on a valid alternative behaviour (repeatable; see --list-variants)")
    parser.add_argument("--keys-file", help="extra API keys (JSON/YAML mapping or list, or plain text)")
    parser.add_argument("--state", default=os.environ.get("REFERENCE_SERVER_STATE") or None, metavar="URL",
                        help="where counters, rate limits, journal and scripts live: memory (default) or "
                             "redis://host:port/db, shared by every worker and host using it")
    parser.add_argument("--script", action="append", default=[], metavar="FILE",
                        help="scripted answers (YAML/JSON rules, docs/scripts.md) registered at start-up (repeatable)")
    parser.add_argument("--clock", type=int, help="unix time used for every 'created' (default 1700000000)")
    parser.add_argument("--list-faults", action="store_true", help="print the fault catalogue and exit")
    parser.add_argument("--list-variants", action="store_true", help="print the variant catalogue and exit")
    parser.add_argument("--list-profiles", action="store_true", help="print the bundled profiles and exit")
    return parser


def _listing(args: argparse.Namespace) -> list[str] | None:
    if args.list_faults:
        return faults.describe()
    if args.list_variants:
        return variants.describe()
    if args.list_profiles:
        return profile_names()
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``llm-reference-server``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    listing = _listing(args)
    if listing is not None:
        return _print_listing(listing)
    from reference_server.app import create_app
    from reference_server.scripting.files import load_script_file
    from reference_server.settings import build_config, split_list
    from reference_server.state import StateStoreUnavailable

    script_files = args.script or split_list(os.environ.get("REFERENCE_SERVER_SCRIPT"))
    for path in script_files:  # a malformed script is a usage error naming the rule index and field
        try:
            load_script_file(path)
        except (ValueError, OSError) as exc:
            parser.error(f"--script: {exc}")
    try:
        config = build_config(args.profile, args.fault, args.variant, args.keys_file,
                              os.environ.get("REFERENCE_SERVER_KEYS"), args.clock, state=args.state,
                              script_files=script_files)
        app = create_app(config)
    except (ValueError, FileNotFoundError, OSError, StateStoreUnavailable) as exc:
        print(f"llm-reference-server: error: {exc}", file=sys.stderr)
        return 2
    return serve(app, args.host, args.port)


def _print_listing(listing: list[str]) -> int:
    """Print a catalogue; a reader that stops early (``| head``) ends it quietly, not with a traceback."""
    try:
        print("\n".join(listing), flush=True)
    except BrokenPipeError:
        # The Python docs' recipe: point stdout at devnull, so the flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def serve(app, host: str, port: int) -> int:
    """Serve ``app`` with werkzeug's threaded server until interrupted."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    config = app.config["SERVER"]
    extras = "".join(f" fault={f}" for f in sorted(config.faults)) + "".join(
        f" variant={v}" for v in sorted(config.variants)) + (f" state={app.server.state.url}" if config.state else "")
    profile = config.profile
    origin = f"http://{host}:{server.server_port}"
    print(f"llm-reference-server: profile {profile.name}, base URL {origin}{profile.base_path} "
          f"(GET {origin}/healthz), test key {profile.test_key}{extras}\n"
          f"  check it: pytest --target-url {origin} --gw-api-key {profile.test_key} --gw-profile {profile.name}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
