"""The relay's negative controls: the correct relay meets every transit requirement, each fault breaks its own
requirement, each valid variant breaks none, and (``-m matrix``) each fault breaks nothing but its own.

The judges are ``tests/relay/checks.py``; the upstream is a real reference server on a loopback port
(``harness.py``), told to fail through ``X-Mock-*`` headers the relay forwards in its test mode.
"""

from __future__ import annotations

import pytest

from gateway_spec import load_requirements
from reference_relay.faults import catalogue
from reference_relay.variants import VARIANTS
from tests.relay.checks import CHECKS
from tests.relay.harness import closed_port

TRANSIT_AREAS = ("relay-request", "relay-response", "relay-stream", "upstream-failures", "disclosure")
TRANSIT = sorted(rid for rid, req in load_requirements().items() if req.area in TRANSIT_AREAS)
FAULTS = catalogue()
UNREACHABLE = "UPSTREAM-FAILURES-007"  # judged through a relay whose upstream refuses connections
_CLOSED = closed_port()


def _probe(relays, rid: str, faults=(), variants=()):
    return relays.probe(faults, variants, upstream_url=_CLOSED if rid == UNREACHABLE else None)


def test_every_transit_requirement_has_a_fault_and_a_check():
    assert sorted(FAULTS) == TRANSIT
    assert sorted(CHECKS) == TRANSIT
    assert all(load_requirements()[rid].feature == "sandwich" for rid in TRANSIT)


@pytest.mark.parametrize("rid", TRANSIT)
def test_correct_relay_meets(relays, rid):
    assert CHECKS[rid](_probe(relays, rid)) == []


@pytest.mark.parametrize("rid", TRANSIT)
def test_fault_breaks_its_requirement(relays, rid):
    problems = CHECKS[rid](_probe(relays, rid, faults=(rid,)))
    assert problems, f"fault {rid} ({FAULTS[rid].description}) went unnoticed"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("rid", TRANSIT)
def test_valid_variant_breaks_nothing(relays, rid, variant):
    assert CHECKS[rid](_probe(relays, rid, variants=(variant,))) == []


@pytest.mark.matrix  # ~3 min on one core: every check against every fault; run with tox -e matrix
@pytest.mark.parametrize("fault", TRANSIT)
def test_fault_breaks_nothing_else(relays, fault):
    allowed = {fault, *FAULTS[fault].collateral}
    broken = {rid: problems for rid in TRANSIT if rid not in allowed
              for problems in [CHECKS[rid](_probe(relays, rid, faults=(fault,)))] if problems}
    assert broken == {}
