"""Sandwich mode's shared pieces for the transit checks: the view of a sandwich exchange (the client's side and the
upstream's journal entries for its nonce) and the builder helper that scripts the upstream (docs/sandwich.md).

Each sandwich exchange carries a fresh nonce in its last user message and a ``Script`` (the rule registered
upstream under that nonce, or none for the normal answer); the exchange store registers the rule, sends the
request through the gateway and records the journal entries with the exchange, so ``--gw-replay`` re-judges them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conformance.exchanges import Recorded, Spec
from conformance.options import SANDWICH_HINT
from conformance.transit import answer_view, error_events


@dataclass
class Transit:
    """One sandwich exchange: what the client sent and got, and every upstream attempt it caused (``journal``)."""

    name: str
    sent: Any
    status: int
    headers: httpx.Headers
    raw: bytes
    body: Any
    journal: list[dict]
    elapsed_s: float
    events: list | None = None  # a streamed answer's SSE events (with arrival times)
    chunks: list | None = None  # a streamed answer's JSON data events before [DONE]
    transcript: list = field(default_factory=list)

    @classmethod
    def of(cls, rec: Recorded) -> Transit:
        raw = rec.raw
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        events = chunks = None
        if rec.spec.streamed and body is None and rec.status == 200:
            sse = rec.sse()
            events, chunks = sse.events, sse.chunks()
        return cls(rec.name, rec.spec.body, rec.status, rec.headers, raw, body, list(rec.journal or []),
                   (rec.last.elapsed_ms or 0.0) / 1000, events, chunks, rec.exchanges)

    @property
    def streamed(self) -> bool:
        return self.events is not None

    @property
    def done(self) -> bool:
        return any(e.is_done for e in self.events or [])

    @property
    def errors(self) -> list[Any]:
        return error_events(self.events or [])

    @property
    def bodies(self) -> list[Any]:
        """The JSON body each upstream attempt received."""
        return [e.get("body") for e in self.journal]

    def view(self) -> dict[str, Any]:
        """Per choice: content, refusal, finish_reason, tool calls, logprobs; and usage (``answer_view``)."""
        return answer_view(self.body, self.chunks) if self.streamed else answer_view(self.body)

    def visible(self) -> str:
        """Everything a client can read: header names and values, and the body."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.multi_items())
        return head + "\n" + self.raw.decode("utf-8", "replace")

    def summary(self) -> str:
        return f"HTTP {self.status}, {len(self.journal)} upstream attempt(s): {self.raw[:200]!r}"

    def needs_attempt(self, *, refusal_ok: bool = False) -> None:
        """Skip (the requirement is unobservable) when no attempt reached the upstream; ``refusal_ok``: a 4xx is
        then the requirement's own allowed outcome, judged by the check instead."""
        if not (refusal_ok and 400 <= self.status < 500):
            skip_unless_upstream_reached(self)


def skip_unless_upstream_reached(recorded: Any) -> None:
    """Sandwich mode: a scripted exchange (``recorded``: a Recorded, CallResult or Transit, ``journal`` None outside
    sandwich mode) is judged only if an attempt reached the scripted upstream. A gateway that answers from its own
    state (LiteLLM's deployment cooldown after earlier upstream failures answers 429 at once) shows nothing of how
    it relays the upstream's failure, whatever it answered; the case SKIPs and says so."""
    if recorded.journal is not None and not recorded.journal:
        answered = f"HTTP {recorded.status}" if recorded.status else "with no HTTP answer"
        pytest.skip(f"unobservable: no attempt reached the upstream; the gateway answered {answered} on its own "
                    "(a cooldown or limit of its own, after earlier upstream failures?)")


def sandwich_of(plan: Any) -> Any:
    """The run's sandwich (``conformance.sandwich.Sandwich``); skips every case using the builder without one."""
    if plan.sandwich is None:
        pytest.skip(SANDWICH_HINT)
    return plan.sandwich


def transit_chat(plan: Any, label: str, text: str = "Say something.", *, respond: Any = None, times: int | None = None,
                 stream: bool = False, messages: list | None = None, key: str | None = None,
                 unreachable: bool = False, drop: tuple[str, ...] = (), **fields: Any) -> Spec:
    """A chat request through the gateway whose last user message carries the exchange's nonce, and the rule the
    upstream answers it with (``respond``; None: the normal answer). ``drop``: body fields left out (``model``)."""
    script = sandwich_of(plan).script(label + ("s" if stream else ""), respond, times=times, unreachable=unreachable)
    msgs = [dict(m) for m in messages] if messages else [{"role": "user", "content": text}]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    content = msgs[last]["content"]
    if isinstance(content, list):
        msgs[last]["content"] = [*content, {"type": "text", "text": script.marker}]
    else:
        msgs[last]["content"] = f"{content} {script.marker}"
    body = {"model": plan.chat_model, "messages": msgs, **fields}
    if stream:
        body["stream"] = True
    for name in drop:
        body.pop(name, None)
    return Spec.post("/chat/completions", body, read="sse-or-json" if stream else "buffered", script=script,
                     key=key, wants_429=True)
