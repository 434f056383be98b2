"""Negative-control faults: each one breaks exactly one requirement of the registry on purpose."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    requirement: str
    description: str
    collateral: tuple[str, ...] = ()


FAULTS: dict[str, Fault] = {}


def declare(requirement: str, description: str, collateral: tuple[str, ...] = ()) -> Fault:
    """Add a fault to the catalogue (called at import time by the module that implements it)."""
    fault = Fault(requirement, description, tuple(collateral))
    FAULTS[requirement] = fault
    return fault
