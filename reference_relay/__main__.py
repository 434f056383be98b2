"""Command line: ``python -m reference_relay --upstream URL --listen HOST:PORT [--upstream-key K] [--profile P]
[--fault ID ...] [--variant NAME ...]``.

The upstream key may also come from ``REFERENCE_RELAY_UPSTREAM_KEY`` (keeps it out of process listings).
"""

from __future__ import annotations

import argparse
import os
import sys

from reference_relay import faults, variants


def _alias(text: str) -> tuple[str, str]:
    client, sep, upstream = text.partition("=")
    if not sep or not client or not upstream:
        raise argparse.ArgumentTypeError(f"expected CLIENT=UPSTREAM, got {text!r}")
    return client, upstream


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reference_relay",
                                description="Reference relay: a minimal correct OpenAI-compatible gateway.")
    p.add_argument("--upstream", help="upstream root URL, e.g. http://127.0.0.1:8080 (the profile's base path "
                   "is appended)")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 8090), metavar="HOST:PORT",
                   help="where to serve (default 127.0.0.1:8090; port 0 picks a free one)")
    p.add_argument("--upstream-key", default=os.environ.get("REFERENCE_RELAY_UPSTREAM_KEY"),
                   help="the relay's own upstream key (env REFERENCE_RELAY_UPSTREAM_KEY; default: the profile's "
                   "test key)")
    p.add_argument("--profile", default="openai", help="gateway profile the relay serves (default openai)")
    p.add_argument("--client-key", action="append", default=[], metavar="KEY",
                   help="a key clients may use (repeatable; default: the profile's test keys)")
    p.add_argument("--max-attempts", type=int, help="upstream attempts per request, retries included "
                   "(default: the profile's upstream.max_attempts, else 2)")
    p.add_argument("--upstream-timeout", type=float, metavar="SECONDS",
                   help="upstream silence before a 504 (default: the profile's timeouts.upstream_seconds, else 600)")
    p.add_argument("--model-alias", type=_alias, action="append", default=[], metavar="CLIENT=UPSTREAM",
                   help="serve a model under another name (repeatable; mapped back in answers)")
    p.add_argument("--forward-mock-headers", action="store_true",
                   help="test only: forward the client's X-Mock-* headers to a reference server upstream")
    p.add_argument("--fault", action="append", default=[], metavar="REQ-ID", help="break a transit requirement")
    p.add_argument("--variant", action="append", default=[], metavar="NAME", help="switch on a valid variant")
    p.add_argument("--list-faults", action="store_true", help="print the relay's fault catalogue and exit")
    p.add_argument("--list-variants", action="store_true", help="print the relay's variants and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_faults or args.list_variants:
        print("\n".join(faults.describe() if args.list_faults else variants.describe()))
        return 0
    if not args.upstream:
        print("reference_relay: error: --upstream URL is required", file=sys.stderr)
        return 2
    from reference_relay import RelayConfig, create_relay_app
    from reference_relay.serving import make_relay_server

    try:
        config = RelayConfig.for_profile(
            args.profile, args.upstream, upstream_key=args.upstream_key, client_keys=args.client_key,
            max_attempts=args.max_attempts, upstream_timeout=args.upstream_timeout,
            model_aliases=dict(args.model_alias), faults=args.fault, variants=args.variant,
            forward_mock_headers=args.forward_mock_headers)
        app = create_relay_app(config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"reference_relay: error: {exc}", file=sys.stderr)
        return 2
    host, port = args.listen
    server = make_relay_server(app, host, port)
    extras = "".join(f" fault={f}" for f in sorted(config.faults)) + "".join(
        f" variant={v}" for v in sorted(config.variants))
    # the upstream's address is the operator's own setting; it is printed here, never sent to clients
    print(f"reference_relay: profile {config.profile.name} on http://{host}:{server.server_port} -> upstream "
          f"{config.upstream}{extras}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
