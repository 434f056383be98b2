"""The official openai Python SDK as a real client of the target (spec/requirements/sdk.yaml).

Each SDK interaction is a declared exchange (``conformance.exchanges.Call``): the store runs it with the plan,
concurrently with the rest, its requests going through the run's wire (recorded, replayable); the check judges
what it returned or raised. The SDK's plain GETs (``models.list``, ``models.retrieve``) read the target's recorded
answer to the same GET the model checks make (``sdk_reading``): nothing is sent twice. A target that breaks the SDK fails the named requirement with the exception text as
Received (redacted by ``expect``). Connection failures and timeouts stay harness errors. Statuses that only a
misbehaving upstream produces (429, 5xx, mid-stream errors) are provoked with the embedded server's X-Mock-*
controls, or in sandwich mode (``--upstream``) by scripting the upstream under a nonce in the message content;
against a gateway without an upstream the suite scripts, those checks are skipped.

Over 400 lines: one module per area is the suite's layout (spec/requirements/sdk.yaml), and the SDK area's checks
share the client, exception and failure-provoking helpers above them.
"""

from __future__ import annotations

import functools
import importlib
import json
from typing import Any

import httpx
import pytest

from conformance.client import HarnessError, RequestTimedOut, TargetUnreachable
from conformance.exchanges import Call, CallResult, exchange
from conformance.suite.fixtures_chat import unknown_key_like
from conformance.suite.fixtures_rest import model_retrieval, models_listing
from conformance.suite.fixtures_stream import PROMPT, TOOL_PROMPT, WEATHER_TOOL
from conformance.suite.fixtures_transit import skip_unless_upstream_reached
from conformance.wire import recorded_response


class _ImportedOnUse:
    """A module imported on its first attribute access. The SDK takes about a second to import, which collection
    (in every xdist worker, ``--collect-only``, runs that deselect these checks) need not pay."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):  # what collection probes every module attribute for (``_mock_name``, dunders)
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)


openai: Any = _ImportedOnUse("openai")

MAX_TOKENS = 8
SHORT_PROMPT = "Reply with just the word ok."


def sdk_client(plan, transport, key: str | None = None, max_retries: int = 0) -> openai.OpenAI:
    """An ``openai.OpenAI`` client on the target (base URL + profile base path), retries off, sending through
    ``transport``.

    The run's ``--gw-header`` values go on every SDK request, as on every other client the suite builds: a gateway
    routed by a header refuses requests without it. A key given here (a bad key on purpose) is what the SDK sends,
    even when a ``--gw-header`` carries an Authorization of its own."""
    opts = plan.options
    headers = {name: value for name, value in opts.headers if key is None or name.lower() != "authorization"}
    timeout = httpx.Timeout(opts.stream_timeout, connect=min(10.0, opts.request_timeout))
    http = httpx.Client(timeout=timeout, transport=transport)
    return openai.OpenAI(api_key=key or plan.api_key or "conformance-no-key",
                         base_url=plan.target.rstrip("/") + plan.profile.base_path, max_retries=max_retries,
                         timeout=timeout, http_client=http, default_headers=headers)


def sdk_call(plan, interact, key: str | None = None) -> Call:
    """A ``Call`` running ``interact(client)`` with an SDK client for ``key`` (the run's key by default)."""
    return Call(lambda transport: interact(sdk_client(plan, transport, key)), key=key)


def harness_or(exc: Exception) -> Exception:
    """Connection trouble is the harness's (ERROR); everything else is the SDK's verdict on the target."""
    if isinstance(exc, HarnessError):
        raise exc
    if isinstance(exc.__cause__, HarnessError):
        raise exc.__cause__
    if isinstance(exc, openai.APITimeoutError):
        raise RequestTimedOut(f"SDK request timed out: {exc}") from exc
    if isinstance(exc, openai.APIConnectionError):
        raise TargetUnreachable(f"SDK could not connect: {exc}") from exc
    return exc


def shown(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def messages(prompt: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": prompt}]


# -- happy paths -------------------------------------------------------------------------------------------
@exchange
def sdk_create(plan):
    return sdk_call(plan, lambda sdk: sdk.chat.completions.create(
        model=plan.chat_model, messages=messages(), max_tokens=MAX_TOKENS).choices[0].message.content)


@pytest.mark.requirement("SDK-001")
def test_create(sdk_create, expect):
    try:
        content = sdk_create.result()
    except Exception as exc:  # noqa: BLE001 - any SDK failure is the verdict
        expect("SDK-001", False, expected="a ChatCompletion", received=shown(harness_or(exc)))
        return
    expect("SDK-001", isinstance(content, str), expected="choices[0].message.content a string",
           received=repr(content))


@exchange
def sdk_stream(plan):
    """One stream judges both: iterating it (SDK-002) and, when it asks include_usage, its final usage (SDK-015;
    graded SKIP where the profile does not claim stream-usage, and then the stream does not ask for it)."""
    options = {"stream_options": {"include_usage": True}} if plan.profile.claims("stream-usage") else {}

    def iterate(sdk):
        chunks = []
        try:
            for chunk in sdk.chat.completions.create(model=plan.chat_model, messages=messages(),
                                                     max_tokens=MAX_TOKENS, stream=True, **options):
                chunks.append(chunk)
        except Exception as exc:  # noqa: BLE001
            return chunks, exc
        return chunks, None

    return sdk_call(plan, iterate)


@pytest.mark.requirement("SDK-002", "SDK-015")
def test_stream_iteration(sdk_stream, profile, expect):
    chunks, exc = sdk_stream.result()
    if exc is not None:
        for rid, what in (("SDK-002", "iteration ending cleanly"), ("SDK-015", "a stream ending cleanly")):
            expect(rid, False, expected=what, received=shown(harness_or(exc)), note=f"after {len(chunks)} chunk(s)")
        return
    expect("SDK-002", chunks, expected="at least one chunk", received="no chunk")
    if not profile.claims("stream-usage"):
        return
    usage = chunks[-1].usage if chunks else None
    expect("SDK-015", usage is not None and isinstance(usage.total_tokens, int),
           expected="the final chunk's usage", received=chunks[-1] if chunks else "no chunk")


@exchange
def sdk_stream_helper(plan):
    # the helper raises LengthFinishReasonError on a length cut: ask for an answer that ends by itself
    # (the embedded server's echo provider repeats the prompt)
    extra = {"X-Mock-Provider": "echo"} if plan.capabilities.mock_controls else None

    def interact(sdk):
        pieces = []
        with sdk.chat.completions.stream(model=plan.chat_model, messages=messages(SHORT_PROMPT), max_tokens=20,
                                         extra_headers=extra) as stream:
            for event in stream:
                if event.type == "content.delta":
                    pieces.append(event.delta)
            final = stream.get_final_completion()
        return pieces, final.choices[0].message

    return sdk_call(plan, interact)


@pytest.mark.requirement("SDK-003")
def test_stream_helper_final_completion(sdk_stream_helper, expect):
    try:
        pieces, message = sdk_stream_helper.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-003", False, expected="the helper completes", received=shown(harness_or(exc)))
        return
    expect("SDK-003", message.role == "assistant" and message.content == "".join(pieces),
           expected=f'role "assistant", content {"".join(pieces)!r}',
           received=f"role {message.role!r}, content {message.content!r}")


@exchange
def sdk_tool_call(plan):
    def interact(sdk):
        completion = sdk.chat.completions.create(model=plan.chat_model, messages=messages(TOOL_PROMPT),
                                                 tools=[WEATHER_TOOL], max_tokens=60)
        calls = completion.choices[0].message.tool_calls or []
        return completion.choices[0].message, [json.loads(c.function.arguments) for c in calls]

    return sdk_call(plan, interact)


@pytest.mark.requirement("SDK-004")
def test_tool_call(sdk_tool_call, expect):
    try:
        message, parsed = sdk_tool_call.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-004", False, expected="tool call arguments json.loads parses", received=shown(harness_or(exc)))
        return
    expect("SDK-004", parsed, expected="a tool call", received=message)


@exchange
def sdk_stream_helper_tool_call(plan):
    def interact(sdk):
        with sdk.chat.completions.stream(model=plan.chat_model, messages=messages(TOOL_PROMPT), tools=[WEATHER_TOOL],
                                         max_tokens=60) as stream:
            final = stream.get_final_completion()
        calls = final.choices[0].message.tool_calls or []
        return final.choices[0].message, [json.loads(c.function.arguments) for c in calls]

    return sdk_call(plan, interact)


@pytest.mark.requirement("SDK-005")
def test_stream_helper_tool_call(sdk_stream_helper_tool_call, expect):
    try:
        message, parsed = sdk_stream_helper_tool_call.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-005", False, expected="assembled tool calls whose arguments parse", received=shown(harness_or(exc)))
        return
    expect("SDK-005", parsed, expected="an assembled tool call", received=message)


@exchange
def sdk_embeddings(plan):
    if not plan.embedding_model:
        return None
    # A one-string list, not a bare string: SDK-006 is about the SDK's base64 decoding, and whether a bare
    # string is accepted is EMBEDDINGS-005's own requirement (its fault would otherwise move this one).
    return sdk_call(plan, lambda sdk: sdk.embeddings.create(model=plan.embedding_model,
                                                            input=["conformance"]).data[0].embedding)


@pytest.mark.requirement("SDK-006")
def test_embeddings_default_encoding(sdk_embeddings, models, expect):
    if not models.embedding:
        expect.untestable("SDK-006", "no embedding model: give --gw-embedding-model or a profile default")
        return
    try:
        vector = sdk_embeddings.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-006", False, expected="an embedding", received=shown(harness_or(exc)))
        return
    expect("SDK-006", isinstance(vector, list) and vector and all(isinstance(v, float) for v in vector),
           expected="a non-empty list of floats", received=repr(vector)[:200])


def sdk_reading(plan, answer, interact) -> Call:
    """A ``Call`` running ``interact(client)`` on the target's recorded answer to the very GET the SDK makes
    (``answer``: a planned REST exchange of that route): the SDK parses the bytes the target sent; nothing is
    sent twice. The SDK's request headers add nothing a GET's answer depends on, and HEADERS-007 judges whether
    the target accepts them. Any other request the SDK makes fails as a harness error."""
    recorded = answer.response.exchange
    route = httpx.URL(recorded.url).path

    def respond(request: httpx.Request) -> httpx.Response:
        if request.method != "GET" or request.url.path != route:
            raise HarnessError(f"the SDK asked {request.method} {request.url.path}, not the recorded GET {route}")
        return recorded_response(recorded, request)

    return Call(lambda _transport: interact(sdk_client(plan, httpx.MockTransport(respond))))


@exchange(needs=(models_listing,))
def sdk_models_list(plan, models_listing):
    return sdk_reading(plan, models_listing, lambda sdk: [m.id for m in sdk.models.list()])


@pytest.mark.requirement("SDK-012")
def test_models_list(sdk_models_list, expect):
    try:
        ids = sdk_models_list.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-012", False, expected="Model objects", received=shown(harness_or(exc)))
        return
    expect("SDK-012", ids and all(isinstance(i, str) and i for i in ids), expected="every Model with id set",
           received=ids[:10])


@exchange(needs=(model_retrieval,))
def sdk_models_retrieve(plan, model_retrieval):
    return sdk_reading(plan, model_retrieval, lambda sdk: sdk.models.retrieve(plan.chat_model).id)


@pytest.mark.requirement("SDK-013")
def test_models_retrieve(sdk_models_retrieve, chat_model, expect):
    try:
        model_id = sdk_models_retrieve.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-013", False, expected=f"Model {chat_model!r}", received=shown(harness_or(exc)))
        return
    expect("SDK-013", model_id == chat_model, expected=chat_model, received=model_id)


@functools.cache
def city_model() -> type:
    """The pydantic model SDK-016 parses into (built on first use, like the SDK import)."""
    import pydantic

    class City(pydantic.BaseModel):
        name: str
        country: str

    return City


@exchange
def sdk_parse(plan):
    return sdk_call(plan, lambda sdk: sdk.chat.completions.parse(
        model=plan.chat_model, response_format=city_model(), max_tokens=60,
        messages=messages("Name one city and its country as JSON.")).choices[0].message.parsed)


@pytest.mark.requirement("SDK-016")
def test_parse_pydantic(sdk_parse, expect):
    try:
        parsed = sdk_parse.result()
    except Exception as exc:  # noqa: BLE001
        expect("SDK-016", False, expected="message.parsed a City", received=shown(harness_or(exc)))
        return
    expect("SDK-016", isinstance(parsed, city_model()), expected="a City instance", received=repr(parsed))


# -- error mapping ------------------------------------------------------------------------------------------
def raised(call) -> Exception | None:
    """The SDK exception ``call`` raised (connection trouble re-raised as a harness error), or None."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001
        return harness_or(exc)
    return None


def raising_call(plan, make_request, key: str | None = None) -> Call:
    """A ``Call`` whose value is the exception ``make_request(client)`` raised (None: it raised none)."""
    return sdk_call(plan, lambda sdk: raised(lambda: make_request(sdk)), key)


def check_class(expect, rid, exc, cls, status=None) -> None:
    names = " or ".join(f"openai.{c.__name__}" for c in (cls if isinstance(cls, tuple) else (cls,)))
    expect(rid, isinstance(exc, cls) and (status is None or getattr(exc, "status_code", None) == status),
           expected=names + (f" with status_code {status}" if status else ""),
           received=shown(exc) if exc else "no exception")


def bad_key(profile, api_key) -> str | None:
    """A well-formed key the gateway does not know (as AUTH-004's check sends): in every profile the 401 then
    rests on one requirement, AUTH-004, not on AUTH-003's key pattern where a profile documents one. Where the doc
    accepts every well-formed key (``auth.any_key_with_prefix``), the documented malformed key (AUTH-003's), else
    None: no key gets a 401 there."""
    key = unknown_key_like(api_key or profile.test_key, profile.get("auth.key_pattern"))
    if profile.accepts_every_key(key):
        return profile.get("auth.malformed_key")
    return key


def _create(plan, model: str | None = None, **kw):
    return lambda sdk: sdk.chat.completions.create(model=model or plan.chat_model, **{
        "messages": messages(), "max_tokens": 5, **kw})


@exchange
def sdk_401(plan):
    if plan.profile.get("auth.key_required_but_ignored"):
        pytest.skip("the profile documents that keys are never checked: no 401 to provoke")
    key = bad_key(plan.profile, plan.api_key)
    if key is None:
        pytest.skip("the profile's doc accepts every well-formed key and documents no malformed one: no 401")
    return raising_call(plan, _create(plan), key=key)


@pytest.mark.requirement("SDK-007", "SDK-017")
def test_401_is_authentication_error(sdk_401, expect):
    exc = sdk_401.result()
    check_class(expect, "SDK-007", exc, openai.AuthenticationError)
    if isinstance(exc, openai.APIStatusError):
        sent = exc.response.headers.get("x-request-id")
        expect("SDK-017", exc.request_id and exc.request_id == sent, expected="exception.request_id = x-request-id",
               received=f"request_id {exc.request_id!r}, header {sent!r}")


@exchange
def sdk_400(plan):
    return raising_call(plan, _create(plan, messages=[]))


@pytest.mark.requirement("SDK-008")
def test_400_is_bad_request_error(sdk_400, expect):
    exc = sdk_400.result()
    check_class(expect, "SDK-008", exc, openai.BadRequestError)
    if isinstance(exc, openai.BadRequestError):
        # the SDK reads code and param from body["error"]; a flat body leaves them unreadable
        body = exc.body if isinstance(exc.body, dict) else {}
        expect("SDK-008", "message" in body and exc.code == body.get("code") and exc.param == body.get("param"),
               expected="error.code and error.param readable on the exception",
               received=f"body {exc.body!r}, code {exc.code!r}, param {exc.param!r}")


@exchange
def sdk_unknown_model(plan):
    return raising_call(plan, _create(plan, "conformance-no-such-model-0"))


@pytest.mark.requirement("SDK-009")
def test_unknown_model_exception(sdk_unknown_model, profile, expect):
    classes = {400: openai.BadRequestError, 403: openai.PermissionDeniedError, 404: openai.NotFoundError}
    check_class(expect, "SDK-009", sdk_unknown_model.result(),
                tuple(classes[s] for s in profile.unknown_model_statuses()))


# an upstream failure the gateway must pass on: every attempt fails (a gateway's own retries meet it too), and
# retry-after-ms keeps a gateway that honours it from waiting a second per retry
UPSTREAM_429 = {"status": 429, "headers": {"Retry-After": "1", "retry-after-ms": "10"}}
UPSTREAM_5XX = {"status": 502}
UPSTREAM_ERROR_EVENT = {"stream": {"error_after": 2}}


def failing_upstream(plan, what: str, label: str, controls: dict[str, str], respond: dict, make_request) -> Call:
    """A ``raising_call`` of ``make_request(client, messages, extra_headers)`` whose upstream fails. On the embedded
    server the X-Mock-* ``controls`` provoke it; in sandwich mode (``--upstream``) the upstream is scripted with
    ``respond`` under a nonce the message content carries (the SDK's own retries stay off); otherwise the case
    SKIPs: nothing black-box can provoke an upstream failure safely."""
    if plan.capabilities.mock_controls:
        return raising_call(plan, lambda sdk: make_request(sdk, messages(), controls))
    if plan.sandwich is not None:
        def run(transport, marker):
            sdk = sdk_client(plan, transport)
            return raised(lambda: make_request(sdk, messages(f"{PROMPT} {marker}"), {}))

        return Call(run, script=plan.sandwich.script(label, respond))
    pytest.skip(f"{what} can only be provoked on the embedded reference server (X-Mock-*) or in sandwich mode "
                "(--upstream)")


def judged_through_upstream(call: CallResult) -> CallResult:
    """``call``, once ``skip_unless_upstream_reached`` let it through (sandwich mode: an attempt reached the
    upstream)."""
    skip_unless_upstream_reached(call)
    return call


@exchange
def sdk_429(plan):
    return failing_upstream(plan, "a 429", "sdk429", {"X-Mock-Status": "429"}, UPSTREAM_429,
                            lambda sdk, msgs, headers: _create(plan, messages=msgs, extra_headers=headers)(sdk))


@pytest.mark.requirement("SDK-010")
def test_429_is_rate_limit_error(sdk_429, expect):
    check_class(expect, "SDK-010", judged_through_upstream(sdk_429).result(), openai.RateLimitError)


@exchange
def sdk_5xx(plan):
    return failing_upstream(plan, "a 5xx", "sdk5xx", {"X-Mock-Status": "502"}, UPSTREAM_5XX,
                            lambda sdk, msgs, headers: _create(plan, messages=msgs, extra_headers=headers)(sdk))


@pytest.mark.requirement("SDK-019")
def test_5xx_is_internal_server_error(sdk_5xx, expect):
    check_class(expect, "SDK-019", judged_through_upstream(sdk_5xx).result(), openai.InternalServerError)


@exchange
def sdk_mid_stream_error(plan):
    def iterate(sdk, msgs, headers):
        for _ in sdk.chat.completions.create(model=plan.chat_model, messages=msgs, max_tokens=MAX_TOKENS,
                                             stream=True, extra_headers=headers):
            pass

    return failing_upstream(plan, "a mid-stream upstream failure", "sdkmidstream", {"X-Mock-Error-After": "2"},
                            UPSTREAM_ERROR_EVENT, iterate)


@pytest.mark.requirement("SDK-014")
def test_mid_stream_error_raises(sdk_mid_stream_error, expect):
    check_class(expect, "SDK-014", judged_through_upstream(sdk_mid_stream_error).result(), openai.APIError)


def keyed_status(plan, key_name, model) -> Call:
    """The exception for a request with a key of role ``key_name`` (``--gw-role-key``, or the embedded server's)."""
    key = plan.role_key(key_name)
    if not key:
        pytest.skip(f"needs a '{key_name}' key: pass --gw-role-key {key_name}=KEY")
    return raising_call(plan, _create(plan, model), key=key)


@exchange
def sdk_403(plan):
    # the embedded server's restricted key may use only the default chat model: ask for another documented one
    others = [m["id"] for m in plan.profile.get("models.chat", []) if m["id"] != plan.chat_model]
    if not others:
        pytest.skip("the profile documents a single chat model: no model outside an allowlist to ask for")
    return keyed_status(plan, "restricted", others[0])


@pytest.mark.requirement("SDK-018")
def test_403_is_permission_denied(sdk_403, expect):
    check_class(expect, "SDK-018", sdk_403.result(), openai.PermissionDeniedError)


@exchange
def sdk_402(plan):
    return keyed_status(plan, "no-balance", plan.chat_model)


@pytest.mark.requirement("SDK-020")
def test_402_is_api_status_error(sdk_402, expect):
    check_class(expect, "SDK-020", sdk_402.result(), openai.APIStatusError, status=402)
