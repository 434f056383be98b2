"""Command-line options of the conformance plugin, their environment fallbacks, and the run state they resolve to."""

from __future__ import annotations

import datetime
import fnmatch
import functools
import importlib.metadata
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.baseline import Baseline, BaselineError
from conformance.client import Accounting
from conformance.embedded import BURST_LIMIT
from conformance.redact import Redactor
from gateway_spec import Profile, Requirement, load_profile, load_requirements

GROUP = "llm-gateway-conformance"
DEFAULT_PROFILE = "openai"
DEFAULT_REPORT_DIR = "reports/conformance"

# dest -> environment variable consulted when the option is absent from the command line.
ENV_FALLBACKS = {
    "target_url": "CONFORMANCE_TARGET_URL",
    "api_key": "CONFORMANCE_API_KEY",
    "profile": "CONFORMANCE_PROFILE",
}

# Options whose presence on the command line means "this is a conformance run" (collection is redirected to the
# suite when no paths are given). Environment variables alone never redirect: a stray CONFORMANCE_TARGET_URL in
# a shell must not hijack an unrelated ``pytest`` invocation.
RUN_SELECTING = (
    "conformance", "target_url", "profile", "requirement", "baseline", "server_fault", "server_variant", "model", "fuzz",
    "server_trace_faults",
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option in the one ``llm-gateway-conformance`` group."""
    group = parser.getgroup(GROUP, "LLM gateway conformance")
    add = group.addoption
    add("--conformance", action="store_true", default=False,
        help="Run the bundled conformance suite when no paths are given (implied by the options below).")
    add("--target-url", default=None, help="Gateway base URL (env CONFORMANCE_TARGET_URL). Without it the "
        "embedded reference server is started for the profile.")
    add("--api-key", default=None, help="API key sent as bearer token (env CONFORMANCE_API_KEY). Default: the "
        "profile's test key, only for the embedded server.")
    add("--profile", default=None, metavar="NAME|PATH", help="Gateway profile (env CONFORMANCE_PROFILE, "
        f"default {DEFAULT_PROFILE}).")
    add("--model", default=None, help="Chat model id to use (default: the profile's default_chat).")
    add("--embedding-model", default=None, help="Embedding model id (default: the profile's default_embedding).")
    add("--fail-on", default="must", choices=("must", "should"), help="Lowest level that fails the run.")
    add("--baseline", default=None, metavar="PATH", help="YAML/JSON file of requirement IDs expected to fail.")
    add("--requirement", action="append", default=[], metavar="GLOB",
        help="Only run cases checking a matching requirement ID, e.g. CHAT-STREAM-* (repeatable).")
    add("--report-dir", default=None, metavar="DIR", help=f"Where reports go (default {DEFAULT_REPORT_DIR}).")
    add("--request-timeout", type=float, default=30.0, metavar="SECONDS", help="Total deadline per request.")
    add("--stream-timeout", type=float, default=60.0, metavar="SECONDS", help="Total deadline per stream.")
    add("--max-body-bytes", type=int, default=8 * 1024 * 1024, help="Response size cap (harness error above).")
    add("--header", action="append", default=[], metavar="'Name: value'", help="Extra request header (repeatable).")
    add("--role-key", action="append", default=[], metavar="ROLE=KEY",
        help="A key of the gateway in a documented state, so the checks that need one run against --target-url "
             "(repeatable): no-balance (402), restricted (model allowlist: 403), tier-<name> (that tier's limit), "
             "expired, disabled (401). Keys are masked in every report.")
    add("--request-budget", type=int, default=None, metavar="N",
        help="Stop issuing requests after N (shared out among xdist workers); later cases ERROR "
             "'budget exhausted'.")
    add("--allow-burst", action="store_true", default=False,
        help="Run the 429 burst checks against --target-url, spending the key's per-minute quota. On the embedded "
             f"reference server they always run, on a key it limits to {BURST_LIMIT} requests a minute.")
    add("--list-requirements", action="store_true", default=False,
        help="List requirement ID, level, feature, claimed?, text for the profile, then exit.")
    add("--server-fault", action="append", default=[], metavar="ID",
        help="Embedded server only: break this requirement on purpose (negative control).")
    add("--server-variant", action="append", default=[], metavar="NAME",
        help="Embedded server only: switch on a valid alternative behaviour.")
    add("--server-trace-faults", action="store_true", default=False,
        help="Embedded server only: record which faults each request consults; results.json then gives each "
             "case's faults_consulted (what the negative-control matrix needs to rerun only those cases).")


ROLE_NAME = re.compile(r"^(no-balance|restricted|expired|disabled|tier-[a-z0-9][a-z0-9-]*)$")


def parse_role_key(raw: str) -> tuple[str, str]:
    """Split ``ROLE=KEY``; an unknown role or an empty key is a usage error (the key itself is never shown)."""
    role, sep, key = raw.partition("=")
    role, key = role.strip(), key.strip()
    if not sep or not key or not ROLE_NAME.match(role):
        raise pytest.UsageError(f"--role-key expects ROLE=KEY with ROLE one of no-balance, restricted, expired, "
                                f"disabled, tier-<name>; got role {role!r}")
    return role, key


def parse_header(raw: str) -> tuple[str, str]:
    """Split ``'Name: value'`` into a header pair; a missing colon is a usage error."""
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise pytest.UsageError(f"--header expects 'Name: value', got {raw!r}")
    return name.strip(), value.strip()


@dataclass(frozen=True)
class ConformanceOptions:
    """The resolved option values (command line, then environment, then defaults)."""

    target_url: str | None
    api_key: str | None
    profile: str
    model: str | None = None
    embedding_model: str | None = None
    fail_on: str = "must"
    baseline: str | None = None
    requirement_globs: tuple[str, ...] = ()
    report_dir: str = DEFAULT_REPORT_DIR
    request_timeout: float = 30.0
    stream_timeout: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024
    headers: tuple[tuple[str, str], ...] = ()
    role_keys: tuple[tuple[str, str], ...] = ()
    request_budget: int | None = None
    allow_burst: bool = False
    server_faults: tuple[str, ...] = ()
    server_variants: tuple[str, ...] = ()
    server_trace_faults: bool = False
    explicit: bool = field(default=False, compare=False)

    @classmethod
    def from_config(cls, config: pytest.Config) -> ConformanceOptions:
        """Resolve options from a pytest config and the environment."""
        opt = config.option

        def pick(dest: str):
            value = getattr(opt, dest, None)
            return value if value is not None else os.environ.get(ENV_FALLBACKS.get(dest, ""), None) or None

        explicit = any(getattr(opt, dest, None) for dest in RUN_SELECTING)
        target_url = pick("target_url")
        return cls(
            target_url=target_url.rstrip("/") if target_url else None,
            api_key=pick("api_key"),
            profile=pick("profile") or DEFAULT_PROFILE,
            model=opt.model,
            embedding_model=opt.embedding_model,
            fail_on=opt.fail_on,
            baseline=opt.baseline,
            requirement_globs=tuple(opt.requirement or ()),
            report_dir=opt.report_dir or DEFAULT_REPORT_DIR,
            request_timeout=opt.request_timeout,
            stream_timeout=opt.stream_timeout,
            max_body_bytes=opt.max_body_bytes,
            headers=tuple(parse_header(h) for h in opt.header or ()),
            role_keys=tuple(parse_role_key(r) for r in getattr(opt, "role_key", None) or ()),
            request_budget=opt.request_budget,
            allow_burst=opt.allow_burst,
            server_faults=tuple(opt.server_fault or ()),
            server_variants=tuple(opt.server_variant or ()),
            server_trace_faults=bool(getattr(opt, "server_trace_faults", False)),
            explicit=explicit,
        )


SUITE_DIR = Path(__file__).resolve().parent / "suite"


def targets_suite(args: list[str]) -> bool:
    """True when the collection arguments name the bundled suite (by path or ``--pyargs conformance.suite``)."""
    for arg in args:
        path_part = str(arg).split("::")[0]
        if path_part.startswith("conformance.suite"):
            return True
        try:
            resolved = Path(path_part).resolve()
        except OSError:
            continue
        if resolved == SUITE_DIR or SUITE_DIR in resolved.parents:
            return True
    return False


def suite_version() -> str:
    try:
        return importlib.metadata.version("llm-gateway-conformance")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class RunState:
    """Everything one conformance run derives from its options: profile, registry, baseline, accounting.

    Profile, registry and baseline load lazily, so a non-conformance pytest run never touches them.
    """

    def __init__(self, options: ConformanceOptions, config: pytest.Config) -> None:
        self.options = options
        self.active = options.explicit or targets_suite(list(config.args))
        report_dir = Path(options.report_dir)
        self.report_dir = report_dir if report_dir.is_absolute() else config.invocation_params.dir / report_dir
        self.accounting = Accounting(_process_budget(options.request_budget, config))
        self.allure_enabled = False
        self.started = _now()

    @functools.cached_property
    def profile(self) -> Profile:
        try:
            return load_profile(self.options.profile)
        except (FileNotFoundError, OSError) as exc:
            raise pytest.UsageError(f"--profile: {exc}") from exc

    @functools.cached_property
    def registry(self) -> dict[str, Requirement]:
        return load_requirements()

    @functools.cached_property
    def baseline(self) -> Baseline:
        try:
            return Baseline.load(self.options.baseline)
        except BaselineError as exc:
            raise pytest.UsageError(f"--baseline: {exc}") from exc

    @property
    def api_key(self) -> str | None:
        """The key to send: ``--api-key``, else the profile's test key only for the embedded server."""
        if self.options.api_key:
            return self.options.api_key
        return None if self.options.target_url else self.profile.test_key

    def role_key(self, role: str) -> str | None:
        """The key of ``role`` (no-balance, restricted, tier-<name>, expired, disabled): ``--role-key``, else the
        profile's test key of that role, only for the embedded server; None when neither is known."""
        given = dict(self.options.role_keys).get(role)
        if given:
            return given
        return None if self.options.target_url else (self.profile.get("auth.extra_test_keys") or {}).get(role)

    @functools.cached_property
    def redactor(self) -> Redactor:
        return Redactor([self.options.api_key, self.profile.test_key, *(k for _, k in self.options.role_keys)])

    def redactor_with(self, key: str | None) -> Redactor:
        """The run's redactor plus one more secret (a client built with another key)."""
        return Redactor([*self.redactor.secrets, key])

    def client_settings(self, target: str, api_key: str | None) -> dict:
        """Keyword arguments for ``GatewayClient`` from the options and profile."""
        o = self.options
        return {"base_url": target, "base_path": self.profile.base_path, "api_key": api_key, "headers": o.headers,
                "request_timeout": o.request_timeout, "stream_timeout": o.stream_timeout,
                "max_body_bytes": o.max_body_bytes, "accounting": self.accounting}

    def validate(self) -> None:
        """Fail fast, with a usage error, on options that cannot work together or files that cannot load."""
        if self.options.target_url and (self.options.server_faults or self.options.server_variants
                                        or self.options.server_trace_faults):
            raise pytest.UsageError("--server-fault/--server-variant/--server-trace-faults only apply to the "
                                    "embedded server (drop --target-url)")
        _ = self.profile, self.baseline

    def header_line(self) -> str:
        target = self.options.target_url or "embedded reference server"
        extras = "".join(f", fault {f}" for f in self.options.server_faults)
        extras += "".join(f", variant {v}" for v in self.options.server_variants)
        return (f"conformance: target {target}, profile {self.profile.name}{extras}, "
                f"suite {suite_version()}, fail-on {self.options.fail_on}")

    def requirement_listing(self) -> str:
        """One line per requirement: ID, level, feature, claimed?, text (``--list-requirements``)."""
        lines = []
        for rid, req in self.registry.items():
            if self.options.requirement_globs and not any(
                    fnmatch.fnmatchcase(rid, g) for g in self.options.requirement_globs):
                continue
            claimed = "untestable" if req.untestable else ("claimed" if self.profile.claims(req.feature)
                                                           else "not-claimed")
            lines.append(f"{rid:<24} {req.level:<6} {req.feature or '-':<24} {claimed:<11} {req.text}")
        return "\n".join(lines) + ("\n" if lines else "")

    def run_info(self) -> dict:
        return {"target": self.options.target_url or "embedded", "profile": self.profile.name,
                "started": self.started, "finished": _now(), "suite_version": suite_version(),
                "fail_on": self.options.fail_on, "baseline": self.options.baseline,
                "requirement_globs": list(self.options.requirement_globs),
                "server_faults": list(self.options.server_faults),
                "server_variants": list(self.options.server_variants),
                "server_trace_faults": self.options.server_trace_faults, **self.accounting.as_dict()}


def _process_budget(budget: int | None, config: pytest.Config) -> int | None:
    """This process's share of ``--request-budget``: under xdist each worker gets an equal part (total <= N)."""
    workerinput = getattr(config, "workerinput", None)
    if budget is None or not workerinput:
        return budget
    count = int(workerinput.get("workercount", 1))
    index = int(str(workerinput.get("workerid", "gw0")).removeprefix("gw") or 0)
    return budget // count + (1 if index < budget % count else 0)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
