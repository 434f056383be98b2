"""Negative-control faults of the relay: each breaks exactly one transit requirement, as transforms at the seams.

``FAULTS[requirement_id]`` is a ``RelayFault`` whose ``transforms`` map seam names (``seams.SEAMS``) to functions;
``install`` registers them. The same defect in a non-streamed answer and in a stream is one fault with two
transforms (``answer`` and ``chunks``). Each models a defect seen in a public gateway (transit.md).

``collateral``: black-box requirements the fault necessarily breaks as well when the black-box suite runs through
the relay (a reference server upstream, ``--forward-mock-headers``), as observed by running it with the fault on.
Faults that act only on upstream failures have none: the black-box suite provokes no failure through a gateway.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from reference_relay.seams import Event, Exchange, Failure, Policy, Seams


@dataclass(frozen=True)
class RelayFault:
    requirement: str
    description: str
    transforms: dict[str, Callable[..., Any]] = field(default_factory=dict)
    collateral: tuple[str, ...] = ()


FAULTS: dict[str, RelayFault] = {}


def fault(requirement: str, description: str, collateral: tuple[str, ...] = (), **transforms: Callable) -> None:
    FAULTS[requirement] = RelayFault(requirement, description, transforms, tuple(collateral))


def _choices(body: Any) -> list[dict]:
    return [c for c in (body.get("choices") or []) if isinstance(c, dict)] if isinstance(body, dict) else []


def _on_choices(edit: Callable[[dict, str], None]) -> tuple[Callable, Callable]:
    """(answer, chunks) transforms applying ``edit(choice, part)`` to every choice; part is message or delta."""

    def answer(body: Any, ex: Exchange) -> Any:
        for choice in _choices(body):
            edit(choice, "message")
        return body

    def chunks(events: Iterable[Event], ex: Exchange) -> Iterator[Event]:
        for kind, value in events:
            if kind == "chunk":
                for choice in _choices(value):
                    edit(choice, "delta")
            yield kind, value

    return answer, chunks


def _part(choice: dict, part: str) -> dict:
    value = choice.get(part)
    return value if isinstance(value, dict) else {}


# -- request relay ------------------------------------------------------------------------------------------------
def _merge_system(body: dict, ex: Exchange) -> dict:
    messages = body.get("messages")
    if isinstance(messages, list):
        system = [m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")]
        rest = [m for m in messages if m not in system]
        if system and rest and isinstance(rest[0].get("content"), str):
            text = "\n".join(str(m.get("content")) for m in system)
            rest[0] = {**rest[0], "content": f"{text}\n\n{rest[0]['content']}"}
            body["messages"] = rest
    return body


def _drop(*names: str) -> Callable[[dict, Exchange], dict]:
    def transform(body: dict, ex: Exchange) -> dict:
        for name in names:
            body.pop(name, None)
        return body
    return transform


def _weaken_tool_choice(body: dict, ex: Exchange) -> dict:
    if "tool_choice" in body and body["tool_choice"] != "none":
        body["tool_choice"] = "auto"
    body.pop("parallel_tool_calls", None)
    return body


def _truncate_stop(body: dict, ex: Exchange) -> dict:
    if isinstance(body.get("stop"), list):
        body["stop"] = body["stop"][:4]
    return body


def _clamp(body: dict, ex: Exchange) -> dict:
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            body[name] = min(max(value, low), high)
    return body


KNOWN_FIELDS = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
    "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "user", "seed", "tools", "tool_choice", "parallel_tool_calls", "response_format", "input", "encoding_format",
    "dimensions",
})


def _drop_unknown(body: dict, ex: Exchange) -> dict:
    return {k: v for k, v in body.items() if k in KNOWN_FIELDS}


def _default_model(body: dict, ex: Exchange) -> dict:
    if "model" not in body:
        key = "models.default_chat" if ex.route == "chat" else "models.default_embedding"
        body["model"] = ex.config.profile.get(key) or "gpt-4o-mini"
    return body


def _client_key_upstream(headers: dict, ex: Exchange) -> dict:
    if ex.client_authorization:
        headers["Authorization"] = ex.client_authorization
    return headers


def _bearer_undefined(headers: dict, ex: Exchange) -> dict:
    headers["Authorization"] = "Bearer undefined"
    return headers


fault("RELAY-REQUEST-001", "System messages are merged into the first user message.",
      collateral=("USAGE-016",), request=_merge_system)
fault("RELAY-REQUEST-002", "seed and user are dropped from the upstream request.", request=_drop("seed", "user"))
fault("RELAY-REQUEST-003", "tool_choice becomes auto and parallel_tool_calls is dropped.",
      collateral=("TOOLS-014", "TOOLS-017"),
      request=_weaken_tool_choice)
fault("RELAY-REQUEST-004", "A stop list is cut to its first four entries.",
      collateral=("PARAMS-005",), request=_truncate_stop)
fault("RELAY-REQUEST-005", "temperature and top_p are clamped into 0-2 and 0-1.",
      collateral=("PARAMS-008", "PARAMS-009"), request=_clamp)
fault("RELAY-REQUEST-006", "Body fields the relay does not know are dropped.",
      collateral=("USAGE-016",), request=_drop_unknown)
fault("RELAY-REQUEST-007", "A request without model goes upstream with the profile's default model.",
      collateral=("ERRORS-006",),
      request=_default_model)
fault("RELAY-REQUEST-008", "The client's Authorization is sent upstream instead of the relay's key.",
      outbound_headers=_client_key_upstream)
fault("RELAY-REQUEST-009", 'The upstream gets "Authorization: Bearer undefined".',
      outbound_headers=_bearer_undefined)


# -- response relay -----------------------------------------------------------------------------------------------
def _length_as_stop(choice: dict, part: str) -> None:
    if choice.get("finish_reason") == "length":
        choice["finish_reason"] = "stop"


def _drop_tool_calls(choice: dict, part: str) -> None:
    _part(choice, part).pop("tool_calls", None)


def _refusal_as_content(choice: dict, part: str) -> None:
    body = _part(choice, part)
    if body.get("refusal"):
        body["content"], body["refusal"] = body["refusal"], None


def _drop_logprobs(choice: dict, part: str) -> None:
    if "logprobs" in choice:
        choice["logprobs"] = None


def _first_choice_answer(body: Any, ex: Exchange) -> Any:
    if isinstance(body, dict) and isinstance(body.get("choices"), list):
        body["choices"] = [c for c in body["choices"] if isinstance(c, dict) and c.get("index", 0) == 0]
    return body


def _first_choice_chunks(events: Iterable[Event], ex: Exchange) -> Iterator[Event]:
    for kind, value in events:
        if kind == "chunk" and isinstance(value, dict) and value.get("choices"):
            value["choices"] = [c for c in value["choices"] if isinstance(c, dict) and c.get("index", 0) == 0]
            if not value["choices"]:
                continue
        yield kind, value


def _recount(usage: Any) -> None:
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        usage["prompt_tokens"] += 1  # the relay counts its own prompt template on top of the upstream's count
        if isinstance(usage.get("total_tokens"), int):
            usage["total_tokens"] += 1


def _rewrite_usage_answer(body: Any, ex: Exchange) -> Any:
    if isinstance(body, dict):
        _recount(body.get("usage"))
    return body


def _rewrite_usage_chunks(events: Iterable[Event], ex: Exchange) -> Iterator[Event]:
    for kind, value in events:
        if kind == "chunk" and isinstance(value, dict):
            _recount(value.get("usage"))
        yield kind, value


def _drop_headers(test: Callable[[str], bool]) -> Callable:
    def transform(headers: list[tuple[str, str]], ex: Exchange) -> list[tuple[str, str]]:
        return [(n, v) for n, v in headers if not test(n.lower())]
    return transform


answer, chunks = _on_choices(_length_as_stop)
fault("RELAY-RESPONSE-001", 'finish_reason "length" is relayed as "stop".',
      collateral=("PARAMS-001", "PARAMS-014"), answer=answer, chunks=chunks)
answer, chunks = _on_choices(_drop_tool_calls)
fault("RELAY-RESPONSE-002", "tool_calls are dropped from messages and deltas.",
      collateral=("TOOLS-001", "TOOLS-013", "TOOLS-014", "SDK-004", "SDK-005"), answer=answer, chunks=chunks)
answer, chunks = _on_choices(_refusal_as_content)
fault("RELAY-RESPONSE-003", "A refusal is moved into content.",
      collateral=("CHAT-023",), answer=answer, chunks=chunks)
answer, chunks = _on_choices(_drop_logprobs)
fault("RELAY-RESPONSE-004", "logprobs are replaced by null.",
      collateral=("PARAMS-012",), answer=answer, chunks=chunks)
fault("RELAY-RESPONSE-005", "Only the choice with index 0 is relayed.",
      collateral=("PARAMS-006", "CHAT-STREAM-018"), answer=_first_choice_answer,
      chunks=_first_choice_chunks)
fault("RELAY-RESPONSE-006", "usage is recounted: prompt_tokens and total_tokens one higher than upstream's.",
      answer=_rewrite_usage_answer, chunks=_rewrite_usage_chunks)
fault("RELAY-RESPONSE-007", "No x-request-id reaches the client.",
      collateral=("HEADERS-001", "HEADERS-002"), headers=_drop_headers(lambda n: n == "x-request-id"))
fault("RELAY-RESPONSE-008", "The upstream's rate-limit headers are dropped.",
      collateral=("RATE-LIMITS-005", "RATE-LIMITS-008"),
      headers=_drop_headers(lambda n: n.startswith("x-ratelimit-")))


# -- stream relay -------------------------------------------------------------------------------------------------
def _buffer(frames: Iterable[bytes], ex: Exchange) -> Iterator[bytes]:
    yield b"".join(frames)


def _finish_cut(events: Iterable[Event], ex: Exchange) -> Iterator[Event]:
    last: dict | None = None
    for kind, value in events:
        if kind == "cut":
            base = {k: v for k, v in (last or {}).items() if k not in ("choices", "usage")}
            base["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}]
            yield "chunk", base
            yield "done", None
            return
        if kind == "chunk" and isinstance(value, dict):
            last = value
        yield kind, value


def _swallow_errors(events: Iterable[Event], ex: Exchange) -> Iterator[Event]:
    for kind, value in events:
        if kind != "error":
            yield kind, value


def _inject_include_usage(body: dict, ex: Exchange) -> dict:
    if body.get("stream") is True:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


fault("RELAY-STREAM-001", "The whole stream is buffered and sent at the end.",
      collateral=("HEADERS-006",), bytes=_buffer)
fault("RELAY-STREAM-002", 'A cut stream is finished with finish_reason "stop" and [DONE].', chunks=_finish_cut)
fault("RELAY-STREAM-003", "An upstream error event is swallowed (the stream just ends).", chunks=_swallow_errors)
fault("RELAY-STREAM-004", "include_usage is injected upstream and the unrequested usage chunk reaches the client.",
      collateral=("CHAT-STREAM-012", "USAGE-008"),
      request=_inject_include_usage)


# -- upstream failures ------------------------------------------------------------------------------------------
def _on_failure(kind: str, edit: Callable[[Failure, Exchange], Failure]) -> Callable:
    def transform(fail: Failure, ex: Exchange) -> Failure:
        return edit(fail, ex) if fail.kind == kind else fail
    return transform


def _rate_limit_as_5xx(fail: Failure, ex: Exchange) -> Failure:
    status, etype = ex.config.failure("server_error")
    fail.status, fail.body = status, {"error": {"message": "The upstream provider failed after retries.",
                                                 "type": etype, "param": None, "code": None}}
    return fail


def _rename_retry_after(headers: list[tuple[str, str]], ex: Exchange) -> list[tuple[str, str]]:
    return [("llm_provider-retry-after" if n.lower() == "retry-after" else n, v) for n, v in headers]


def _policy(**changes: Any) -> Callable[[Policy, Exchange], Policy]:
    def transform(policy: Policy, ex: Exchange) -> Policy:
        return replace(policy, **changes)
    return transform


def _plain_500(fail: Failure, ex: Exchange) -> Failure:
    fail.status, fail.body, fail.raw, fail.content_type = 500, None, b"Internal Server Error", "text/plain"
    return fail


def _status(status: int, etype: str, message: str) -> Callable[[Failure, Exchange], Failure]:
    def edit(fail: Failure, ex: Exchange) -> Failure:
        fail.status = status
        fail.body = {"error": {"message": message, "type": etype, "param": None, "code": None}}
        return fail
    return edit


def _name_upstream(fail: Failure, ex: Exchange) -> Failure:
    if fail.body and isinstance(fail.body.get("error"), dict):
        fail.body = copy.deepcopy(fail.body)
        fail.body["error"]["message"] += f" (upstream {ex.config.upstream}, status {fail.upstream_status})"
    return fail


def _echo_key(headers: list[tuple[str, str]], ex: Exchange) -> list[tuple[str, str]]:
    return [*headers, ("x-provider-key", str(ex.config.upstream_key))]


def _relay_banner(headers: list[tuple[str, str]], ex: Exchange) -> list[tuple[str, str]]:
    banner = ex.upstream_headers.get("server")
    if banner is None:
        return headers
    return [*headers, ("Server", banner)]


fault("UPSTREAM-FAILURES-001", "An upstream 429 (after the retries) is answered with the 5xx of a server error.",
      failure=_on_failure("rate_limited", _rate_limit_as_5xx))
fault("UPSTREAM-FAILURES-002", "Retry-After is renamed llm_provider-retry-after (no bare Retry-After).",
      headers=_rename_retry_after)
fault("UPSTREAM-FAILURES-003", "A retry storm: ten attempts per request, whatever the budget, 10 ms apart unless "
      "Retry-After says otherwise.", policy=_policy(max_attempts=10, backoff=0.01))
fault("UPSTREAM-FAILURES-004", "Retries go out at once, ignoring Retry-After.",
      policy=_policy(honour_retry_after=False))
fault("UPSTREAM-FAILURES-005", "An upstream 5xx is answered 500 with a plain-text body.",
      failure=_on_failure("server_error", _plain_500))
fault("UPSTREAM-FAILURES-006", "No upstream timeout: the relay waits as long as the upstream stalls.",
      policy=_policy(timeout=None))
fault("UPSTREAM-FAILURES-007", "A refused upstream connection is answered 500.",
      failure=_on_failure("unreachable", _status(500, "server_error", "Internal error.")))
fault("UPSTREAM-FAILURES-008", "The upstream's 401 for the relay's key reaches the client as 401.",
      failure=_on_failure("auth", _status(401, "invalid_request_error", "Invalid API key.")))
fault("DISCLOSURE-001", "Failure messages name the upstream URL.", failure=_name_upstream)
fault("DISCLOSURE-002", "The relay's upstream key is echoed in an x-provider-key header.", headers=_echo_key)
fault("DISCLOSURE-003", "The upstream's Server banner is relayed.", headers=_relay_banner)


def catalogue() -> dict[str, RelayFault]:
    return dict(sorted(FAULTS.items()))


def validate(ids: Iterable[str]) -> None:
    unknown = sorted(set(ids) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown relay fault id(s): {', '.join(unknown)} (see --list-faults)")


def install(seams: Seams, ids: Iterable[str]) -> None:
    for rid in sorted(ids):
        for seam, transform in FAULTS[rid].transforms.items():
            seams.add(seam, transform)


def describe() -> list[str]:
    return [f"{f.requirement:<24}{f.description}" + (f"  [also breaks: {', '.join(f.collateral)}]" if f.collateral
                                                       else "") for f in catalogue().values()]
