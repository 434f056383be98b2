"""Server configuration: which profile to serve, which faults and variants are on, keys, clock and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway_spec import Profile, load_profile
from reference_server.faults.trace import FaultTrace


@dataclass
class ServerConfig:
    """Everything ``create_app`` needs. Built from CLI flags, environment or tests.

    ``faults``: requirement IDs the server breaks on purpose (negative controls).
    ``variants``: valid alternative behaviours the contract allows (e.g. ``sse-crlf``), for no-false-alarm tests.
    ``clock``: fixed unix time used for ``created`` fields, so the same request gives the same bytes.
    ``keys``: API key -> key settings (tier, balance, allowlist, ...); the profile's test keys are always added.
    ``trace_faults``: record which faults each request consults (see ``faults/trace.py``).
    """

    profile: Profile
    faults: frozenset[str] = frozenset()
    variants: frozenset[str] = frozenset()
    clock: int = 1_700_000_000
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_body_bytes: int = 4 * 1024 * 1024
    journal_size: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)
    trace_faults: bool = False
    # Where state lives (rate-limit windows, counters, journal, scripted rules): None/"memory" or "redis://...".
    state: str | None = None
    # Scripted rules registered at start-up (``--script FILE``; docs/scripts.md), as raw JSON rules.
    scripts: list[dict[str, Any]] = field(default_factory=list)
    fault_trace: FaultTrace | None = field(default=None, init=False, repr=False, compare=False)
    # seam -> the transforms that can act for this config, fixed by ``faults.seams.bind`` when the app is built
    seam_transforms: dict[Any, tuple[Any, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)
    # (model name, kind) -> (profile, the model it resolves to there), for an app serving no fault (surfaces/models.py)
    model_table: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

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

    def __post_init__(self) -> None:
        # The profile's test keys are always accepted; explicit settings given in ``keys`` win over the role seeds.
        self.keys = {**profile_keys(self.profile), **self.keys}
        if self.trace_faults:
            self.fault_trace = FaultTrace()
            # An instance attribute shadows the method: untraced servers keep the fast path below untouched.
            self.fault = self._traced_fault

    def _traced_fault(self, requirement_id: Any) -> bool:
        """``fault`` that also records the question in the current request's trace, whatever the answer."""
        rid = str(getattr(requirement_id, "requirement", requirement_id))
        self.fault_trace.consult(rid)
        return rid in self.faults

    def fault(self, requirement_id: Any) -> bool:
        """True when the server must break this requirement (an ID, or the ``Fault`` that ``faults.declare`` made)."""
        if not self.faults:  # the common case, asked dozens of times per request: skip the string work
            return False
        return str(getattr(requirement_id, "requirement", requirement_id)) in self.faults

    def fault_questions_matter(self) -> bool:
        """False when no ``fault()`` can answer True and none is traced: a caller may skip asking at all."""
        return bool(self.faults) or self.fault_trace is not None

    def variant(self, name: str) -> bool:
        """True when the valid alternative behaviour ``name`` (see ``variants.py``) is switched on."""
        return name in self.variants


def role_settings(role: str, profile: Profile) -> dict[str, Any]:
    """Key settings for a profile's extra test key role (``no-balance``, ``suspended``, ``quota-exhausted``,
    ``daily-limit``, ``restricted``, ``tier-<name>``; ``expired``/``disabled`` are refused by auth)."""
    if role == "no-balance":
        return {"role": role, "balance": 0}
    if role == "suspended":
        return {"role": role, "suspended": True}
    if role == "quota-exhausted":
        return {"role": role, "token_quota_exhausted": True}
    if role == "daily-limit":  # today's allowance already used
        return {"role": role, "daily_requests": 0}
    if role == "restricted":
        return {"role": role, "allowed_models": [profile.get("models.default_chat")]}
    if role.startswith("tier-"):
        return {"role": role, "tier": role.removeprefix("tier-")}
    return {"role": role}


def profile_keys(profile: Profile) -> dict[str, dict[str, Any]]:
    """The keys a profile's reference server accepts out of the box: ``auth.test_key`` and ``auth.extra_test_keys``."""
    keys: dict[str, dict[str, Any]] = {}
    if profile.test_key:
        keys[profile.test_key] = {"role": "test"}
    for role, key in (profile.get("auth.extra_test_keys") or {}).items():
        keys[key] = role_settings(role, profile)
    return keys
