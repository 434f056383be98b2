"""Bearer-key authentication: 401s with the error envelope, the key never echoed (spec/requirements/auth.yaml).

Every 401 is also judged against the error envelope (``ENVELOPE``). Profiles whose gateway documents the key as
"required but ignored" (``auth.key_required_but_ignored``, e.g. Ollama) never answer 401, so the checks that need a
rejected key are skipped there, and AUTH-005 instead checks that an arbitrary key is accepted.
"""

from __future__ import annotations

import re
import string

import pytest

from conformance.suite.fixtures_chat import ENVELOPE, check_error_envelope
from conformance.suite.fixtures_rest import EMBEDDING_TEXTS

TINY = [{"role": "user", "content": "Say hi."}]


def _rotate(ch: str) -> str:
    """The next character of the same class (digit, a-f, other lower case letter, upper case letter)."""
    for alphabet in (string.digits, "abcdef", "ghijklmnopqrstuvwxyz", string.ascii_uppercase):
        if ch in alphabet:
            return alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
    return ch


def unknown_key_like(key: str, pattern: str | None) -> str:
    """A key of the same shape as ``key`` that still matches ``pattern`` but differs in every character it can.

    Changing every changeable character (not just one) keeps a real ``--api-key`` out of the transcript: the
    derived key shares the key's format, not its secret part.
    """
    chars = list(key)
    for i in range(len(chars)):
        original = chars[i]
        chars[i] = _rotate(original)
        if pattern and not re.fullmatch(pattern, "".join(chars)):
            chars[i] = original
    return "".join(chars)


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


@pytest.mark.requirement("AUTH-001", *ENVELOPE)
def test_no_authorization_header(rest, chat_model, profile, expect):
    skip_if_key_ignored(profile)
    # The shared keyless completion: CORS-007 judges the same 401.
    _unauthorized(expect, "AUTH-001", rest.keyless_chat(chat_model).response, profile)


@pytest.mark.requirement("AUTH-002", "AUTH-006", *ENVELOPE)
def test_basic_scheme(client, chat_model, api_key, profile, expect):
    skip_if_key_ignored(profile)
    # The valid key itself after "Basic": a gateway that ignores the scheme name would accept it.
    response = client.post_json("/chat/completions", tiny_body(chat_model),
                                headers={"Authorization": f"Basic {api_key}"})
    _unauthorized(expect, "AUTH-002", response, profile)
    _not_echoed(expect, response, api_key)


@pytest.mark.requirement("AUTH-003", "AUTH-006", *ENVELOPE)
def test_malformed_key(client, chat_model, profile, expect):
    pattern, malformed = profile.get("auth.key_pattern"), profile.get("auth.malformed_key")
    if not pattern or not malformed:
        pytest.skip(f"profile {profile.name} documents no key format (auth.key_pattern)")
    response = client.post_json("/chat/completions", tiny_body(chat_model),
                                headers={"Authorization": f"Bearer {malformed}"})
    _unauthorized(expect, "AUTH-003", response, profile)
    _not_echoed(expect, response, malformed)


@pytest.mark.requirement("AUTH-004", "AUTH-006", *ENVELOPE)
def test_unknown_well_formed_key(chat_calls, chat_model, unknown_key, profile, expect):
    skip_if_key_ignored(profile)
    if profile.accepts_every_key(unknown_key):
        pytest.skip(f"profile {profile.name}'s doc accepts every key starting with "
                    f"{profile.get('auth.any_key_with_prefix')!r}: no well-formed key is unknown")
    response = chat_calls.post("auth-unknown-key", tiny_body(chat_model),
                               headers={"Authorization": f"Bearer {unknown_key}"})
    _unauthorized(expect, "AUTH-004", response, profile)
    _not_echoed(expect, response, unknown_key)


@pytest.mark.requirement("AUTH-007", *ENVELOPE)
def test_empty_bearer_token(client, chat_model, profile, expect):
    skip_if_key_ignored(profile)
    response = client.post_json("/chat/completions", tiny_body(chat_model), headers={"Authorization": "Bearer"})
    _unauthorized(expect, "AUTH-007", response, profile)


def _accepted(expect, response, where: str) -> None:
    expect("AUTH-005", response.status_code not in (401, 403), expected="no 401 or 403",
           received=f"HTTP {response.status_code}: {response.text[:300]}", note=where)


@pytest.mark.requirement("AUTH-005")
def test_test_key_accepted_on_every_route(rest, chat_basic, models, profile, expect):
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
def test_any_key_accepted_where_keys_are_ignored(make_client, chat_model, unknown_key, profile, expect):
    if not profile.get("auth.key_required_but_ignored"):
        pytest.skip(f"profile {profile.name} checks keys")
    response = make_client(api_key=unknown_key).post_json("/chat/completions", tiny_body(chat_model))
    _accepted(expect, response, "POST /chat/completions with an arbitrary key")


@pytest.mark.requirement("AUTH-008")
def test_scheme_name_is_case_insensitive(client, chat_model, api_key, expect):
    # A completion rather than GET /models, so a models-route quirk (AUTH-005, AUTH-010) cannot leak in here.
    response = client.post_json("/chat/completions", tiny_body(chat_model),
                                headers={"Authorization": f"bearer {api_key}"})
    expect("AUTH-008", response.status_code == 200, expected='HTTP 200 for "bearer <key>"',
           received=f"HTTP {response.status_code}: {response.text[:300]}")


@pytest.mark.requirement("AUTH-009")
def test_key_checked_before_body(client, chat_calls, chat_model, unknown_key, profile, expect):
    skip_if_key_ignored(profile)
    if profile.accepts_every_key(unknown_key):
        pytest.skip(f"profile {profile.name}'s doc accepts every well-formed key: no bad key to send")
    response = client.request("POST", "/chat/completions", content=b'{"model": ',
                               headers={"Authorization": f"Bearer {unknown_key}", "Content-Type": "application/json"})
    if response.status_code == 401:
        expect("AUTH-009", True, expected="HTTP 401 (key checked before the body)", received="HTTP 401")
        return
    # Only a key the gateway rejects with a valid body makes this a "bad key" (else AUTH-004 is what broke).
    reference = chat_calls.post("auth-unknown-key", tiny_body(chat_model),
                                headers={"Authorization": f"Bearer {unknown_key}"})
    if reference.status == 401:
        expect("AUTH-009", False, expected="HTTP 401 (key checked before the body)",
               received=f"HTTP {response.status_code}: {response.text[:300]}")


@pytest.mark.requirement("AUTH-010")
def test_models_list_needs_a_key(client, profile, expect):
    skip_if_key_ignored(profile)
    response = client.get("/models", auth=False)
    expect("AUTH-010", response.status_code == 401, expected="HTTP 401",
           received=f"HTTP {response.status_code}: {response.text[:300]}")


@pytest.mark.requirement("AUTH-012", "AUTH-006", *ENVELOPE)
@pytest.mark.parametrize("role", ["expired", "disabled"])
def test_expired_or_disabled_key(make_client, conformance, chat_model, profile, expect, role):
    skip_if_key_ignored(profile)
    key = conformance.role_key(role)
    if not key:
        pytest.skip(f"needs an {role} key: pass --role-key {role}=KEY" if conformance.options.target_url
                    else f"profile {profile.name} names no '{role}' test key (auth.extra_test_keys)")
    response = make_client(api_key=key).post_json("/chat/completions", tiny_body(chat_model))
    _unauthorized(expect, "AUTH-012", response, profile)
    _not_echoed(expect, response, key)
