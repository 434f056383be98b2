"""Relay configuration: upstream address and key, client keys, retry budget, timeouts, model aliases, faults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway_spec import Profile, load_profile

# Used when the profile documents no retry budget: one retry, well inside openai-python's own two and the
# public failover scorecards' bound (transit.md §2, failoverbench S02).
DEFAULT_MAX_ATTEMPTS = 2
# Used when the profile documents no upstream timeout: openai-python's client default (contract.md §2.2).
DEFAULT_TIMEOUT_SECONDS = 600.0
# A Retry-After longer than this is not waited for: the 429 goes back to the client at once, with the header.
DEFAULT_MAX_RETRY_WAIT = 10.0


@dataclass
class RelayConfig:
    """Everything ``create_relay_app`` needs.

    ``upstream``: base URL of the upstream's OpenAI surface root (``http://host:port``; the profile's
    ``base_path`` is appended). ``upstream_key``: the relay's own key for the upstream (default: the profile's
    test key). ``client_keys``: keys the relay accepts from its clients (default: the profile's test keys, as a
    gateway knows the keys it issued). ``model_aliases``: client-facing name -> upstream name, mapped back in answers.
    ``forward_mock_headers``: test-only; also forward the client's ``X-Mock-*`` headers upstream, so a reference
    server behind the relay can be told to fail without the scripting API.
    """

    profile: Profile
    upstream: str
    upstream_key: str | None = None
    client_keys: frozenset[str] = frozenset()
    max_attempts: int | None = None
    upstream_timeout: float | None = None
    connect_timeout: float = 5.0
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    model_aliases: dict[str, str] = field(default_factory=dict)
    faults: frozenset[str] = frozenset()
    variants: frozenset[str] = frozenset()
    forward_mock_headers: bool = False

    @classmethod
    def for_profile(cls, name: str | Profile, upstream: str, **kwargs: Any) -> RelayConfig:
        """Config for a bundled profile (name), a profile file (path) or a loaded ``Profile``."""
        for key in ("faults", "variants", "client_keys"):
            if key in kwargs:
                kwargs[key] = frozenset(kwargs[key])
        profile = name if isinstance(name, Profile) else load_profile(name)
        return cls(profile=profile, upstream=upstream, **kwargs)

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        if self.upstream_key is None:
            self.upstream_key = self.profile.test_key or "reference-relay"
        if not self.client_keys:
            extra = (self.profile.get("auth.extra_test_keys") or {}).values()
            self.client_keys = frozenset(k for k in (self.profile.test_key, *extra) if k)
        if self.max_attempts is None:
            documented = self.profile.get("upstream.max_attempts")
            self.max_attempts = int(documented) if documented else DEFAULT_MAX_ATTEMPTS
        if self.upstream_timeout is None:
            self.upstream_timeout = float(self.profile.get("timeouts.upstream_seconds") or DEFAULT_TIMEOUT_SECONDS)
        if self.max_attempts < 1 or self.upstream_timeout <= 0:
            raise ValueError("max_attempts must be >= 1 and upstream_timeout > 0")

    @property
    def base_path(self) -> str:
        return self.profile.base_path

    def upstream_url(self, path: str) -> str:
        """The upstream URL of a surface path such as ``/chat/completions``."""
        return f"{self.upstream}{self.base_path}{path}"

    def accepts_client_key(self, key: str) -> bool:
        """True for a key the relay issued (``client_keys``) that also has the profile's key format."""
        pattern = self.profile.get("auth.key_pattern")
        return key in self.client_keys and (not pattern or re.fullmatch(pattern, key) is not None)

    def failure(self, kind: str) -> tuple[int, str]:
        """(status, error type) the profile documents for an upstream failure ``kind``
        (``server_error``, ``timeout``, ``unreachable``, ``auth``); 502/504 and ``server_error`` where silent."""
        fallback = 504 if kind == "timeout" else 502
        entry = self.profile.get(f"upstream.failures.{kind}") or {}
        documented_status = entry.get("status") or fallback
        status = int(documented_status[0] if isinstance(documented_status, list) else documented_status)
        types = self.profile.get("errors.types") or {}
        documented = types.get(status, types.get(str(status)))
        etype = entry.get("type") or (documented if isinstance(documented, str) else None) or "server_error"
        return status, etype

    def to_upstream_model(self, name: Any) -> Any:
        return self.model_aliases.get(name, name) if isinstance(name, str) else name

    def to_client_model(self, name: Any) -> Any:
        if not isinstance(name, str):
            return name
        for client, upstream in self.model_aliases.items():
            if upstream == name:
                return client
        return name
