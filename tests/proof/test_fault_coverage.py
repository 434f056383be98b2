"""Sanity of the matrix itself: every gap between registry, faults and checks is either closed or written down.

``spec/fault-exemptions.yaml`` holds the written reasons: ``no_fault`` for testable MUSTs without a fault,
``unchecked`` for testable requirements no default-run case checks yet. Both lists must stay exact: a stale entry
(the fault or the check now exists) fails here, as a stale vendor baseline fails a conformance run.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

import gateway_spec
from reference_relay.faults import catalogue as relay_catalogue
from reference_server.faults import catalogue
from tests.proof import matrix

REGISTRY = gateway_spec.load_requirements()
# The negative controls of both proof targets: the reference server's (black-box requirements) and the reference
# relay's (the transit requirements of sandwich mode, proven in tests/relay).
FAULTS = {**catalogue(), **relay_catalogue()}


@pytest.fixture(scope="module")
def checked() -> set[str]:
    """Requirement IDs the suite's collected cases carry (one in-process --collect-only)."""
    return matrix.checked_requirement_ids()


def test_exemptions_file_matches_its_schema():
    schema = json.loads((gateway_spec.spec_dir() / "schemas" / "fault-exemptions.schema.json").read_text())
    doc = gateway_spec.load_yaml(matrix.EXEMPTIONS_FILE)
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    assert not errors, "spec/fault-exemptions.yaml breaks its schema:\n  " + "\n  ".join(errors)


def test_exemption_lists_have_no_duplicates():
    doc = gateway_spec.load_yaml(matrix.EXEMPTIONS_FILE)
    for key in ("no_fault", "unchecked", "known_broken"):
        ids = [e["id"] for e in doc.get(key) or []]
        assert len(ids) == len(set(ids)), f"{key}: duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}"


def test_every_fault_names_a_registered_testable_requirement():
    unknown = sorted(rid for rid in FAULTS if rid not in REGISTRY)
    untestable = sorted(rid for rid in FAULTS if rid in REGISTRY and not REGISTRY[rid].testable)
    collateral = sorted(f"{f.requirement} -> {c}" for f in FAULTS.values() for c in f.collateral if c not in REGISTRY)
    assert not unknown, f"faults name IDs missing from spec/requirements: {unknown}"
    assert not untestable, f"faults break requirements the registry calls untestable: {untestable}"
    assert not collateral, f"fault collateral names IDs missing from spec/requirements: {collateral}"


def test_every_testable_must_has_a_fault_or_a_written_reason(exemptions):
    missing = [rid for rid, req in REGISTRY.items()
               if req.testable and req.level == "MUST" and rid not in FAULTS and rid not in exemptions.no_fault]
    assert not missing, ("testable MUSTs with neither a fault in reference_server or reference_relay nor a reason under no_fault: in "
                         f"spec/fault-exemptions.yaml: {missing}")


def test_no_fault_entries_are_not_stale(exemptions):
    unknown = sorted(rid for rid in exemptions.no_fault if rid not in REGISTRY)
    stale = sorted(rid for rid in exemptions.no_fault if rid in FAULTS)
    pointless = sorted(rid for rid in exemptions.no_fault if rid in REGISTRY and not REGISTRY[rid].testable)
    assert not unknown, f"no_fault: names IDs missing from spec/requirements: {unknown}"
    assert not stale, f"no_fault: these requirements have a fault now, remove their entries: {stale}"
    assert not pointless, f"no_fault: these are untestable (no fault is needed), remove their entries: {pointless}"


def test_every_testable_requirement_has_a_check_or_a_written_reason(checked, exemptions):
    missing = [rid for rid, req in REGISTRY.items()
               if req.testable and rid not in checked and rid not in exemptions.unchecked]
    assert not missing, ("testable requirements no case of conformance/suite checks, not listed under unchecked: "
                         f"in spec/fault-exemptions.yaml: {missing}")


def test_unchecked_entries_are_not_stale(checked, exemptions):
    unknown = sorted(rid for rid in exemptions.unchecked if rid not in REGISTRY)
    stale = sorted(rid for rid in exemptions.unchecked if rid in checked)
    assert not unknown, f"unchecked: names IDs missing from spec/requirements: {unknown}"
    assert not stale, f"unchecked: these requirements are checked now, remove their entries: {stale}"


def test_known_broken_entries_name_faults(exemptions):
    unknown = sorted(rid for rid in exemptions.known_broken if rid not in FAULTS)
    assert not unknown, f"known_broken: names rows that are not faults of the catalogue: {unknown}"
