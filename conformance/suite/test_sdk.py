"""The official openai Python SDK as a real client of the target (spec/requirements/sdk.yaml).

A target that breaks the SDK fails the named requirement with the exception text as Received (redacted by
``expect``). Connection failures and timeouts stay harness errors. Statuses that only a misbehaving upstream
produces (429, 5xx, mid-stream errors) are provoked with the embedded server's X-Mock-* controls; against a real
gateway those checks are skipped, since nothing black-box can provoke them safely.
"""

from __future__ import annotations

import functools
import importlib
import json
from typing import Any

import httpx
import pytest

from conformance.client import Exchange, HarnessError, RequestTimedOut, TargetUnreachable, shared_ssl_context
from conformance.suite.fixtures_stream import PROMPT, TOOL_PROMPT, WEATHER_TOOL, is_embedded
from conformance.suite.test_auth import unknown_key_like


class _ImportedOnUse:
    """A module imported on its first attribute access. The SDK takes about a second to import, which collection
    (in every xdist worker, ``--collect-only``, runs that deselect these checks) need not pay."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


openai: Any = _ImportedOnUse("openai")

MAX_TOKENS = 8
SHORT_PROMPT = "Reply with just the word ok."


class _SdkRecorder:
    """httpx event hooks: each SDK request joins the test's transcript and the run's request accounting."""

    def __init__(self, redactor, accounting) -> None:
        self.redactor, self.accounting, self.transcript = redactor, accounting, []

    def on_request(self, req: httpx.Request) -> None:
        self.accounting.charge()
        body = req.content.decode("utf-8", "replace") if req.content else ""
        self.transcript.append(Exchange(req.method, str(req.url), self.redactor.headers(req.headers.multi_items()),
                                        self.redactor.text(body)))

    def on_response(self, resp: httpx.Response) -> None:
        if self.transcript:
            self.transcript[-1].status = resp.status_code
            self.transcript[-1].response_headers = self.redactor.headers(resp.headers.multi_items())

    def take_transcript(self) -> list[Exchange]:
        out, self.transcript = self.transcript, []
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def make_sdk(request, conformance, target, api_key):
    """Factory for ``openai.OpenAI`` clients on the target (base URL + profile base path), retries off.

    The run's ``--header`` values go on every SDK request, as on every other client the suite builds: a gateway
    routed by a header refuses requests without it. A key given to the factory (a bad key on purpose) is what
    the SDK sends, even when a ``--header`` carries an Authorization of its own."""
    from conformance.plugin import CLIENTS
    opts, made = conformance.options, []

    def factory(key: str | None = None, max_retries: int = 0) -> openai.OpenAI:
        headers = {name: value for name, value in opts.headers if key is None or name.lower() != "authorization"}
        key = key or api_key or "conformance-no-key"
        recorder = _SdkRecorder(conformance.redactor_with(key), conformance.accounting)
        request.node.stash.setdefault(CLIENTS, []).append(recorder)
        timeout = httpx.Timeout(opts.stream_timeout, connect=min(10.0, opts.request_timeout))
        # The process's one TLS context: a default one loads the CA bundle again for every client (~35 ms each).
        http = httpx.Client(timeout=timeout, verify=shared_ssl_context(),
                            event_hooks={"request": [recorder.on_request], "response": [recorder.on_response]})
        made.append(http)
        return openai.OpenAI(api_key=key, base_url=target.rstrip("/") + conformance.profile.base_path,
                             max_retries=max_retries, timeout=timeout, http_client=http, default_headers=headers)

    yield factory
    for http in made:
        http.close()


@pytest.fixture
def sdk(make_sdk):
    return make_sdk()


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


@pytest.mark.requirement("SDK-001")
def test_create(sdk, chat_model, expect):
    try:
        completion = sdk.chat.completions.create(model=chat_model, messages=messages(), max_tokens=MAX_TOKENS)
        content = completion.choices[0].message.content
    except Exception as exc:  # noqa: BLE001 - any SDK failure is the verdict
        expect("SDK-001", False, expected="a ChatCompletion", received=shown(harness_or(exc)))
        return
    expect("SDK-001", isinstance(content, str), expected="choices[0].message.content a string",
           received=repr(content))


@pytest.mark.requirement("SDK-002", "SDK-015")
def test_stream_iteration(sdk, chat_model, profile, expect):
    # One stream judges both: iterating it (SDK-002) and, when it asks include_usage, its final usage (SDK-015;
    # graded SKIP where the profile does not claim stream-usage, and then the stream does not ask for it).
    usage_asked = profile.claims("stream-usage")
    options = {"stream_options": {"include_usage": True}} if usage_asked else {}
    chunks = []
    try:
        for chunk in sdk.chat.completions.create(model=chat_model, messages=messages(), max_tokens=MAX_TOKENS,
                                                 stream=True, **options):
            chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001
        for rid, what in (("SDK-002", "iteration ending cleanly"), ("SDK-015", "a stream ending cleanly")):
            expect(rid, False, expected=what, received=shown(harness_or(exc)), note=f"after {len(chunks)} chunk(s)")
        return
    expect("SDK-002", chunks, expected="at least one chunk", received="no chunk")
    if not usage_asked:
        return
    usage = chunks[-1].usage if chunks else None
    expect("SDK-015", usage is not None and isinstance(usage.total_tokens, int),
           expected="the final chunk's usage", received=chunks[-1] if chunks else "no chunk")


@pytest.mark.requirement("SDK-003")
def test_stream_helper_final_completion(sdk, conformance, chat_model, expect):
    pieces = []
    # the helper raises LengthFinishReasonError on a length cut: ask for an answer that ends by itself
    # (the embedded server's echo provider repeats the prompt)
    extra = {"X-Mock-Provider": "echo"} if is_embedded(conformance) else None
    try:
        with sdk.chat.completions.stream(model=chat_model, messages=messages(SHORT_PROMPT), max_tokens=20,
                                         extra_headers=extra) as stream:
            for event in stream:
                if event.type == "content.delta":
                    pieces.append(event.delta)
            final = stream.get_final_completion()
        message = final.choices[0].message
    except Exception as exc:  # noqa: BLE001
        expect("SDK-003", False, expected="the helper completes", received=shown(harness_or(exc)))
        return
    expect("SDK-003", message.role == "assistant" and message.content == "".join(pieces),
           expected=f'role "assistant", content {"".join(pieces)!r}',
           received=f"role {message.role!r}, content {message.content!r}")


@pytest.mark.requirement("SDK-004")
def test_tool_call(sdk, chat_model, expect):
    try:
        completion = sdk.chat.completions.create(model=chat_model, messages=messages(TOOL_PROMPT),
                                                 tools=[WEATHER_TOOL], max_tokens=60)
        calls = completion.choices[0].message.tool_calls or []
        parsed = [json.loads(c.function.arguments) for c in calls]
    except Exception as exc:  # noqa: BLE001
        expect("SDK-004", False, expected="tool call arguments json.loads parses", received=shown(harness_or(exc)))
        return
    expect("SDK-004", parsed, expected="a tool call", received=completion.choices[0].message)


@pytest.mark.requirement("SDK-005")
def test_stream_helper_tool_call(sdk, chat_model, expect):
    try:
        with sdk.chat.completions.stream(model=chat_model, messages=messages(TOOL_PROMPT), tools=[WEATHER_TOOL],
                                         max_tokens=60) as stream:
            final = stream.get_final_completion()
        calls = final.choices[0].message.tool_calls or []
        parsed = [json.loads(c.function.arguments) for c in calls]
    except Exception as exc:  # noqa: BLE001
        expect("SDK-005", False, expected="assembled tool calls whose arguments parse", received=shown(harness_or(exc)))
        return
    expect("SDK-005", parsed, expected="an assembled tool call", received=final.choices[0].message)


@pytest.mark.requirement("SDK-006")
def test_embeddings_default_encoding(sdk, models, expect):
    if not models.embedding:
        expect.untestable("SDK-006", "no embedding model: give --embedding-model or a profile default")
        return
    try:
        # A one-string list, not a bare string: SDK-006 is about the SDK's base64 decoding, and whether a bare
        # string is accepted is EMBEDDINGS-005's own requirement (its fault would otherwise move this one).
        result = sdk.embeddings.create(model=models.embedding, input=["conformance"])
        vector = result.data[0].embedding
    except Exception as exc:  # noqa: BLE001
        expect("SDK-006", False, expected="an embedding", received=shown(harness_or(exc)))
        return
    expect("SDK-006", isinstance(vector, list) and vector and all(isinstance(v, float) for v in vector),
           expected="a non-empty list of floats", received=repr(vector)[:200])


@pytest.mark.requirement("SDK-012")
def test_models_list(sdk, expect):
    try:
        ids = [m.id for m in sdk.models.list()]
    except Exception as exc:  # noqa: BLE001
        expect("SDK-012", False, expected="Model objects", received=shown(harness_or(exc)))
        return
    expect("SDK-012", ids and all(isinstance(i, str) and i for i in ids), expected="every Model with id set",
           received=ids[:10])


@pytest.mark.requirement("SDK-013")
def test_models_retrieve(sdk, chat_model, expect):
    try:
        model = sdk.models.retrieve(chat_model)
    except Exception as exc:  # noqa: BLE001
        expect("SDK-013", False, expected=f"Model {chat_model!r}", received=shown(harness_or(exc)))
        return
    expect("SDK-013", model.id == chat_model, expected=chat_model, received=model.id)


@functools.cache
def city_model() -> type:
    """The pydantic model SDK-016 parses into (built on first use, like the SDK import)."""
    import pydantic

    class City(pydantic.BaseModel):
        name: str
        country: str

    return City


@pytest.mark.requirement("SDK-016")
def test_parse_pydantic(sdk, chat_model, expect):
    try:
        City = city_model()  # noqa: N806 - a class
        completion = sdk.chat.completions.parse(model=chat_model, response_format=City, max_tokens=60,
                                                messages=messages("Name one city and its country as JSON."))
        parsed = completion.choices[0].message.parsed
    except Exception as exc:  # noqa: BLE001
        expect("SDK-016", False, expected="message.parsed a City", received=shown(harness_or(exc)))
        return
    expect("SDK-016", isinstance(parsed, City), expected="a City instance", received=repr(parsed))


# -- error mapping ------------------------------------------------------------------------------------------
def raised(call) -> Exception | None:
    """The SDK exception ``call`` raised (connection trouble re-raised as a harness error), or None."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001
        return harness_or(exc)
    return None


def embedded_only(conformance, what: str) -> None:
    if not is_embedded(conformance):
        pytest.skip(f"{what} can only be provoked on the embedded reference server (X-Mock-Status)")


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


@pytest.mark.requirement("SDK-007", "SDK-017")
def test_401_is_authentication_error(make_sdk, profile, chat_model, api_key, expect):
    if profile.get("auth.key_required_but_ignored"):
        pytest.skip("the profile documents that keys are never checked: no 401 to provoke")
    key = bad_key(profile, api_key)
    if key is None:
        pytest.skip("the profile's doc accepts every well-formed key and documents no malformed one: no 401")
    client = make_sdk(key=key)
    exc = raised(lambda: client.chat.completions.create(model=chat_model, messages=messages(), max_tokens=5))
    check_class(expect, "SDK-007", exc, openai.AuthenticationError)
    if isinstance(exc, openai.APIStatusError):
        sent = exc.response.headers.get("x-request-id")
        expect("SDK-017", exc.request_id and exc.request_id == sent, expected="exception.request_id = x-request-id",
               received=f"request_id {exc.request_id!r}, header {sent!r}")


@pytest.mark.requirement("SDK-008")
def test_400_is_bad_request_error(sdk, chat_model, expect):
    exc = raised(lambda: sdk.chat.completions.create(model=chat_model, messages=[], max_tokens=5))
    check_class(expect, "SDK-008", exc, openai.BadRequestError)
    if isinstance(exc, openai.BadRequestError):
        # the SDK reads code and param from body["error"]; a flat body leaves them unreadable
        body = exc.body if isinstance(exc.body, dict) else {}
        expect("SDK-008", "message" in body and exc.code == body.get("code") and exc.param == body.get("param"),
               expected="error.code and error.param readable on the exception",
               received=f"body {exc.body!r}, code {exc.code!r}, param {exc.param!r}")


@pytest.mark.requirement("SDK-009")
def test_unknown_model_exception(sdk, profile, expect):
    exc = raised(lambda: sdk.chat.completions.create(model="conformance-no-such-model-0", messages=messages(),
                                                     max_tokens=5))
    classes = {400: openai.BadRequestError, 403: openai.PermissionDeniedError, 404: openai.NotFoundError}
    check_class(expect, "SDK-009", exc, tuple(classes[s] for s in profile.unknown_model_statuses()))


@pytest.mark.requirement("SDK-010")
def test_429_is_rate_limit_error(sdk, conformance, chat_model, expect):
    embedded_only(conformance, "a 429")
    exc = raised(lambda: sdk.chat.completions.create(model=chat_model, messages=messages(), max_tokens=5,
                                                     extra_headers={"X-Mock-Status": "429"}))
    check_class(expect, "SDK-010", exc, openai.RateLimitError)


@pytest.mark.requirement("SDK-019")
def test_5xx_is_internal_server_error(sdk, conformance, chat_model, expect):
    embedded_only(conformance, "a 5xx")
    exc = raised(lambda: sdk.chat.completions.create(model=chat_model, messages=messages(), max_tokens=5,
                                                     extra_headers={"X-Mock-Status": "502"}))
    check_class(expect, "SDK-019", exc, openai.InternalServerError)


@pytest.mark.requirement("SDK-014")
def test_mid_stream_error_raises(sdk, conformance, chat_model, expect):
    embedded_only(conformance, "a mid-stream upstream failure")
    seen = []

    def iterate():
        for chunk in sdk.chat.completions.create(model=chat_model, messages=messages(), max_tokens=MAX_TOKENS,
                                                 stream=True, extra_headers={"X-Mock-Error-After": "2"}):
            seen.append(chunk)

    exc = raised(iterate)
    check_class(expect, "SDK-014", exc, openai.APIError)


def keyed_status(make_sdk, conformance, profile, key_name, model):
    """The exception for a request with a key of role ``key_name`` (``--role-key``, or the embedded server's)."""
    key = conformance.role_key(key_name)
    if not key:
        pytest.skip(f"needs a '{key_name}' key: pass --role-key {key_name}=KEY")
    client = make_sdk(key=key)
    return raised(lambda: client.chat.completions.create(model=model, messages=messages(), max_tokens=5))


@pytest.mark.requirement("SDK-018")
def test_403_is_permission_denied(make_sdk, conformance, profile, chat_model, expect):
    # the embedded server's restricted key may use only the default chat model: ask for another documented one
    others = [m["id"] for m in profile.get("models.chat", []) if m["id"] != chat_model]
    if not others:
        pytest.skip("the profile documents a single chat model: no model outside an allowlist to ask for")
    exc = keyed_status(make_sdk, conformance, profile, "restricted", others[0])
    check_class(expect, "SDK-018", exc, openai.PermissionDeniedError)


@pytest.mark.requirement("SDK-020")
def test_402_is_api_status_error(make_sdk, conformance, profile, chat_model, expect):
    exc = keyed_status(make_sdk, conformance, profile, "no-balance", chat_model)
    check_class(expect, "SDK-020", exc, openai.APIStatusError, status=402)
