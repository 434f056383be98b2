"""Server configuration: which profile to serve, which faults and variants are on, keys, clock and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway_spec import Profile, load_profile


@dataclass
class ServerConfig:
    """Everything ``create_app`` needs. Built from CLI flags, environment or tests.

    ``faults``: requirement IDs the server breaks on purpose (negative controls).
    ``variants``: valid alternative behaviours the contract allows (e.g. ``sse-crlf``), for no-false-alarm tests.
    ``clock``: fixed unix time used for ``created`` fields, so the same request gives the same bytes.
    ``keys``: API key -> key settings (tier, balance, allowlist, ...); the profile's test keys are always added.
    """

    profile: Profile
    faults: frozenset[str] = frozenset()
    variants: frozenset[str] = frozenset()
    clock: int = 1_700_000_000
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_body_bytes: int = 4 * 1024 * 1024
    journal_size: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_profile(cls, name: str = "openai", **kwargs: Any) -> ServerConfig:
        """Config for a bundled profile (by name) or a profile file (by path)."""
        faults = kwargs.pop("faults", ())
        variants = kwargs.pop("variants", ())
        return cls(
            profile=load_profile(name),
            faults=frozenset(faults),
            variants=frozenset(variants),
            **kwargs,
        )

    def fault(self, requirement_id: str) -> bool:
        """True when the server must break this requirement."""
        return requirement_id in self.faults

    def variant(self, name: str) -> bool:
        return name in self.variants
