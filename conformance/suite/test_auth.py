"""Bearer-key authentication: 401s with the error envelope, the key never echoed (spec/requirements/auth.yaml).

Every 401 is also judged against the error envelope (``ENVELOPE``). Profiles whose gateway documents the key as
"required but ignored" (``auth.key_required_but_ignored``, e.g. Ollama) never answer 401, so the checks that need a
rejected key are skipped there, and AUTH-005 instead checks that an arbitrary key is accepted.
"""

from __future__ import annotations

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_chat import ENVELOPE, ChatExchange, check_error_envelope, unknown_key_like
from conformance.suite.fixtures_rest import EMBEDDING_TEXTS

TINY = [{"role": "user", "content": "Say hi."}]


def skip_if_key_ignored(profile) -> None:
    if profile.get("auth.key_required_but_ignored"):
        pytest.skip(f"profile {profile.name} documents the key as required but ignored (no 401)")


def tiny_body(model: str) -> dict:
    return {"model": model, "max_tokens": 1, "messages": TINY}


def _unauthorized(expect, req_id, response, profile) -> None:
    expect(req_id, response.status_code == 401, expected="HTTP 401",
           received=f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        check_error_envelope(expect, response, profile)


def _not_echoed(expect, response, key: str) -> None:
    expect("AUTH-006", key not in response.text, expected="the presented key is not in the body (masked is fine)",
           received=response.text[:300])


@pytest.fixture
def unknown_key(profile, api_key) -> str:
    """A well-formed key the gateway does not know, derived from the run's key."""
    return unknown_key_like(api_key or profile.test_key, profile.get("auth.key_pattern"))


def _unknown_key(plan) -> str:
    return unknown_key_like(plan.api_key or plan.profile.test_key, plan.profile.get("auth.key_pattern"))


def _bad_key(plan) -> str:
    """A well-formed key the gateway must refuse; skips where the profile's doc accepts every such key."""
    skip_if_key_ignored(plan.profile)
    key = _unknown_key(plan)
    if plan.profile.accepts_every_key(key):
        pytest.skip(f"profile {plan.profile.name}'s doc accepts every key starting with "
                    f"{plan.profile.get('auth.any_key_with_prefix')!r}: no well-formed key is unknown")
    return key


def _response(rec):
    return rec.response


def _chat(plan, authorization: str) -> Spec:
    return Spec.post("/chat/completions", tiny_body(plan.chat_model), headers={"Authorization": authorization})


@exchange(view=_response)
def auth_basic_scheme(plan):
    # The valid key itself after "Basic": a gateway that ignores the scheme name would accept it.
    skip_if_key_ignored(plan.profile)
    return _chat(plan, f"Basic {plan.api_key}")


@exchange(view=_response)
def auth_malformed_key(plan):
    pattern, malformed = plan.profile.get("auth.key_pattern"), plan.profile.get("auth.malformed_key")
    if not pattern or not malformed:
        pytest.skip(f"profile {plan.profile.name} documents no key format (auth.key_pattern)")
    return _chat(plan, f"Bearer {malformed}")


@exchange(view=ChatExchange.of)
def auth_unknown_key(plan):
    """The one-token completion with a well-formed unknown key (AUTH-004; AUTH-009's reference)."""
    return _chat(plan, f"Bearer {_bad_key(plan)}")


@exchange(view=_response)
def auth_empty_bearer(plan):
    skip_if_key_ignored(plan.profile)
    return _chat(plan, "Bearer")


@exchange(view=_response)
def auth_any_key(plan):
    if not plan.profile.get("auth.key_required_but_ignored"):
        pytest.skip(f"profile {plan.profile.name} checks keys")
    return Spec.post("/chat/completions", tiny_body(plan.chat_model), key=_unknown_key(plan))


@exchange(view=_response)
def auth_lower_case_scheme(plan):
    # A completion rather than GET /models, so a models-route quirk (AUTH-005, AUTH-010) cannot leak in here.
    return _chat(plan, f"bearer {plan.api_key}")


@exchange(view=_response)
def auth_before_body(plan):
    return Spec("POST", "/chat/completions", content=b'{"model": ',
                headers={"Authorization": f"Bearer {_bad_key(plan)}", "Content-Type": "application/json"})


@exchange(view=_response)
def auth_keyless_models(plan):
    skip_if_key_ignored(plan.profile)
    return Spec.get("/models", auth=False)


@pytest.mark.requirement("AUTH-001", *ENVELOPE)
def test_no_authorization_header(keyless_chat, rest, chat_model, profile, expect):
    skip_if_key_ignored(profile)
    # The shared keyless completion: CORS-007 judges the same 401.
    _unauthorized(expect, "AUTH-001", rest.keyless_chat(chat_model).response, profile)


@pytest.mark.requirement("AUTH-002", "AUTH-006", *ENVELOPE)
def test_basic_scheme(auth_basic_scheme, api_key, profile, expect):
    response = auth_basic_scheme
    _unauthorized(expect, "AUTH-002", response, profile)
    _not_echoed(expect, response, api_key)


@pytest.mark.requirement("AUTH-003", "AUTH-006", *ENVELOPE)
def test_malformed_key(auth_malformed_key, profile, expect):
    response, malformed = auth_malformed_key, profile.get("auth.malformed_key")
    _unauthorized(expect, "AUTH-003", response, profile)
    _not_echoed(expect, response, malformed)


@pytest.mark.requirement("AUTH-004", "AUTH-006", *ENVELOPE)
def test_unknown_well_formed_key(auth_unknown_key, unknown_key, profile, expect):
    response = auth_unknown_key
    _unauthorized(expect, "AUTH-004", response, profile)
    _not_echoed(expect, response, unknown_key)


@pytest.mark.requirement("AUTH-007", *ENVELOPE)
def test_empty_bearer_token(auth_empty_bearer, profile, expect):
    _unauthorized(expect, "AUTH-007", auth_empty_bearer, profile)


def _accepted(expect, response, where: str) -> None:
    expect("AUTH-005", response.status_code not in (401, 403), expected="no 401 or 403",
           received=f"HTTP {response.status_code}: {response.text[:300]}", note=where)


@pytest.mark.requirement("AUTH-005")
def test_test_key_accepted_on_every_route(models_listing, embedding_batch, rest, chat_basic, models, profile, expect):
    # Exchanges the model and embeddings checks judge as well: this check spends no request of its own.
    _accepted(expect, chat_basic, "POST /chat/completions")
    if profile.claims("models-list"):
        _accepted(expect, rest.get("/models").response, "GET /models")
    if profile.claims("models-retrieve"):
        _accepted(expect, rest.get(f"/models/{models.chat}").response, "GET /models/{id}")
    if profile.claims("embeddings") and models.embedding:
        _accepted(expect, rest.post("/embeddings", {"model": models.embedding, "input": EMBEDDING_TEXTS}).response,
                  "POST /embeddings")


@pytest.mark.requirement("AUTH-005")
def test_any_key_accepted_where_keys_are_ignored(auth_any_key, expect):
    _accepted(expect, auth_any_key, "POST /chat/completions with an arbitrary key")


@pytest.mark.requirement("AUTH-008")
def test_scheme_name_is_case_insensitive(auth_lower_case_scheme, expect):
    response = auth_lower_case_scheme
    expect("AUTH-008", response.status_code == 200, expected='HTTP 200 for "bearer <key>"',
           received=f"HTTP {response.status_code}: {response.text[:300]}")


@pytest.mark.requirement("AUTH-009")
def test_key_checked_before_body(auth_before_body, auth_unknown_key, expect):
    response = auth_before_body
    if response.status_code == 401:
        expect("AUTH-009", True, expected="HTTP 401 (key checked before the body)", received="HTTP 401")
        return
    # Only a key the gateway rejects with a valid body makes this a "bad key" (else AUTH-004 is what broke).
    reference = auth_unknown_key
    if reference.status == 401:
        expect("AUTH-009", False, expected="HTTP 401 (key checked before the body)",
               received=f"HTTP {response.status_code}: {response.text[:300]}")


@pytest.mark.requirement("AUTH-010")
def test_models_list_needs_a_key(auth_keyless_models, expect):
    response = auth_keyless_models
    expect("AUTH-010", response.status_code == 401, expected="HTTP 401",
           received=f"HTTP {response.status_code}: {response.text[:300]}")


def _stale_key(plan, role: str) -> Spec:
    """One completion with the key of ``role`` (expired, disabled), where such a key is known (AUTH-012)."""
    skip_if_key_ignored(plan.profile)
    key = plan.role_key(role)
    if not key:
        pytest.skip(f"needs an {role} key: pass --gw-role-key {role}=KEY" if plan.options.target_url
                    else f"profile {plan.profile.name} names no '{role}' test key (auth.extra_test_keys)")
    return Spec.post("/chat/completions", tiny_body(plan.chat_model), key=key)


@exchange(view=_response)
def auth_expired_key(plan):
    return _stale_key(plan, "expired")


@exchange(view=_response)
def auth_disabled_key(plan):
    return _stale_key(plan, "disabled")


def _stale_key_refused(expect, response, profile, key) -> None:
    _unauthorized(expect, "AUTH-012", response, profile)
    _not_echoed(expect, response, key)


@pytest.mark.requirement("AUTH-012", "AUTH-006", *ENVELOPE)
def test_expired_key(auth_expired_key, conformance, profile, expect):
    _stale_key_refused(expect, auth_expired_key, profile, conformance.role_key("expired"))


@pytest.mark.requirement("AUTH-012", "AUTH-006", *ENVELOPE)
def test_disabled_key(auth_disabled_key, conformance, profile, expect):
    _stale_key_refused(expect, auth_disabled_key, profile, conformance.role_key("disabled"))
