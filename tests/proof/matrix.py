"""Runner for the negative-control and no-false-alarm matrices: the whole conformance suite, in-process, many times.

One ``pytest.main`` per (profile, faults, variants) against the embedded reference server. The suite's modules are
imported once per process and reused by every run (pytest takes them from ``sys.modules``), so a run costs its
collection and its HTTP exchanges, not interpreter start-up and plugin discovery: measured ~0.9 s CPU per run
against ~6 s for a fresh ``python -m pytest``, and xdist spreads the runs over the workers.

Verdicts come from the run's own ``results.json``, the interface every consumer of the suite reads.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import gateway_spec

# Plugins a matrix run does not need: none of them takes part in grading. unraisableexception/threadexception
# end every session with five gc.collect() calls, which grow with the heap of a long-lived process (~0.5 s each).
_QUIET = ("-qq", "--no-header", "--tb=line", "-p", "no:cacheprovider", "-p", "no:allure_pytest",
          "-p", "no:unraisableexception", "-p", "no:threadexception", "-p", "no:randomly",
          "-p", "no:benchmark", "-p", "no:xdist")

# Profiles tried for a requirement's fault, most featureful first (see choose_profile).
PROFILE_PREFERENCE = ("openai", "unit23", "unifiedai", "wallet-gateway", "unified-llm-gateway", "unillm", "ollama")

EXEMPTIONS_FILE = gateway_spec.spec_dir() / "fault-exemptions.yaml"


@dataclass(frozen=True)
class SuiteResult:
    """What one suite run decided: the verdict of every requirement and the cases behind them."""

    profile: str
    faults: tuple[str, ...]
    variants: tuple[str, ...]
    exit_code: int
    verdicts: dict[str, str]
    cases: tuple[dict, ...]

    def cases_for(self, requirement: str) -> list[str]:
        """``case id: verdict (message)`` lines for the cases that judged ``requirement``: evidence for a report."""
        lines = []
        for case in self.cases:
            verdict = case.get("verdicts", {}).get(requirement)
            if verdict is not None:
                message = " ".join(str(case.get("message") or "").split())[:300]
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


def run_suite(profile: str, report_dir: Path, *, faults=(), variants=()) -> SuiteResult:
    """Run the whole bundled suite against the embedded server for ``profile`` with the given faults/variants."""
    _reuse_ssl_context()
    args = ["--pyargs", "conformance.suite", "--profile", profile, "--report-dir", str(report_dir), *_QUIET]
    for fault in faults:
        args += ["--server-fault", fault]
    for variant in variants:
        args += ["--server-variant", variant]
    results = Path(report_dir) / "results.json"
    results.unlink(missing_ok=True)
    _forget_suite_modules()
    with contextlib.redirect_stdout(io.StringIO()):  # the inner run's dots are noise in the outer report
        code = int(pytest.main(args))
    if not results.is_file():
        raise RuntimeError(f"suite run wrote no results.json (exit {code}): pytest {' '.join(args)}")
    data = json.loads(results.read_text(encoding="utf-8"))
    verdicts = {rid: entry["verdict"] for rid, entry in data["requirements"].items()}
    return SuiteResult(profile, tuple(faults), tuple(variants), code, verdicts, tuple(data.get("cases", ())))


class Baselines:
    """Clean runs, one per (profile, variants), computed on first use and kept for the process (xdist worker)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._runs: dict[tuple[str, tuple[str, ...]], SuiteResult] = {}

    def get(self, profile: str, variants: tuple[str, ...] = ()) -> SuiteResult:
        key = (profile, tuple(variants))
        if key not in self._runs:
            folder = self.root / "-".join(("clean", profile, *variants))
            self._runs[key] = run_suite(profile, folder, variants=variants)
        return self._runs[key]


def claiming_profiles(feature: str | None) -> list[str]:
    """Bundled profiles that claim ``feature`` (all of them for core requirements), in preference order."""
    names = gateway_spec.profile_names()
    ordered = [p for p in PROFILE_PREFERENCE if p in names] + sorted(set(names) - set(PROFILE_PREFERENCE))
    if feature is None:
        return ordered
    return [p for p in ordered if feature in (gateway_spec.load_profile(p).raw.get("features") or [])]


def choose_profile(requirement: gateway_spec.Requirement, baselines: Baselines) -> str | None:
    """The profile a requirement's fault runs in: the first claiming its feature whose clean run judges it.

    A check may skip for a profile that lacks a fact it needs (no key pattern, no routing, no documented header
    family): then the next claiming profile is tried. NOT_RUN means no case carries the ID in any profile, so the
    first profile is as good as any. ``None`` when no bundled profile claims the feature.
    """
    candidates = claiming_profiles(requirement.feature)
    for profile in candidates:
        if baselines.get(profile).verdicts.get(requirement.id, "NOT_RUN") != "SKIP":
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
