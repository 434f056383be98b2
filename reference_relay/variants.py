"""Valid alternatives a correct gateway may choose; a transit check must pass against every one of them.

Like faults, each is a set of transforms at the seams (``seams.py``); ``model-aliases`` instead turns on the
relay's own alias mapping (``RelayConfig.model_aliases``) with a swap of two interchangeable chat models.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reference_relay.seams import Event, Exchange, Seams


@dataclass(frozen=True)
class RelayVariant:
    name: str
    description: str
    transforms: dict[str, Callable[..., Any]] = field(default_factory=dict)


VARIANTS: dict[str, RelayVariant] = {}


def variant(name: str, description: str, **transforms: Callable) -> None:
    VARIANTS[name] = RelayVariant(name, description, transforms)


def _inject_usage(body: dict, ex: Exchange) -> dict:
    if body.get("stream") is True and not ex.usage_requested:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        ex.notes["usage_injected"] = True
    return body


def _strip_usage(events: Iterable[Event], ex: Exchange) -> Iterator[Event]:
    for kind, value in events:
        if kind == "chunk" and ex.notes.get("usage_injected") and isinstance(value, dict):
            if value.get("choices") == [] and value.get("usage") is not None:
                continue  # the usage chunk the client did not ask for
            value.pop("usage", None)
        yield kind, value


class _OwnLimits:
    """The relay's own request counter, shown as consistent x-ratelimit-*-requests values."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def remaining(self) -> int:
        with self._lock:
            return max(0, self.LIMIT - next(self._count))


_LIMITS = _OwnLimits()
_REQUEST_FAMILY = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")


def _own_headers(headers: list[tuple[str, str]], ex: Exchange) -> list[tuple[str, str]]:
    own = [(n, v) for n, v in headers if n.lower() not in ("x-request-id", *_REQUEST_FAMILY)]
    own.append(("x-request-id", f"req_relay_own_{uuid.uuid4().hex}"))
    if any(n.lower() in _REQUEST_FAMILY for n, _ in headers):  # the upstream's family, replaced by the relay's
        own += [("x-ratelimit-limit-requests", str(_OwnLimits.LIMIT)),
                ("x-ratelimit-remaining-requests", str(_LIMITS.remaining())),
                ("x-ratelimit-reset-requests", "1m0s")]
    return own


def _reframe(frames: Iterable[bytes], ex: Exchange) -> Iterator[bytes]:
    for frame in frames:
        frame = frame.replace(b"\n", b"\r\n")
        middle = len(frame) // 2
        yield frame[:middle]
        yield frame[middle:]


variant("include-usage-injected", "include_usage is forced upstream on streams; the usage chunk the client did not "
        "ask for (and the usage keys of other chunks) are stripped.", request=_inject_usage, chunks=_strip_usage)
variant("own-headers", "The relay's own x-request-id, and its own x-ratelimit-*-requests values in place of the "
        "upstream's.", headers=_own_headers)
variant("sse-reframe", "Streams re-framed: CRLF line endings, every event written in two pieces.", bytes=_reframe)
variant("model-aliases", "Two interchangeable chat models of the profile swap names: each client name goes upstream "
        "as the other, and answers are mapped back.")


def swap_aliases(profile: Any) -> dict[str, str]:
    """Client name -> upstream name for two chat models of the profile that behave alike (same reasoning)."""
    chat = profile.get("models.chat") or []
    for a, b in itertools.combinations(chat, 2):
        if a.get("reasoning") == b.get("reasoning") and a.get("response_model") == b.get("response_model"):
            return {a["id"]: b["id"], b["id"]: a["id"]}
    raise ValueError(f"variant model-aliases: profile {profile.name} has no two interchangeable chat models")


def validate(names: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown relay variant(s): {', '.join(unknown)} (see --list-variants)")


def install(seams: Seams, names: Iterable[str], config: Any) -> None:
    for name in sorted(names):
        if name == "model-aliases":
            config.model_aliases.update(swap_aliases(config.profile))
        for seam, transform in VARIANTS[name].transforms.items():
            seams.add(seam, transform)


def describe() -> list[str]:
    return [f"{v.name:<24}{v.description}" for v in VARIANTS.values()]
