"""Negative-control faults: each one breaks exactly one requirement of the registry on purpose.

Modules declare their faults at import time (``FAULT_X = faults.declare("CHAT-STREAM-002", "...")``) and test
them where they act with ``config.fault(FAULT_X)``. ``catalogue()`` imports every surface so the list is complete;
``validate`` turns an unknown fault id into a startup error instead of a silently healthy server.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# Modules that declare faults; imported by catalogue() so the list does not depend on what happened to be imported.
FAULT_MODULES = (
    "reference_server.faults.headers",
    "reference_server.faults.errors",
    "reference_server.policy.auth",
    "reference_server.faults.models",
    "reference_server.faults.completion",
    "reference_server.faults.problems",
    "reference_server.faults.validation",
    "reference_server.faults.answer",
    "reference_server.faults.usage",
    "reference_server.surfaces.streaming",
    "reference_server.faults.stream",
    "reference_server.faults.sse",
    "reference_server.surfaces.embeddings",
    "reference_server.surfaces.ollama",
    "reference_server.policy.limits",
    "reference_server.control.endpoints",
    "reference_server.faults.cors",
)


@dataclass(frozen=True)
class Fault:
    """``requirement``: the ID this fault breaks; ``collateral``: IDs it necessarily breaks as well."""

    requirement: str
    description: str
    collateral: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.requirement


FAULTS: dict[str, Fault] = {}


def declare(requirement: str, description: str, collateral: tuple[str, ...] = ()) -> Fault:
    """Add a fault to the catalogue (called at import time by the module that implements it)."""
    fault = Fault(requirement, description, tuple(collateral))
    FAULTS[requirement] = fault
    return fault


def catalogue() -> dict[str, Fault]:
    """Every declared fault, keyed by requirement ID, sorted by ID."""
    for name in FAULT_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a surface not written yet declares nothing
            if exc.name != name:
                raise
    return dict(sorted(FAULTS.items()))


def validate(requirement_ids: list[str] | tuple[str, ...] | frozenset[str]) -> None:
    """Raise ``ValueError`` naming every id that has no fault, so a typo cannot start a healthy server."""
    known = catalogue()
    unknown = sorted(set(requirement_ids) - set(known))
    if unknown:
        raise ValueError(f"unknown fault id(s): {', '.join(unknown)} (see --list-faults)")


def describe() -> list[str]:
    """One line per fault: ``ID  description  [also breaks: ...]``, for ``--list-faults``."""
    lines = []
    for fault in catalogue().values():
        extra = f"  [also breaks: {', '.join(fault.collateral)}]" if fault.collateral else ""
        lines.append(f"{fault.requirement:<24}{fault.description}{extra}")
    return lines
