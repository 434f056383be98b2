"""Command-line options of the conformance plugin, their environment fallbacks, and the run state they resolve to.

The pytest11 entry point (``conformance/entry.py``) imports this module in every pytest run to declare the options:
keep its imports light (no httpx, werkzeug or reference server at module level).

Over 400 lines: the option table and ``RunState``, which resolves every option (sandwich mode's upstream, nonce
token and ``--upstream-listen`` server included) in one place; the sandwich part could move beside
``conformance/sandwich.py`` if it grows.
"""

from __future__ import annotations

import datetime
import difflib
import fnmatch
import functools
import hashlib
import importlib.metadata
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.baseline import Baseline, BaselineError
from conformance.embedded import BURST_LIMIT, burst_key
from conformance.redact import Redactor
from gateway_spec import Profile, Requirement, load_features, load_profile, load_requirements, spec_dir

if TYPE_CHECKING:  # httpx-bound: imported where used, never by an unrelated pytest run
    from conformance.wire import ReplayLog

DEFAULT_CONCURRENCY = 16  # exchanges in flight at most (--gw-concurrency); 429s lower it for a while (dispatch)

GROUP = "llm-gateway-conformance"
DEFAULT_PROFILE = "openai"
DEFAULT_REPORT_DIR = "reports/conformance"

# dest -> environment variable consulted when the option is absent from the command line.
ENV_FALLBACKS = {
    "target_url": "CONFORMANCE_TARGET_URL",
    "gw_api_key": "CONFORMANCE_API_KEY",
    "gw_profile": "CONFORMANCE_PROFILE",
    "gw_report_dir": "CONFORMANCE_REPORT_DIR",
}
# dest -> ``[pytest]`` ini key consulted after the environment (pytest-base-url's order: command line, environment,
# ini file). No ini key for the API key: a key does not belong in a checked-in file.
INI_FALLBACKS = {
    "target_url": "conformance_target_url",
    "gw_profile": "conformance_profile",
    "gw_report_dir": "conformance_report_dir",
}

# Options whose presence on the command line means "this is a conformance run" (collection is redirected to the
# suite when no paths are given). Environment variables alone never redirect: a stray CONFORMANCE_TARGET_URL in
# a shell must not hijack an unrelated ``pytest`` invocation.
RUN_SELECTING = (
    "conformance", "target_url", "gw_profile", "gw_requirement", "gw_baseline", "gw_server_fault", "gw_server_variant",
    "gw_model", "gw_fuzz", "gw_server_trace_faults", "gw_replay", "gw_claim", "gw_no_claim", "gw_write_baseline",
    "gw_upstream", "gw_upstream_listen",
)
SANDWICH = "sandwich"  # the feature sandwich mode claims (spec/features.yaml)
SANDWICH_HINT = ("sandwich mode is off: give --upstream URL (a reference server the gateway routes to) or "
                 "--upstream-listen HOST:PORT")


def add_options(parser: pytest.Parser) -> None:
    """Register every option in the one ``llm-gateway-conformance`` group, and the ini fallbacks.

    Every option but ``--target-url`` and ``--conformance`` is spelled ``--gw-*`` (dest ``gw_*``), so that no other
    plugin's or project's option can clash (``tests/packaging/test_option_names.py``); ``llm-conformance`` accepts
    the short spellings (``conformance.cli``).
    """
    for dest, key in INI_FALLBACKS.items():
        parser.addini(key, default=None, help=f"Conformance suite: fallback of --{dest.replace('_', '-')} after "
                      f"the environment ({ENV_FALLBACKS[dest]}).")
    group = parser.getgroup(GROUP, "LLM gateway conformance")
    add = group.addoption
    add("--conformance", action="store_true", default=False,
        help="Run the bundled conformance suite when no paths are given (implied by the options below).")
    add("--target-url", default=None, metavar="URL", help="Gateway base URL (env CONFORMANCE_TARGET_URL, ini conformance_target_url). Without it the "
        "embedded reference server is started for the profile.")
    add("--gw-api-key", default=None, metavar="KEY", help="API key sent as bearer token (env CONFORMANCE_API_KEY). Default: the "
        "profile's test key, only for the embedded server.")
    add("--gw-profile", default=None, metavar="NAME|PATH", help="Gateway profile (env CONFORMANCE_PROFILE, ini "
        f"conformance_profile; default {DEFAULT_PROFILE}).")
    add("--gw-model", default=None, metavar="MODEL", help="Chat model id to use (default: the profile's default_chat).")
    add("--gw-claim", action="append", default=[], metavar="FEATURE",
        help="Check this optional feature (spec/features.yaml) as if the profile claimed it (repeatable).")
    add("--gw-no-claim", action="append", default=[], metavar="FEATURE",
        help="Skip this optional feature's checks as if the profile did not claim it (repeatable).")
    add("--gw-embedding-model", default=None, metavar="MODEL", help="Embedding model id (default: the profile's default_embedding).")
    add("--gw-fail-on", default="must", choices=("must", "should"), help="Lowest level that fails the run.")
    add("--gw-baseline", default=None, metavar="PATH", help="YAML/JSON file of requirement IDs expected to fail.")
    add("--gw-write-baseline", default=None, metavar="PATH",
        help="Write the requirements that FAIL or WARN (or XFAIL) in this run as a baseline file to start from.")
    add("--gw-requirement", action="append", default=[], metavar="GLOB",
        help="Only run cases checking a matching requirement ID, e.g. CHAT-STREAM-* (repeatable).")
    add("--gw-report-dir", default=None, metavar="DIR", help="Where reports go (env CONFORMANCE_REPORT_DIR, ini "
        f"conformance_report_dir; default {DEFAULT_REPORT_DIR}).")
    add("--gw-request-timeout", type=float, default=30.0, metavar="SECONDS", help="Total deadline per request.")
    add("--gw-stream-timeout", type=float, default=60.0, metavar="SECONDS", help="Total deadline per stream.")
    add("--gw-max-body-bytes", type=int, default=8 * 1024 * 1024, metavar="N", help="Response size cap (harness error above).")
    add("--gw-header", action="append", default=[], metavar="'Name: value'", help="Extra request header (repeatable).")
    add("--gw-role-key", action="append", default=[], metavar="ROLE=KEY",
        help="A key of the gateway in a documented state, so the checks that need one run against --target-url "
             "(repeatable): no-balance and suspended (402), restricted (model allowlist: 403), tier-<name> (that "
             "tier's limit), quota-exhausted and daily-limit (429), expired, disabled (401). Keys are masked in every "
             "report.")
    add("--gw-request-budget", type=int, default=None, metavar="N",
        help="Stop issuing requests after N (shared out among xdist workers); later cases ERROR "
             "'budget exhausted'.")
    add("--gw-allow-burst", action="store_true", default=False,
        help="Run the 429 burst checks against --target-url, spending the key's per-minute quota. On the embedded "
             f"reference server they always run, on a key it limits to {BURST_LIMIT} requests a minute.")
    add("--gw-concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
        help=f"Exchanges in flight at once (default {DEFAULT_CONCURRENCY}); 1 sends one after another.")
    add("--gw-replay", default=None, metavar="DIR",
        help="Judge the exchanges recorded in DIR (a previous run's --gw-report-dir) instead of sending any: the "
             "same suite version gives the same verdicts.")
    add("--gw-no-preflight", action="store_true", default=False,
        help="Skip the probes of --target-url (reachable, base path, key, model) that stop a misconfigured run "
             "before any check with exit code 6.")
    add("--gw-discover", action="store_true", default=False,
        help="Probe which optional features the target offers (one request each), print the evidence and write a "
             "starting profile (discovered-profile.yaml) to the report dir, then exit; not a conformance verdict.")
    add("--gw-list-requirements", action="store_true", default=False,
        help="List requirement ID, level, feature, claimed?, text for the profile, then exit.")
    add("--upstream", dest="gw_upstream", default=None, metavar="URL",
        help="Sandwich mode: a running reference server the gateway routes to; the suite scripts it and reads its "
             "journal, and checks the transit requirements (feature sandwich).")
    add("--upstream-listen", dest="gw_upstream_listen", default=None, metavar="HOST:PORT",
        help="Sandwich mode: start a reference server there for the gateway to route to (as --upstream).")
    add("--gw-server-fault", action="append", default=[], metavar="ID",
        help="Embedded server only: break this requirement on purpose (negative control).")
    add("--gw-server-variant", action="append", default=[], metavar="NAME",
        help="Embedded server only: switch on a valid alternative behaviour.")
    add("--gw-server-trace-faults", action="store_true", default=False,
        help="Embedded server only: record which faults each request consults; results.json then gives each "
             "case's faults_consulted (what the negative-control matrix needs to rerun only those cases).")


ROLE_NAME = re.compile(
    r"^(no-balance|restricted|expired|disabled|suspended|quota-exhausted|daily-limit|tier-[a-z0-9][a-z0-9-]*)$")


def parse_role_key(raw: str) -> tuple[str, str]:
    """Split ``ROLE=KEY``; an unknown role or an empty key is a usage error (the key itself is never shown)."""
    role, sep, key = raw.partition("=")
    role, key = role.strip(), key.strip()
    if not sep or not key or not ROLE_NAME.match(role):
        raise pytest.UsageError(f"--gw-role-key expects ROLE=KEY with ROLE one of no-balance, restricted, expired, "
                                f"disabled, suspended, quota-exhausted, daily-limit, tier-<name>; got role {role!r}")
    return role, key


def parse_header(raw: str) -> tuple[str, str]:
    """Split ``'Name: value'`` into a header pair; a missing colon is a usage error."""
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise pytest.UsageError(f"--gw-header expects 'Name: value', got {raw!r}")
    return name.strip(), value.strip()


@dataclass(frozen=True)
class ConformanceOptions:
    """The resolved option values (command line, then environment, then defaults)."""

    target_url: str | None
    api_key: str | None
    profile: str
    model: str | None = None
    embedding_model: str | None = None
    claims: tuple[str, ...] = ()
    no_claims: tuple[str, ...] = ()
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
    upstream: str | None = None
    upstream_listen: str | None = None
    server_trace_faults: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    replay: str | None = None
    explicit: bool = field(default=False, compare=False)

    @classmethod
    def from_config(cls, config: pytest.Config) -> ConformanceOptions:
        """Resolve options: command line, then environment (``ENV_FALLBACKS``), then ini (``INI_FALLBACKS``)."""
        opt = config.option

        def pick(dest: str):
            value = getattr(opt, dest, None)
            if value is not None:
                return value
            if os.environ.get(ENV_FALLBACKS.get(dest, "")):
                return os.environ[ENV_FALLBACKS[dest]]
            return (config.getini(INI_FALLBACKS[dest]) or None) if dest in INI_FALLBACKS else None

        explicit = any(getattr(opt, dest, None) for dest in RUN_SELECTING)
        target_url = pick("target_url")
        return cls(
            target_url=target_url.rstrip("/") if target_url else None,
            api_key=pick("gw_api_key"),
            profile=pick("gw_profile") or DEFAULT_PROFILE,
            model=opt.gw_model,
            embedding_model=opt.gw_embedding_model,
            claims=tuple(getattr(opt, "gw_claim", None) or ()),
            no_claims=tuple(getattr(opt, "gw_no_claim", None) or ()),
            fail_on=opt.gw_fail_on,
            baseline=opt.gw_baseline,
            # IDs are upper case (gateway_spec.REQUIREMENT_ID): chat-stream-* means CHAT-STREAM-*
            requirement_globs=tuple(g.upper() for g in opt.gw_requirement or ()),
            report_dir=pick("gw_report_dir") or DEFAULT_REPORT_DIR,
            request_timeout=opt.gw_request_timeout,
            stream_timeout=opt.gw_stream_timeout,
            max_body_bytes=opt.gw_max_body_bytes,
            headers=tuple(parse_header(h) for h in opt.gw_header or ()),
            role_keys=tuple(parse_role_key(r) for r in getattr(opt, "gw_role_key", None) or ()),
            request_budget=opt.gw_request_budget,
            allow_burst=opt.gw_allow_burst,
            server_faults=tuple(opt.gw_server_fault or ()),
            server_variants=tuple(opt.gw_server_variant or ()),
            upstream=(getattr(opt, "gw_upstream", None) or "").rstrip("/") or None,
            upstream_listen=getattr(opt, "gw_upstream_listen", None),
            server_trace_faults=bool(getattr(opt, "gw_server_trace_faults", False)),
            concurrency=getattr(opt, "gw_concurrency", DEFAULT_CONCURRENCY) or DEFAULT_CONCURRENCY,
            replay=getattr(opt, "gw_replay", None),
            explicit=explicit,
        )


SUITE_DIR = Path(__file__).resolve().parent / "suite"


def is_conformance_run(config: pytest.Config) -> bool:
    """A conformance option on the command line, or the bundled suite among the paths (``RunState.active``).

    Environment variables alone never make one: a stray CONFORMANCE_TARGET_URL must not change an unrelated run.
    """
    return (any(getattr(config.option, dest, None) for dest in RUN_SELECTING)
            or targets_suite(list(config.args)))


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


@functools.cache
def suite_digest() -> str:
    """A digest of the checks and the contract (every conformance module, every spec file): a recording made by
    other checks or another contract cannot be replayed into the same verdicts."""
    digest = hashlib.sha256()
    roots = (Path(__file__).resolve().parent, spec_dir())
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".json")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Capabilities:
    """What the target can do beyond the contract: the one place the suite asks "is it the embedded server?".

    ``mock_controls``: it honours the reference server's X-Mock-* request headers (5xx, 429, mid-stream errors,
    pacing, the echo provider). ``role_keys``: the profile's extra test keys (no-balance, restricted, ...) are
    valid on it. ``burst_key``/``burst_limit``: a key it limits to ``BURST_LIMIT`` requests a minute, for the
    429 burst (None: the burst spends the run's key, up to the profile's documented limit). ``burst_skip``: why
    the 429 burst cannot run here (None: it runs; free on the embedded server, ``--gw-allow-burst`` elsewhere).
    """

    mock_controls: bool
    role_keys: bool
    burst_key: str | None
    burst_limit: int | None
    burst_skip: str | None

    @classmethod
    def of(cls, embedded: bool, profile: Profile, allow_burst: bool) -> Capabilities:
        key = burst_key(profile) if embedded else None
        skip = None
        if not embedded and not allow_burst:
            skip = "the 429 burst spends the gateway's quota: run with --gw-allow-burst"
        elif embedded and key is None:
            skip = "no burst key matches the profile's auth.key_pattern (conformance.embedded.burst_key)"
        return cls(mock_controls=embedded, role_keys=embedded, burst_key=key,
                   burst_limit=BURST_LIMIT if embedded else None, burst_skip=skip)


class RunState:
    """Everything one conformance run derives from its options: profile, registry, baseline, accounting.

    Profile, registry and baseline load lazily, so a non-conformance pytest run never touches them.
    """

    def __init__(self, options: ConformanceOptions, config: pytest.Config) -> None:
        self.options = options
        self.active = options.explicit or targets_suite(list(config.args))
        report_dir = Path(options.report_dir)
        self.report_dir = report_dir if report_dir.is_absolute() else config.invocation_params.dir / report_dir
        from conformance.client import Accounting  # here: httpx is no import of an unrelated pytest run

        self.accounting = Accounting(_process_budget(options.request_budget, config))
        self.allure_enabled = False
        self.started = _now()
        self.target_down: str | None = None  # why the run stopped early: the target stopped answering
        self.case_scope = "run"  # recording scope of the running case (``case:<id>``)
        self._config = config
        self.upstream_server = None  # --upstream-listen: the reference server this process started
        self.exchange_store = None  # the process's ExchangeStore while it exists (conformance.fixtures)
        # The preflight found the target answering (set by it on the controller; workers learn it from theirs).
        self.preflight_passed = bool((getattr(config, "workerinput", None) or {}).get("conformance_preflight_passed"))

    @functools.cached_property
    def profile(self) -> Profile:
        try:
            profile = load_profile(self.options.profile)
        except (FileNotFoundError, OSError, ValueError) as exc:  # ValueError: ProfileError, a schema mismatch
            raise pytest.UsageError(f"--gw-profile: {exc}") from exc
        claims = self.options.claims
        if self.sandwich_url and SANDWICH not in claims and SANDWICH not in self.options.no_claims:
            claims = (*claims, SANDWICH)  # sandwich mode claims the transit requirements
        profile = with_claims(profile, claims, self.options.no_claims)
        if self.options.target_url and profile.get("models.discover"):
            from conformance.discovery import list_models, with_discovered_models

            o = self.options
            listed = list_models(o.target_url, profile.base_path, o.api_key, o.headers, o.request_timeout)
            profile = with_discovered_models(profile, listed, o.model)
        return profile

    @functools.cached_property
    def registry(self) -> dict[str, Requirement]:
        return load_requirements()

    @functools.cached_property
    def baseline(self) -> Baseline:
        try:
            baseline = Baseline.load(self.options.baseline)
        except BaselineError as exc:
            raise pytest.UsageError(f"--gw-baseline: {exc}") from exc
        unknown = sorted({e.requirement for e in baseline.entries} - set(self.registry))
        if unknown:  # an entry that names no requirement would silently expect nothing
            raise pytest.UsageError(f"--gw-baseline {self.options.baseline}: unknown requirement IDs:\n  " + "\n  ".join(
                f"{rid}{close_ids_hint(rid, self.registry)}" for rid in unknown))
        return baseline

    @property
    def embedded(self) -> bool:
        """The target is (or, replaying, was) the embedded reference server."""
        if self.options.replay:
            return bool(self.recording.header.get("embedded"))
        return not self.options.target_url

    @property
    def target_answers(self) -> bool:
        """The target is known to answer before the first check: the embedded server, or the preflight passed."""
        return self.embedded or self.preflight_passed

    @property
    def sandwich_url(self) -> str | None:
        """The upstream's URL in sandwich mode (``--upstream``, ``--upstream-listen``, or the recording's), else None."""
        if self.options.replay:
            return self._replay_log.header.get("upstream")
        if self.options.upstream:
            return self.options.upstream
        if self.options.upstream_listen:
            from conformance.embedded import parse_listen

            host, port = parse_listen(self.options.upstream_listen)
            return f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"
        return None

    @functools.cached_property
    def sandwich_token(self) -> str:
        """The run's nonce token: the recording's on replay, the controller's on an xdist worker, else new."""
        if self.options.replay:
            return str(self._replay_log.header.get("sandwich_token") or "")
        shared = (getattr(self._config, "workerinput", None) or {}).get("conformance_sandwich_token")
        if shared:
            return shared
        from conformance.sandwich import new_token

        return new_token()

    @property
    def upstream_stoppable(self) -> bool:
        """This process can stop the upstream for one request (UPSTREAM-FAILURES-007): it started it, or, replaying,
        the process that recorded did."""
        if self.options.replay:
            return bool(self._replay_log.header.get("upstream_stoppable"))
        return self.upstream_server is not None

    def start_upstream(self) -> None:
        """``--upstream-listen``: start the suite's own upstream (controller only; workers reach it by URL)."""
        if not self.options.upstream_listen or self.options.replay or self.upstream_server is not None:
            return
        from conformance.embedded import upstream_server

        server = upstream_server(self.options.upstream_listen)
        try:
            server.start()
        except OSError as exc:
            raise pytest.UsageError(f"--upstream-listen {self.options.upstream_listen}: cannot listen there "
                                    f"({exc})") from None
        self.upstream_server = server

    def stop_upstream(self) -> None:
        if self.upstream_server is not None:
            self.upstream_server.stop()
            self.upstream_server = None

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return Capabilities.of(self.embedded, self.profile, self.options.allow_burst)

    @functools.cached_property
    def recording(self) -> ReplayLog:
        """``--gw-replay DIR``'s recording, checked against this suite (a usage error when it cannot be replayed)."""
        log = self._replay_log
        header = log.header
        if header.get("suite_version") != suite_version() or header.get("suite_digest") != suite_digest():
            raise pytest.UsageError(
                f"--gw-replay: {self.options.replay} was recorded by suite {header.get('suite_version')} "
                f"(digest {header.get('suite_digest')}); this is suite {suite_version()} (digest {suite_digest()}). "
                "Replay it with the suite that recorded it, or record a new run.")
        if header.get("profile") != self.profile.name:
            raise pytest.UsageError(f"--gw-replay: the recording is of profile {header.get('profile')!r}, "
                                    f"not {self.profile.name!r} (give --gw-profile {header.get('profile')})")
        return log

    @functools.cached_property
    def _replay_log(self) -> ReplayLog:
        """``--gw-replay DIR``'s recording as read, not yet checked against this suite."""
        from conformance.wire import RecordingMismatch, ReplayLog

        try:
            return ReplayLog(Path(self.options.replay))
        except (RecordingMismatch, OSError, ValueError) as exc:
            raise pytest.UsageError(f"--gw-replay: {exc}") from exc

    def recording_header(self, target: str) -> dict:
        """What a recording states about itself (``--gw-replay`` checks it)."""
        header = {"suite_version": suite_version(), "suite_digest": suite_digest(), "profile": self.profile.name,
                  "target_url": target, "embedded": self.embedded}
        if self.sandwich_url:
            header.update(upstream=self.sandwich_url, sandwich_token=self.sandwich_token,
                          upstream_stoppable=self.upstream_stoppable)
        return header

    @property
    def secrets(self) -> list[str | None]:
        """Every key the run may send: masked in recordings, restored on replay."""
        extra = list((self.profile.get("auth.extra_test_keys") or {}).values())
        return [self.options.api_key, self.profile.test_key, self.capabilities.burst_key, *extra]

    @property
    def api_key(self) -> str | None:
        """The key to send: ``--gw-api-key``, else the profile's test key only for the embedded server."""
        if self.options.api_key:
            return self.options.api_key
        return self.profile.test_key if self.embedded else None

    def role_key(self, role: str) -> str | None:
        """The key of ``role`` (no-balance, restricted, tier-<name>, expired, disabled): ``--gw-role-key``, else the
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
        server_options = self.options.server_faults or self.options.server_variants or self.options.server_trace_faults
        if self.options.target_url and server_options:
            raise pytest.UsageError("--gw-server-fault/--gw-server-variant/--gw-server-trace-faults only apply to the "
                                    "embedded server (drop --target-url)")
        if self.options.replay and (self.options.target_url or server_options):
            raise pytest.UsageError("--gw-replay judges a recording: it sends nothing, so --target-url and "
                                    "--server-* do not apply")
        self._validate_sandwich()
        if self.options.concurrency < 1:
            raise pytest.UsageError(f"--gw-concurrency must be at least 1, not {self.options.concurrency}")
        for glob in self.options.requirement_globs:
            if not any(fnmatch.fnmatchcase(rid, glob) for rid in self.registry):
                raise pytest.UsageError(f"--gw-requirement {glob} matches no requirement ID"
                                        f"{close_ids_hint(glob, self.registry)} (--gw-list-requirements lists them)")
        _ = self.profile, self.baseline
        if self.options.replay:
            _ = self.recording

    def _validate_sandwich(self) -> None:
        o = self.options
        if not (o.upstream or o.upstream_listen):
            return
        if o.upstream and o.upstream_listen:
            raise pytest.UsageError("--upstream and --upstream-listen both name the upstream: give one")
        if o.replay:
            raise pytest.UsageError("--gw-replay judges a recording: --upstream/--upstream-listen do not apply (the "
                                    "recording names its upstream)")
        if not o.target_url:
            raise pytest.UsageError("--upstream/--upstream-listen need --target-url: the gateway that routes to "
                                    "the upstream")
        if o.upstream_listen:
            from conformance.embedded import parse_listen

            try:
                parse_listen(o.upstream_listen)
            except ValueError as exc:
                raise pytest.UsageError(f"--upstream-listen: {exc}") from None
            return
        from conformance.upstream import NotAReferenceServer, UpstreamControl

        with UpstreamControl(o.upstream, timeout=min(10.0, o.request_timeout)) as control:
            try:
                control.identify()
            except NotAReferenceServer as exc:
                raise pytest.UsageError(f"--upstream: {exc}") from None

    def header_line(self) -> str:
        target = self.options.target_url or "embedded reference server"
        if self.options.replay:
            target = f"replay of {self.options.replay}"
        extras = "".join(f", claim {f}" for f in self.options.claims)
        extras += "".join(f", no-claim {f}" for f in self.options.no_claims)
        extras += "".join(f", fault {f}" for f in self.options.server_faults)
        extras += "".join(f", variant {v}" for v in self.options.server_variants)
        if self.sandwich_url:
            extras += f", upstream {self.sandwich_url}" + (" (started by the suite)" * bool(self.options.upstream_listen))
        return (f"conformance: target {target}, profile {self.profile.name}{extras}, "
                f"suite {suite_version()}, fail-on {self.options.fail_on}")

    def requirement_listing(self) -> str:
        """One line per requirement: ID, level, feature, claimed?, text (``--gw-list-requirements``)."""
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
                "claims": list(self.options.claims), "no_claims": list(self.options.no_claims),
                "server_faults": list(self.options.server_faults),
                "server_variants": list(self.options.server_variants),
                "server_trace_faults": self.options.server_trace_faults, "replay": self.options.replay,
                "upstream": self.sandwich_url,
                "target_down": self.target_down, **self.accounting.as_dict()}


def with_claims(profile: Profile, claims: tuple[str, ...], no_claims: tuple[str, ...]) -> Profile:
    """``profile`` with ``--gw-claim`` features added and ``--gw-no-claim`` features removed (each must exist)."""
    if not claims and not no_claims:
        return profile
    known = load_features()
    for option, names in (("--gw-claim", claims), ("--gw-no-claim", no_claims)):
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=4, cutoff=0.6)
                raise pytest.UsageError(f"{option} {name}: no such feature in spec/features.yaml"
                                        + (f"; close: {', '.join(close)}" if close else
                                           f"; features: {', '.join(known)}"))
    both = sorted(set(claims) & set(no_claims))
    if both:
        raise pytest.UsageError(f"--gw-claim and --gw-no-claim both name {', '.join(both)}")
    features = [f for f in known if (f in profile.features or f in claims) and f not in no_claims]
    return Profile(name=profile.name, raw={**profile.raw, "features": features}, path=profile.path)


def close_ids_hint(word: str, registry) -> str:
    """``"; close: A, B"`` from the registry's IDs and area globs (``CHAT-STREAM-*``) nearest to ``word``."""
    areas = sorted({rid.rsplit("-", 1)[0] + "-*" for rid in registry})
    close = difflib.get_close_matches(word.upper(), [*areas, *registry], n=6, cutoff=0.6)
    return f"; close: {', '.join(close)}" if close else f"; areas: {', '.join(areas)}"


def _process_budget(budget: int | None, config: pytest.Config) -> int | None:
    """This process's share of ``--gw-request-budget``: under xdist each worker gets an equal part (total <= N)."""
    workerinput = getattr(config, "workerinput", None)
    if budget is None or not workerinput:
        return budget
    count = int(workerinput.get("workercount", 1))
    index = int(str(workerinput.get("workerid", "gw0")).removeprefix("gw") or 0)
    return budget // count + (1 if index < budget % count else 0)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
