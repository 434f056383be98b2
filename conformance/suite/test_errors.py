"""Bad input and error statuses: each answered with its status and the error envelope (spec/requirements/errors.yaml).

Each test checks the status its requirement names (and ``param`` where a SHOULD asks for it); the envelope itself
(ERRORS-001/002/003/015/022/024) is judged by ``check_error_envelope`` on every error provoked, so a broken envelope
is reported as exactly that. 5xx answers are judged by ERRORS-019 alone.
"""

from __future__ import annotations

import json

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_chat import ENVELOPE, check_error_envelope, error_object, skip_unless_claimed
from conformance.suite.fixtures_transit import skip_unless_upstream_reached, transit_chat

# Above the reference server's default body cap (ServerConfig.max_body_bytes, 4 MiB): no profile documents a
# limit, and a few MiB stays modest on loopback. The padding is the user message itself, not an unknown field: a
# gateway that drops unknown fields, or has no body limit, is judged on a body it must read (its upstream then
# refuses a prompt far over any context window, which is charged nothing).
OVERSIZE_BYTES = 4 * 1024 * 1024 + 64 * 1024


def tiny(model: str, **extra) -> dict:
    return {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Say hi."}], **extra}


def _response(rec):
    return rec.response


def _chat(body, **kw) -> Spec:
    return Spec.post("/chat/completions", body, **kw)


@exchange(view=_response)
def errors_invalid_json(plan):
    return Spec("POST", "/chat/completions", content=b'{"model": "x", "messages": [',
                headers={"Content-Type": "application/json"})


@exchange(view=_response)
def errors_text_plain(plan):
    return Spec("POST", "/chat/completions", content=json.dumps(tiny(plan.chat_model)).encode(),
                headers={"Content-Type": "text/plain"})


def _without(body: dict, key: str) -> dict:
    return {k: v for k, v in body.items() if k != key}


@exchange(view=_response)
def errors_missing_model(plan):
    return _chat(_without(tiny(plan.chat_model), "model"))


@exchange(view=_response)
def errors_missing_messages(plan):
    return _chat(_without(tiny(plan.chat_model), "messages"))


@exchange(view=_response)
def errors_empty_messages(plan):
    return _chat(tiny(plan.chat_model, messages=[]))


@exchange(view=_response)
def errors_unknown_role(plan):
    return _chat(tiny(plan.chat_model, messages=[{"role": "wizard", "content": "Say hi."}]))


@exchange(view=_response)
def errors_user_without_content(plan):
    return _chat(tiny(plan.chat_model, messages=[{"role": "user"}]))


@exchange(view=_response)
def errors_array_body(plan):
    return _chat([{"role": "user", "content": "Say hi."}])


@exchange(view=_response)
def errors_numeric_content(plan):
    return _chat(tiny(plan.chat_model, messages=[{"role": "user", "content": 12345}]))


@exchange(view=_response)
def errors_unknown_route(plan):
    return Spec.get("/conformance-no-such-route")


@exchange(view=_response)
def errors_wrong_method(plan):
    return Spec.get("/chat/completions")


@exchange(view=_response)
def errors_oversize(plan):
    return _chat(tiny(plan.chat_model, messages=[{"role": "user", "content": "Say hi. " + "x" * OVERSIZE_BYTES}]))


def _status(expect, req_id, response, wanted) -> None:
    wanted = (wanted,) if isinstance(wanted, int) else tuple(wanted)
    expect(req_id, response.status_code in wanted, expected=f"HTTP {' or '.join(map(str, wanted))}",
           received=f"HTTP {response.status_code}: {response.text[:300]}")


def _rejected(expect, req_id, response, profile, wanted=400) -> dict | None:
    """Status for ``req_id``, then the envelope; returns the error object."""
    _status(expect, req_id, response, wanted)
    return check_error_envelope(expect, response, profile) if response.status_code >= 400 else None


def _param(expect, req_id, err, name: str) -> None:
    if err is not None:
        expect(req_id, err.get("param") == name, expected=f'param "{name}"', received=err.get("param"))


@pytest.mark.requirement("ERRORS-004", *ENVELOPE)
def test_invalid_json(errors_invalid_json, expect, profile):
    _rejected(expect, "ERRORS-004", errors_invalid_json, profile)


@pytest.mark.requirement("ERRORS-005", *ENVELOPE)
def test_non_json_content_type(errors_text_plain, expect, profile):
    """Refused (400 or 415 with the envelope) or served as the JSON the body holds: both are valid."""
    response = errors_text_plain
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        served = isinstance(body, dict) and body.get("object") == "chat.completion" \
            and isinstance(body.get("choices"), list) and len(body["choices"]) > 0
        expect("ERRORS-005", served, expected="HTTP 400 or 415 with the envelope, or the chat completion the body "
               "asks for", received=f"HTTP 200: {response.text[:300]}")
        return
    _rejected(expect, "ERRORS-005", response, profile, (400, 415))


@pytest.mark.requirement("ERRORS-006", "ERRORS-007", *ENVELOPE)
def test_missing_model(errors_missing_model, expect, profile):
    err = _rejected(expect, "ERRORS-006", errors_missing_model, profile)
    _param(expect, "ERRORS-007", err, "model")


@pytest.mark.requirement("ERRORS-008", "ERRORS-009", *ENVELOPE)
def test_missing_messages(errors_missing_messages, expect, profile):
    err = _rejected(expect, "ERRORS-008", errors_missing_messages, profile)
    _param(expect, "ERRORS-009", err, "messages")


@pytest.mark.requirement("ERRORS-010", "ERRORS-009", *ENVELOPE)
def test_empty_messages(errors_empty_messages, expect, profile):
    err = _rejected(expect, "ERRORS-010", errors_empty_messages, profile)
    _param(expect, "ERRORS-009", err, "messages")


@pytest.mark.requirement("ERRORS-020", *ENVELOPE)
def test_unknown_role(errors_unknown_role, expect, profile):
    _rejected(expect, "ERRORS-020", errors_unknown_role, profile)


@pytest.mark.requirement("ERRORS-021", *ENVELOPE)
def test_user_message_without_content(errors_user_without_content, expect, profile):
    _rejected(expect, "ERRORS-021", errors_user_without_content, profile)


@pytest.mark.requirement("ERRORS-023", *ENVELOPE)
def test_json_body_that_is_not_an_object(errors_array_body, expect, profile):
    _rejected(expect, "ERRORS-023", errors_array_body, profile)


@pytest.mark.requirement(*ENVELOPE)
def test_malformed_message_content_is_no_server_error(errors_numeric_content, expect, profile):
    response = errors_numeric_content
    if response.status_code >= 400:
        check_error_envelope(expect, response, profile)


@pytest.mark.requirement("ERRORS-011", *ENVELOPE)
def test_unknown_route(errors_unknown_route, expect, profile):
    _rejected(expect, "ERRORS-011", errors_unknown_route, profile, 404)


@pytest.mark.requirement("ERRORS-012", "ERRORS-013", *ENVELOPE)
def test_wrong_method(errors_wrong_method, expect, profile):
    response = errors_wrong_method
    _rejected(expect, "ERRORS-012", response, profile, range(400, 500))
    allow = response.headers.get("allow")
    expect("ERRORS-013", response.status_code == 405 and allow is not None and "POST" in allow.upper(),
           expected="HTTP 405 with an Allow header naming POST",
           received=f"HTTP {response.status_code}, Allow: {allow}")


@pytest.mark.requirement("ERRORS-014", *ENVELOPE)
def test_oversize_body(errors_oversize, expect, profile):
    _rejected(expect, "ERRORS-014", errors_oversize, profile, 413)


def _role_key(plan, role: str) -> str:
    """The key of ``role``: ``--gw-role-key``, else (embedded server) the profile's test key of that role."""
    key = plan.role_key(role)
    if not key:
        pytest.skip(f"needs a '{role}' key: pass --gw-role-key {role}=KEY" if plan.options.target_url
                    else f"profile {plan.profile.name} names no '{role}' test key (auth.extra_test_keys)")
    return key


@exchange(view=_response)
def errors_no_balance(plan):
    skip_unless_claimed(plan.profile, "billing")
    return _chat(tiny(plan.chat_model), key=_role_key(plan, "no-balance"))


@pytest.mark.requirement("ERRORS-016", *ENVELOPE)
def test_insufficient_balance(errors_no_balance, expect, profile):
    _rejected(expect, "ERRORS-016", errors_no_balance, profile, profile.get("billing.status") or 402)


@exchange(view=_response)
def errors_suspended_wallet(plan):
    skip_unless_claimed(plan.profile, "billing")
    return _chat(tiny(plan.chat_model), key=_role_key(plan, "suspended"))


@pytest.mark.requirement("ERRORS-026", *ENVELOPE)
def test_suspended_wallet(errors_suspended_wallet, expect, profile):
    _rejected(expect, "ERRORS-026", errors_suspended_wallet, profile, profile.get("billing.status") or 402)


@exchange(view=_response)
def errors_token_quota(plan):
    skip_unless_claimed(plan.profile, "token-quota")
    return _chat(tiny(plan.chat_model), key=_role_key(plan, "quota-exhausted"))


@pytest.mark.requirement("RATE-LIMITS-018", *ENVELOPE)
def test_token_quota_exhausted(errors_token_quota, expect, profile):
    _rejected(expect, "RATE-LIMITS-018", errors_token_quota, profile, 429)


@exchange(view=_response)
def errors_daily_limit(plan):
    skip_unless_claimed(plan.profile, "daily-limit")
    return _chat(tiny(plan.chat_model), key=_role_key(plan, "daily-limit"))


@pytest.mark.requirement("RATE-LIMITS-019", *ENVELOPE)
def test_daily_limit_reached(errors_daily_limit, expect, profile):
    _rejected(expect, "RATE-LIMITS-019", errors_daily_limit, profile, 429)


def _outside_allowlist(profile, models) -> tuple[str, dict] | None:
    """(path, body) for a model other than the one a restricted key may use: another chat model, or embeddings."""
    other = next((m["id"] for m in profile.get("models.chat", []) if m["id"] != models.chat_model), None)
    if other:
        return "/chat/completions", tiny(other)
    if profile.claims("embeddings") and models.embedding_model:
        return "/embeddings", {"model": models.embedding_model, "input": "hi"}
    return None


@exchange(view=_response)
def errors_outside_allowlist(plan):
    skip_unless_claimed(plan.profile, "model-allowlist")
    key = _role_key(plan, "restricted")
    target = _outside_allowlist(plan.profile, plan)
    return Spec.post(*target, key=key) if target is not None else None


@pytest.mark.requirement("ERRORS-017", *ENVELOPE)
def test_model_outside_allowlist(errors_outside_allowlist, expect, profile):
    if errors_outside_allowlist is None:
        expect.untestable("ERRORS-017", "the profile documents no second model to ask for")
        return
    _rejected(expect, "ERRORS-017", errors_outside_allowlist, profile, 403)


def _envelope_5xx(expect, response) -> None:
    err = error_object(response)
    expect("ERRORS-019", err is not None and all(k in err for k in ("message", "type", "param", "code")),
           expected='{"error": {"message", "type", "param", "code"}}',
           received=f"HTTP {response.status_code}: {response.text[:300]}")


@exchange(view=_response)
def errors_upstream_timeout(plan):
    skip_unless_claimed(plan.profile, "upstream-timeout")
    return _chat(tiny(plan.chat_model), headers={"X-Mock-Upstream-Timeout": "1"})


@pytest.mark.requirement("ERRORS-018", "ERRORS-019")
def test_upstream_timeout(errors_upstream_timeout, expect, profile):
    response = errors_upstream_timeout
    if response.status_code < 500:
        pytest.skip("the target does not simulate an upstream timeout (X-Mock-Upstream-Timeout)")
    _status(expect, "ERRORS-018", response, 504)
    _envelope_5xx(expect, response)


SERVER_ERRORS = (500, 502, 503)


@exchange
def errors_server_errors(plan):
    if plan.capabilities.mock_controls:
        return [_chat(tiny(plan.chat_model), headers={"X-Mock-Status": str(s)}) for s in SERVER_ERRORS]
    if plan.sandwich is not None:  # the upstream fails on script; the gateway's answer is what is judged
        return [transit_chat(plan, f"errors{s}", respond={"status": s}, max_tokens=1) for s in SERVER_ERRORS]
    # a gateway ignores the control header: three requests for nothing
    pytest.skip("5xx answers can only be provoked on the embedded reference server (X-Mock-Status) or in sandwich "
                "mode (--upstream)")


@pytest.mark.requirement("ERRORS-019", "ERRORS-025")
@pytest.mark.parametrize("status", SERVER_ERRORS)
def test_server_errors_carry_the_envelope(errors_server_errors, status, expect, profile, plan_context):
    recorded = errors_server_errors[SERVER_ERRORS.index(status)]
    response = recorded.response
    skip_unless_upstream_reached(recorded)
    if response.status_code < 500:
        if plan_context.sandwich is not None:
            pytest.skip(f"the gateway answered the upstream's scripted {status} with {response.status_code}, not a 5xx: "
                        "UPSTREAM-FAILURES-* judge how it relays upstream failures")
        pytest.skip(f"the target answered X-Mock-Status: {status} with {response.status_code}: it does not simulate "
                    "server errors")
    _envelope_5xx(expect, response)
    documented = (profile.get("errors.types") or {}).get(response.status_code)
    err = error_object(response)
    if isinstance(documented, str) and err is not None:
        expect("ERRORS-025", err.get("type") == documented, expected=f'type "{documented}" (the profile\'s doc)',
               received=err.get("type"))
