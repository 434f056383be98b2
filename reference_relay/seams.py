"""The seams where the relay lets faults and variants change what it does, and the exchange they see.

The relay's code calls each seam at one fixed point; a fault or variant is a transform registered for a seam
(``faults.py``, ``variants.py``), so no code path of the relay branches on a fault. Seams, in the order a request
meets them:

=====================  ==========================================================================================
``request``            the JSON body about to go upstream (after model mapping): ``(body, ex) -> body``
``outbound_headers``   the headers about to go upstream: ``(headers: dict, ex) -> dict``
``policy``             retry budget, Retry-After handling and upstream timeout: ``(Policy, ex) -> Policy``
``failure``            the answer made from an upstream failure: ``(Failure, ex) -> Failure``
``answer``             a non-streamed 200 body about to go to the client: ``(body, ex) -> body``
``chunks``             the stream as parsed events: ``(Iterator[Event], ex) -> Iterator[Event]``
``bytes``              the stream as encoded frames: ``(Iterator[bytes], ex) -> Iterator[bytes]``
``headers``            the headers of any answer to the client: ``(list[(name, value)], ex) -> list``
=====================  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

SEAMS = ("request", "outbound_headers", "policy", "failure", "answer", "chunks", "bytes", "headers")


@dataclass(frozen=True)
class Policy:
    """How the relay treats the upstream for one request.

    ``max_attempts``: upstream attempts in all (1 = no retry). ``honour_retry_after``: wait what the upstream's
    ``retry-after-ms`` / ``Retry-After`` says before the next attempt. ``timeout``: seconds the upstream may stay
    silent (before headers, between chunks) before the relay gives up; ``None`` waits forever. ``backoff``: the
    first wait when the upstream says nothing (doubled per attempt).
    """

    max_attempts: int
    honour_retry_after: bool
    timeout: float | None
    connect_timeout: float
    max_retry_wait: float
    backoff: float = 0.25


@dataclass
class Failure:
    """An answer the relay makes because the upstream failed. ``kind``: ``rate_limited``, ``server_error``,
    ``auth``, ``timeout``, ``unreachable``, ``client_error`` (the upstream refused the request itself).
    ``body``: a JSON-able dict, or ``raw`` bytes with ``content_type`` when not JSON."""

    kind: str
    status: int
    body: dict[str, Any] | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    upstream_status: int | None = None
    raw: bytes | None = None
    content_type: str = "application/json"


# A stream event: ("chunk", dict) | ("error", dict) | ("done", None) | ("cut", reason). "cut" means the upstream
# stopped (closed, reset, went silent) before [DONE] and without an error event.
Event = tuple[str, Any]


@dataclass
class Exchange:
    """One client request as it moves through the relay; transforms read it (and may note things on it)."""

    config: Any  # RelayConfig
    route: str  # chat | embeddings | models | model
    client_body: dict[str, Any] | None
    client_authorization: str | None
    stream: bool = False
    upstream_status: int | None = None
    upstream_headers: dict[str, str] = field(default_factory=dict)  # lower-case names, last attempt
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def usage_requested(self) -> bool:
        """True when the client itself asked for the streamed usage chunk."""
        options = (self.client_body or {}).get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


Transform = Callable[..., Any]


class Seams:
    """The transforms in force, per seam, applied in registration order."""

    def __init__(self) -> None:
        self._at: dict[str, list[Transform]] = {name: [] for name in SEAMS}

    def add(self, seam: str, transform: Transform) -> None:
        if seam not in self._at:
            raise ValueError(f"unknown seam {seam!r}; seams: {', '.join(SEAMS)}")
        self._at[seam].append(transform)

    def apply(self, seam: str, value: Any, ex: Exchange) -> Any:
        for transform in self._at[seam]:
            value = transform(value, ex)
        return value

    def stream(self, seam: str, items: Iterable[Any], ex: Exchange) -> Iterator[Any]:
        """Like ``apply`` for the iterator seams (``chunks``, ``bytes``): each transform wraps the last."""
        for transform in self._at[seam]:
            items = transform(items, ex)
        return iter(items)
