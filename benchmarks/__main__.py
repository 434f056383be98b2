"""``python -m benchmarks``: reference server against a bare Flask app, streaming latency, suite cost.

Run ``python -m benchmarks --help`` for the flags; ``--quick`` is a smoke test of a few seconds per section.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Any

from benchmarks import instructions, loadgen, report, sections, suite_cost, targets
from benchmarks.measure import GENERATORS, pick_generator
from benchmarks.servers import GUNICORN_CONF, GunicornConfig, production_config
from benchmarks.workload import NONSTREAM

QUICK = {"duration": 1.0, "rounds": 1, "connections": 8}


def parse_only(text: str) -> tuple[str, ...]:
    """``--only nonstream,stream`` -> the sections in run order; unknown names are an argparse error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(sections.SECTIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; choose from {','.join(sections.SECTIONS)}")
    return tuple(name for name in sections.SECTIONS if name in names)


def build_parser() -> argparse.ArgumentParser:
    prod = production_config()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (1 s, 1 round): a smoke test")
    parser.add_argument("--duration", type=float, help="seconds per load run (default 5; quick 1)")
    parser.add_argument("--rounds", type=int, help="alternated A/B rounds per section (default 3; quick 1)")
    parser.add_argument("--connections", type=int, help="concurrent keep-alive connections (default 16; quick 8)")
    parser.add_argument("--workers", type=int, default=prod.workers, help=f"gunicorn workers (default {prod.workers})")
    parser.add_argument("--worker-class", default=prod.worker_class,
                        help=f"gunicorn worker class (default {prod.worker_class})")
    parser.add_argument("--threads", type=int, default=prod.threads, help=f"gthread threads (default {prod.threads})")
    parser.add_argument("--generator", choices=GENERATORS, default="auto",
                        help="load generator: wrk when installed (auto), or the built-in asyncio client")
    parser.add_argument("--profile", default="openai", help="profile the reference server serves (default openai)")
    parser.add_argument("--skip-suite", action="store_true", help="do not time the conformance suite")
    parser.add_argument("--black-box-latency-ms", type=float, default=suite_cost.BLACK_BOX_LATENCY_MS,
                        help="suite section: also run the black-box suite against answers delayed this long "
                             f"(default {suite_cost.BLACK_BOX_LATENCY_MS:g}; 0 leaves it out)")
    parser.add_argument("--only", type=parse_only, default=sections.SECTIONS,
                        help=f"comma-separated sections: {','.join(sections.SECTIONS)}")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write reports/benchmarks/")
    return parser


def settings_from(args: argparse.Namespace) -> sections.Settings:
    defaults = QUICK if args.quick else {"duration": 5.0, "rounds": 3, "connections": 16}
    chosen = tuple(s for s in args.only if not (args.skip_suite and s == "suite"))
    if args.quick and args.only is sections.SECTIONS:  # a smoke test: callgrind start-up alone takes half a minute
        chosen = tuple(s for s in chosen if s != "instructions")
    return sections.Settings(
        gunicorn=GunicornConfig(workers=args.workers, worker_class=args.worker_class, threads=args.threads),
        duration=args.duration or defaults["duration"],
        rounds=args.rounds or defaults["rounds"],
        connections=args.connections or defaults["connections"],
        generator=pick_generator(args.generator),
        profile=args.profile,
        sections=chosen,
        instruction_requests=20 if args.quick else instructions.REQUESTS,
        black_box_latency_ms=args.black_box_latency_ms,
    )


def environment(settings: sections.Settings) -> dict[str, Any]:
    """Where the figures come from: machine, Python, and the asyncio client's own ceiling when it is used."""
    env: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform(), "gunicorn_conf": GUNICORN_CONF.exists(),
                           # Other work on the machine moves every absolute figure; ratios of alternated runs less so.
                           "load_average_1m": os.getloadavg()[0]}
    if settings.generator == "asyncio":
        env["asyncio_client_ceiling_rps"] = loadgen.measure_capacity(NONSTREAM.raw_request("127.0.0.1", 1))
    return env


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the JSON report, print the table. Exit 0 even on MISS: this is a report."""
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    load_before = os.getloadavg()[0]
    results = sections.run_sections(settings, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    full = {
        "generator": settings.generator,
        "gunicorn": settings.gunicorn.args(),
        "settings": {"duration": settings.duration, "rounds": settings.rounds,
                     "connections": settings.connections, "profile": settings.profile,
                     "sections": list(settings.sections)},
        "environment": {**environment(settings), "load_average_1m_before": load_before},
        "results": results,
        "targets": targets.evaluate(results),
    }
    if not args.no_write:
        path = report.write_report(full)
        print(f"report: {path.relative_to(report.ROOT)} (and latest.json)", file=sys.stderr)
    print(report.render(full))
    return 0


if __name__ == "__main__":
    sys.exit(main())
