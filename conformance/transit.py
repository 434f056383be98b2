"""The judges of the transit requirements (sandwich mode): pure functions from what the client got and what the
upstream received to a list of problems (empty: the requirement held).

One place for the judging logic: the suite's sandwich checks (``conformance/suite/test_relay_*.py``,
``test_upstream_failures.py``, ``test_disclosure.py``) and the relay's own proof (``tests/relay/checks.py``) both call
these. Nothing here sends a request or knows where the data came from (a journal entry, a capturing WSGI wrapper).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

ABSENT = "<absent>"
DEFAULT_MAX_ATTEMPTS = 3  # UPSTREAM-FAILURES-003's bound when the profile documents no retry budget
PLACEHOLDERS = frozenset({"undefined", "null", "none", "nil", "", "[object object]"})


# -- request relay ------------------------------------------------------------------------------------------------
def forwarded_problems(sent: dict, received: Iterable[Any], names: Iterable[str]) -> list[str]:
    """Each upstream attempt's body against the client's in every field of ``names`` (absent stays absent)."""
    problems = []
    for n, body in enumerate(received, 1):
        body = body if isinstance(body, dict) else {}
        for name in names:
            if body.get(name, ABSENT) != sent.get(name, ABSENT):
                problems.append(f"attempt {n}: {name} sent {sent.get(name, ABSENT)!r}, upstream got "
                                f"{body.get(name, ABSENT)!r}")
    return problems


def placeholder_token(authorization: str | None) -> str | None:
    """The placeholder an Authorization value carries instead of a token (``Bearer undefined``), else None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if not scheme or token.strip().lower() in PLACEHOLDERS:
        return token.strip() or "<empty>"
    return None


def bearer_fingerprint(token: str) -> str:
    """The fingerprint of ``Authorization: Bearer <token>`` the reference server's journal gives."""
    return "sha256:" + hashlib.sha256(f"Bearer {token}".encode()).hexdigest()


PLACEHOLDER_FINGERPRINTS = {bearer_fingerprint(t): t or "<empty>" for t in
                            ("undefined", "null", "None", "none", "nil", "NULL", "[object Object]", "")}


def journal_authorization_problems(entries: Iterable[dict]) -> list[str]:
    """RELAY-REQUEST-009 from journal entries: every Authorization sent upstream well formed, no placeholder."""
    problems = []
    for n, entry in enumerate(entries, 1):
        auth = entry.get("authorization") or {}
        if not auth.get("present"):
            continue
        placeholder = PLACEHOLDER_FINGERPRINTS.get(auth.get("fingerprint"))
        if placeholder is not None:
            problems.append(f"attempt {n}: Authorization: {auth.get('scheme') or ''} {placeholder}")
        elif not auth.get("well_formed"):
            problems.append(f"attempt {n}: a malformed Authorization ({(entry.get('headers') or {}).get('Authorization')!r})")
    return problems


def client_key_problems(entries: Iterable[dict], client_key: str) -> list[str]:
    """RELAY-REQUEST-008 from journal entries: the client's key in no attempt's Authorization (by fingerprint) and
    in no other header value (the journal shows non-credential headers in clear)."""
    mine = bearer_fingerprint(client_key)
    problems = []
    for n, entry in enumerate(entries, 1):
        if (entry.get("authorization") or {}).get("fingerprint") == mine:
            problems.append(f"attempt {n}: the client's key reached the upstream in Authorization")
        problems += [f"attempt {n}: the client's key reached the upstream in {name}"
                     for name, value in (entry.get("headers") or {}).items() if client_key in str(value)]
    return problems


# -- response relay -------------------------------------------------------------------------------------------------
def answer_view(body: Any = None, chunks: Iterable[Any] | None = None) -> dict[str, Any]:
    """Per choice index: content, refusal, finish_reason, tool calls (id, name, args), logprobs; plus usage. From
    a JSON body, or merged from a stream's chunks."""
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    if chunks is not None:
        for chunk in chunks:
            if not isinstance(chunk, dict) or "error" in chunk:
                continue
            usage = chunk.get("usage") or usage
            for c in chunk.get("choices") or []:
                if not isinstance(c, dict):
                    continue
                slot = choices.setdefault(c.get("index", 0), {"content": "", "refusal": "", "finish_reason": None,
                                                             "tool_calls": {}, "logprobs": []})
                delta = c.get("delta") or {}
                slot["content"] += delta.get("content") or ""
                slot["refusal"] += delta.get("refusal") or ""
                slot["finish_reason"] = c.get("finish_reason") or slot["finish_reason"]
                for call in delta.get("tool_calls") or []:
                    merged = slot["tool_calls"].setdefault(call.get("index", 0), {"id": "", "name": "", "args": ""})
                    fn = call.get("function") or {}
                    merged["id"] += call.get("id") or ""
                    merged["name"] += fn.get("name") or ""
                    merged["args"] += fn.get("arguments") or ""
                slot["logprobs"] += ((c.get("logprobs") or {}).get("content") or [])
    elif isinstance(body, dict):
        usage = body.get("usage")
        for c in body.get("choices") or []:
            if not isinstance(c, dict):
                continue
            message = c.get("message") or {}
            choices[c.get("index", 0)] = {
                "content": message.get("content") or "", "refusal": message.get("refusal") or "",
                "finish_reason": c.get("finish_reason"),
                "tool_calls": {i: {"id": t.get("id") or "", "name": (t.get("function") or {}).get("name") or "",
                                   "args": (t.get("function") or {}).get("arguments") or ""}
                               for i, t in enumerate(message.get("tool_calls") or []) if isinstance(t, dict)},
                "logprobs": (c.get("logprobs") or {}).get("content") or []}
    return {"choices": choices, "usage": usage}


def relayed_problems(mine: dict, theirs: dict, fields: Iterable[str]) -> list[str]:
    """The client's ``answer_view`` against the upstream's (or the scripted one) in ``fields`` (``usage`` compares
    the usage objects; the others each choice's field)."""
    fields = tuple(fields)
    problems = []
    if "usage" in fields and mine["usage"] != theirs["usage"]:
        problems.append(f"usage {mine['usage']} != upstream's {theirs['usage']}")
    if sorted(mine["choices"]) != sorted(theirs["choices"]):
        problems.append(f"choices {sorted(mine['choices'])} != upstream's {sorted(theirs['choices'])}")
    for index, choice in theirs["choices"].items():
        got = mine["choices"].get(index, {})
        problems += [f"choice {index} {name}: {_shown(got.get(name))} != upstream's {_shown(choice[name])}"
                     for name in fields if name != "usage" and got.get(name) != choice[name]]
    return problems


def _shown(value: Any) -> str:
    """A compared value as a finding shows it: an empty or missing text says so instead of ``''``."""
    return "absent or empty" if value in ("", None) else repr(value)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_problems(upstream_headers: Iterable[str], client_headers: Any) -> list[str]:
    """RELAY-RESPONSE-008: each upstream x-ratelimit-* header relayed or replaced (present under its name), and
    the client's remaining never above its limit. ``client_headers``: case-insensitive mapping."""
    problems = [f"{name} not relayed nor replaced" for name in sorted({n.lower() for n in upstream_headers
                                                                        if n.lower().startswith("x-ratelimit-")})
                if name not in client_headers]
    for kind in ("requests", "tokens"):
        limit = _number(client_headers.get(f"x-ratelimit-limit-{kind}"))
        remaining = _number(client_headers.get(f"x-ratelimit-remaining-{kind}"))
        if limit is not None and remaining is not None and remaining > limit:
            problems.append(f"remaining {kind} {remaining:g} above limit {limit:g}")
    return problems


# -- stream relay -------------------------------------------------------------------------------------------------
def buffering_problems(arrivals: list[float], upstream_spread_s: float) -> list[str]:
    """RELAY-STREAM-001: the client's event arrivals spread over at least half the upstream's own spread (a
    buffered stream arrives in one burst, spread near 0)."""
    if len(arrivals) < 3:
        return [f"only {len(arrivals)} events arrived"]
    spread = arrivals[-1] - arrivals[0]
    if spread >= upstream_spread_s / 2:
        return []
    return [f"{len(arrivals)} events arrived within {spread:.3f}s; the upstream spread them over "
            f"{upstream_spread_s:.1f}s"]


def clean_finish_problems(done: bool, chunks: Iterable[Any]) -> list[str]:
    """RELAY-STREAM-002: a stream the upstream cut shows no [DONE] and no finish_reason."""
    problems = ["[DONE] after a cut stream"] if done else []
    finished = [c.get("finish_reason") for ch in chunks if isinstance(ch, dict) and "error" not in ch
                for c in ch.get("choices") or [] if isinstance(c, dict) and c.get("finish_reason")]
    return problems + [f"invented finish_reason {f!r}" for f in finished]


def error_events(events: Iterable[Any]) -> list[Any]:
    """The error events of a stream: ``event: error``, or data objects carrying ``error`` (before [DONE])."""
    found = []
    for event in events:
        if getattr(event, "is_done", False):
            break
        try:
            data = json.loads(event.data)
        except (ValueError, AttributeError):
            data = None
        if getattr(event, "event", "message") == "error" or (isinstance(data, dict) and "error" in data):
            found.append(data.get("error") if isinstance(data, dict) and "error" in data else event.data)
    return found


def usage_chunks(chunks: Iterable[Any]) -> list[Any]:
    """RELAY-STREAM-004: the chunks that carry a usage object."""
    return [c.get("usage") for c in chunks if isinstance(c, dict) and c.get("usage")]


# -- upstream failures ------------------------------------------------------------------------------------------
def envelope_problems(body: Any, raw: bytes | str = b"") -> list[str]:
    """The OpenAI error envelope: ``{"error": {"message": str, "type": str, ...}}``."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("message"), str) or not isinstance(err.get("type"), str):
        shown = raw[:80] if raw else body
        return [f"no OpenAI error envelope: {shown!r}"]
    return []


def documented_failure(profile: Any, kind: str) -> tuple[set[int], str | None]:
    """(statuses, error type) the profile documents for an upstream failure ``kind``; 502 (504 for a timeout)
    where it is silent."""
    entry = profile.get(f"upstream.failures.{kind}") or {}
    status = entry.get("status") or (504 if kind == "timeout" else 502)
    return set(status if isinstance(status, list) else [status]), entry.get("type")


def failure_problems(status: int, body: Any, raw: bytes | str, profile: Any, kind: str) -> list[str]:
    """The client's answer to an upstream failure: the documented status, the envelope, the documented type."""
    statuses, etype = documented_failure(profile, kind)
    problems = [] if status in statuses else [f"status {status}, documented {sorted(statuses)}"]
    problems += envelope_problems(body, raw)
    if etype and not problems and body["error"]["type"] != etype:
        problems.append(f"type {body['error']['type']!r}, documented {etype!r}")
    return problems


def attempt_bound(profile: Any) -> int:
    """UPSTREAM-FAILURES-003's bound: the profile's documented budget, else ``DEFAULT_MAX_ATTEMPTS``."""
    return int(profile.get("upstream.max_attempts") or DEFAULT_MAX_ATTEMPTS)


def retry_gap_problems(times: list[float], wait_s: float, tolerance_s: float = 0.1) -> list[str]:
    """UPSTREAM-FAILURES-004: no attempt sooner than ``wait_s`` (less a scheduling tolerance) after the previous."""
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return [f"attempt {i + 2} {gap:.3f}s after the previous, Retry-After was {wait_s:g}s"
            for i, gap in enumerate(gaps) if gap < wait_s - tolerance_s]


# -- disclosure -------------------------------------------------------------------------------------------------
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.]{7,}")


def leaked(visible: str, needles: dict[str, str | None]) -> list[str]:
    """What of ``needles`` (description -> text) appears in ``visible`` (client-visible headers and body)."""
    return [what for what, needle in needles.items() if needle and needle in visible]


def leaked_keys(visible: str, fingerprints: Iterable[str]) -> list[str]:
    """Tokens of ``visible`` whose ``Bearer`` fingerprint is one of ``fingerprints`` (the upstream key as the
    journal saw it), so a leak is found without the suite knowing the gateway's upstream key."""
    wanted = set(fingerprints)
    return sorted({t[:6] + "***" for t in set(TOKEN.findall(visible)) if bearer_fingerprint(t) in wanted})
