"""Runner for the negative-control and no-false-alarm matrices: the whole conformance suite, in-process, many times.

One ``pytest.main`` per (profile, faults, variants) against the embedded reference server. The suite's modules are
imported once per process and reused by every run (pytest takes them from ``sys.modules``), so a run costs its
collection and its HTTP exchanges, not interpreter start-up and plugin discovery: measured ~0.9 s CPU per run
against ~6 s for a fresh ``python -m pytest``, and xdist spreads the runs over the workers.

Verdicts come from the run's own ``results.json``, the interface every consumer of the suite reads.

Fault rows rerun only what the fault can change (``run_fault``): the clean baseline runs with
``--gw-server-trace-faults``, which gives every case the faults its requests consulted; the reference server is
deterministic, so a case that never asked about fault X answers the same under ``--gw-server-fault X`` and keeps its
clean record. The cases that did ask (or whose trace is unknown) rerun under the fault, their records replace the
baseline's, and requirement verdicts are recomputed by the plugin's own ``build_results``. ``MATRIX_FULL=1`` reruns
every case instead, for audits (tests/proof/test_traced_matrix.py checks both agree).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import gateway_spec
from conformance import results_schema
from conformance.baseline import Baseline
from conformance.options import SUITE_DIR
from conformance.plugin import case_id
from conformance.report import build_results

# Plugins a matrix run does not need: none of them takes part in grading. unraisableexception/threadexception
# end every session with five gc.collect() calls, which grow with the heap of a long-lived process (~0.5 s each).
# --assert=plain: the suite has no bare assert to introspect (its checks go through ``expect``), and with
# PYTHONDONTWRITEBYTECODE (tox) pytest would recompile every rewritten suite module on every run (~0.25 s).
_QUIET = ("-qq", "--no-header", "--tb=line", "--assert=plain", "-p", "no:cacheprovider", "-p", "no:allure_pytest",
          "-p", "no:unraisableexception", "-p", "no:threadexception", "-p", "no:randomly",
          "-p", "no:benchmark", "-p", "no:xdist")

# Profiles tried for a requirement's fault, most featureful first (see choose_profile).
PROFILE_PREFERENCE = ("openai", "unit23", "unifiedai", "wallet-gateway", "unified-llm-gateway", "unillm", "ollama")

EXEMPTIONS_FILE = gateway_spec.spec_dir() / "fault-exemptions.yaml"

# Rows whose requirement judges an optional part of an answer that no bundled profile's doc states: the row's clean
# run and fault run both switch on a valid variant that sends it, so the clean run observes it (a check that sees
# nothing grades UNTESTABLE, and a row measured against that proves nothing). The variant has its own valid-variant
# row (test_valid_variants.py), so it is proven harmless on its own.
ROW_VARIANTS: dict[str, tuple[str, ...]] = {
    "RATE-LIMITS-016": ("retry-after-ms",),  # no bundled doc sends retry-after-ms; Azure OpenAI does
}


@dataclass(frozen=True)
class SuiteResult:
    """What one suite run decided: the verdict of every requirement and the cases behind them."""

    profile: str
    faults: tuple[str, ...]
    variants: tuple[str, ...]
    exit_code: int
    verdicts: dict[str, str]
    cases: tuple[dict, ...]
    executed: int = 0  # cases this run executed (a traced fault run reuses the others from the baseline)
    traced: bool = False  # run with --gw-server-trace-faults: every case carries faults_consulted

    def cases_for(self, requirement: str) -> list[str]:
        """``case id: verdict (message)`` lines for the cases that judged ``requirement``: evidence for a report."""
        lines = []
        for case in self.cases:
            verdict = case.get("verdicts", {}).get(requirement)
            if verdict is not None:
                said = case.get("message") or "; ".join(  # the message says what the violations do not
                    v.get("note") if v.get("untestable") else f"expected {v['expected']}, received {v['received']}"
                    for v in case.get("violations", []) if v["requirement"] == requirement)
                message = " ".join(str(said or "").split())[:300]
                lines.append(f"{case['id']}: {verdict}" + (f" ({message})" if message else ""))
        return lines


def _reuse_ssl_context() -> None:
    """Build httpx's default SSL context once per process instead of once per client.

    Every ``GatewayClient`` makes an ``httpx.Client``, which loads the CA bundle (~40 ms each, ~40 clients a run);
    the suite only talks plain HTTP to the loopback server here, so the shared context is never even used.
    """
    import httpx._transports.default as transports

    if getattr(transports.create_ssl_context, "_matrix_cached", False):
        return
    original = transports.create_ssl_context

    @functools.lru_cache(maxsize=8)
    def cached(verify=True, cert=None, trust_env=True):
        return original(verify=verify, cert=cert, trust_env=trust_env)

    def create_ssl_context(verify=True, cert=None, trust_env=True):
        try:
            return cached(verify, cert, trust_env)
        except TypeError:  # unhashable argument (a caller's own SSLContext): nothing to share
            return original(verify=verify, cert=cert, trust_env=trust_env)

    create_ssl_context._matrix_cached = True
    transports.create_ssl_context = create_ssl_context


def _forget_suite_modules() -> None:
    """Let each run import the suite's modules afresh, as a new process would.

    Module-level state must not leak from one run into the next: e.g. a ``parametrize`` fed by a generator is
    exhausted after the first collection, and its cases would silently vanish from every later run. Everything
    the suite imports (conformance, reference_server, httpx, schemathesis) stays cached: that is the saving.
    """
    for name in [n for n in sys.modules if n == "conformance.suite" or n.startswith("conformance.suite.")]:
        del sys.modules[name]


class _OnlyCases:
    """pytest plugin: keep only the cases whose id is in ``ids`` (collection order kept), deselect the rest."""

    def __init__(self, ids: frozenset[str]) -> None:
        self.ids = ids

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list) -> None:
        keep = [item for item in items if case_id(item) in self.ids]
        drop = [item for item in items if case_id(item) not in self.ids]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def run_suite(profile: str, report_dir: Path, *, faults=(), variants=(), trace: bool = False,
              only: frozenset[str] | None = None) -> SuiteResult:
    """Run the bundled suite against the embedded server for ``profile`` with the given faults/variants.

    ``trace``: with ``--gw-server-trace-faults``. ``only``: run just these case ids (all when None).
    """
    _reuse_ssl_context()
    # A selection collects only the modules it needs (collection costs ~1 ms per test, whether it runs or not),
    # in the order a whole run collects them (a directory's files by name).
    paths = ["--pyargs", "conformance.suite"] if only is None else \
        [str(SUITE_DIR / name) for name in sorted({cid.split("::", 1)[0] for cid in only})]
    args = [*paths, "--gw-profile", profile, "--gw-report-dir", str(report_dir), *_QUIET]
    for fault in faults:
        args += ["--gw-server-fault", fault]
    for variant in variants:
        args += ["--gw-server-variant", variant]
    if trace:
        args.append("--gw-server-trace-faults")
    results = Path(report_dir) / "results.json"
    results.unlink(missing_ok=True)
    _forget_suite_modules()
    plugins = [_OnlyCases(frozenset(only))] if only is not None else []
    with contextlib.redirect_stdout(io.StringIO()):  # the inner run's dots are noise in the outer report
        code = int(pytest.main(args, plugins=plugins))
    if not results.is_file():
        raise RuntimeError(f"suite run wrote no results.json (exit {code}): pytest {' '.join(args)}")
    data = json.loads(results.read_text(encoding="utf-8"))
    results_schema.validate(data)  # every run the matrix reads matches the published schema
    verdicts = {rid: entry["verdict"] for rid, entry in data["requirements"].items()}
    cases = tuple(data.get("cases", ()))
    return SuiteResult(profile, tuple(faults), tuple(variants), code, verdicts, cases, suite_cases(cases), trace)


def full_mode() -> bool:
    """``MATRIX_FULL=1``: every fault row reruns the whole suite (an audit of the traced shortcut)."""
    return os.environ.get("MATRIX_FULL", "") not in ("", "0")


def affected_cases(baseline: SuiteResult, faults) -> frozenset[str] | None:
    """Ids of the baseline's cases that may change under ``faults``: those whose requests consulted one of them,
    or whose trace is unknown. None when the baseline was not traced (then everything may change)."""
    if not baseline.traced:
        return None
    wanted = set(faults)
    return frozenset(c["id"] for c in baseline.cases
                     if c.get("faults_consulted") is None or wanted & set(c["faults_consulted"]))


def suite_cases(cases) -> int:
    """How many of ``cases`` are suite cases: the schema sweep's records (``schema-sweep::<ID>``) are made from the
    cases' exchanges, never executed, and exist only where the sweep found something or validated the shape."""
    return sum(1 for c in cases if not c["id"].startswith("schema-sweep::"))


def run_fault(baseline: SuiteResult, report_dir: Path, faults, *, full: bool = False) -> SuiteResult:
    """The suite's result under ``faults``: only the affected cases rerun, the rest keep their baseline records.

    Falls back to a whole run in full mode, without a traced baseline, or when a selected case left no record
    (a selection that did not run as planned proves nothing).
    """
    profile, faults = baseline.profile, tuple(faults)
    affected = None if full else affected_cases(baseline, faults)
    if affected is None:
        return run_suite(profile, report_dir, faults=faults, variants=baseline.variants)
    rerun = run_suite(profile, report_dir, faults=faults, variants=baseline.variants, only=affected) \
        if affected else replace(baseline, cases=(), executed=0)
    if affected - {c["id"] for c in rerun.cases}:
        return run_suite(profile, report_dir, faults=faults, variants=baseline.variants)
    return merge(baseline, rerun, faults)


def merge(baseline: SuiteResult, rerun: SuiteResult, faults: tuple[str, ...]) -> SuiteResult:
    """Baseline records with the rerun's replacing them, and requirement verdicts recomputed from the records
    by the plugin's ``build_results`` (the same grading as a whole run)."""
    records = {c["id"]: c for c in baseline.cases}
    records.update({c["id"]: c for c in rerun.cases})
    as_recorded = [{**c, "requirements": c["verdicts"]} for c in records.values()]  # results.json -> record
    doc = build_results(as_recorded, gateway_spec.load_requirements(), Baseline(), run={})
    verdicts = {rid: entry["verdict"] for rid, entry in doc["requirements"].items()}
    return SuiteResult(baseline.profile, faults, baseline.variants, rerun.exit_code if rerun.cases else 0,
                       verdicts, tuple(records.values()), rerun.executed, False)


class Baselines:
    """Clean runs, one per (profile, variants), computed on first use and kept for the process (xdist worker)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._runs: dict[tuple[str, tuple[str, ...]], SuiteResult] = {}
        self.executed = 0  # suite cases run by the baselines of this process

    def get(self, profile: str, variants: tuple[str, ...] = ()) -> SuiteResult:
        key = (profile, tuple(variants))
        if key not in self._runs:
            folder = self.root / "-".join(("clean", profile, *variants))
            self._runs[key] = run_suite(profile, folder, variants=variants, trace=True)
            self.executed += self._runs[key].executed
        return self._runs[key]


def claiming_profiles(feature: str | None) -> list[str]:
    """Bundled profiles that claim ``feature`` (all of them for core requirements), in preference order."""
    names = gateway_spec.profile_names()
    ordered = [p for p in PROFILE_PREFERENCE if p in names] + sorted(set(names) - set(PROFILE_PREFERENCE))
    if feature is None:
        return ordered
    return [p for p in ordered if feature in (gateway_spec.load_profile(p).raw.get("features") or [])]


def choose_profile(requirement: gateway_spec.Requirement, baselines: Baselines,
                   variants: tuple[str, ...] = ()) -> str | None:
    """The profile a requirement's fault runs in: the first claiming its feature whose clean run judges it.

    A check may skip for a profile that lacks a fact it needs (no key pattern, no routing, no documented header
    family), or judge nothing there (UNTESTABLE: no documented owner or Retry-After): then the next claiming
    profile is tried. NOT_RUN means no case carries the ID in any profile, so the
    first profile is as good as any. ``None`` when no bundled profile claims the feature.
    """
    candidates = claiming_profiles(requirement.feature)
    for profile in candidates:
        # UNTESTABLE: the profile's clean run judged nothing of it (a fact its check needs is undocumented there)
        if baselines.get(profile, variants).verdicts.get(requirement.id, "NOT_RUN") not in ("SKIP", "UNTESTABLE"):
            return profile
    return candidates[0] if candidates else None


def expected_verdict(requirement: gateway_spec.Requirement) -> str:
    """The verdict a broken requirement must get: WARN for a SHOULD, FAIL for a MUST or a claimed MAY."""
    return "WARN" if requirement.level == "SHOULD" else "FAIL"


def changed_verdicts(before: SuiteResult, after: SuiteResult) -> dict[str, tuple[str, str]]:
    """Requirement ID → (baseline verdict, new verdict) for every requirement whose verdict moved."""
    ids = set(before.verdicts) | set(after.verdicts)
    return {rid: (before.verdicts.get(rid, "NOT_RUN"), after.verdicts.get(rid, "NOT_RUN"))
            for rid in sorted(ids) if before.verdicts.get(rid) != after.verdicts.get(rid)}


def describe_changes(changes: dict[str, tuple[str, str]], run: SuiteResult) -> str:
    """Readable lines: which requirement moved, and the cases that moved it."""
    lines = []
    for rid, (old, new) in changes.items():
        lines.append(f"  {rid}: {old} -> {new}")
        lines.extend(f"      {case}" for case in run.cases_for(rid)[:3])
    return "\n".join(lines)


@dataclass(frozen=True)
class Exemptions:
    """``spec/fault-exemptions.yaml``: why a testable MUST has no fault, which requirements have no check yet, and
    which matrix rows do not hold yet (fault or check to fix, named with its owner)."""

    no_fault: dict[str, str]
    unchecked: dict[str, str]
    known_broken: dict[str, str]


def load_exemptions(path: Path = EXEMPTIONS_FILE) -> Exemptions:
    """Read the exemptions file: ``no_fault``, ``unchecked`` and ``known_broken`` lists of ``{id, reason}``."""
    doc = gateway_spec.load_yaml(path) or {}

    def entries(key: str) -> dict[str, str]:
        return {e["id"]: " ".join(str(e["reason"]).split()) for e in doc.get(key) or []}

    return Exemptions(no_fault=entries("no_fault"), unchecked=entries("unchecked"),
                      known_broken=entries("known_broken"))


# Opt-in modes whose cases are skipped in a default run: a requirement they alone carry is not checked by default.
OPT_IN_MODULES = ("test_fuzz.py",)


class _MarkerCollector:
    """pytest plugin: the requirement IDs carried by the collected cases (outside opt-in modules)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            if item.path.name in OPT_IN_MODULES:
                continue
            for mark in item.iter_markers("requirement"):
                self.ids.update(mark.args)


def checked_requirement_ids() -> set[str]:
    """Requirement IDs the bundled suite checks in a default run, from its collected ``requirement`` markers."""
    collector = _MarkerCollector()
    _forget_suite_modules()
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(["--pyargs", "conformance.suite", "--collect-only", *_QUIET], plugins=[collector])
    if code != 0:
        raise RuntimeError(f"collecting conformance.suite failed (exit {code})")
    return collector.ids
