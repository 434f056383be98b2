"""Model names in use: listed ids are served, unknown and rejected names fail cleanly, retrieval, aliases, letter
case and provider routing (spec/requirements/models.yaml). Every chat request asks for one token."""

from __future__ import annotations

import urllib.parse

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_rest import envelope_problems, rest_chat_spec

# A name no gateway serves; kept apart from the profile's `rejected` list so MODELS-009 and -011 stay separate.
UNKNOWN_MODEL = "conformance-no-such-model-7f3a9c"


def _chat_names(profile, chat_model: str) -> list[str]:
    """Every model name the checks below ask a one-token completion of."""
    names = [m["id"] for m in profile.get("models.chat") or []] + [UNKNOWN_MODEL]
    names += list(profile.get("models.rejected") or [])
    names += [a for entry in profile.get("models.chat") or [] for a in entry.get("aliases") or []]
    names += [_case_variant(chat_model)] + [p["example"] for p in profile.get("models.providers") or []
                                            if p.get("example")]
    return list(dict.fromkeys(names))


@exchange(hint=True)
def model_resolution_requests(plan):
    """The completions and retrievals the checks below judge (``rest`` hands them out by content). The run's own
    model's one-token completion is ``one_token_chat``'s (the same request, sent after ``chat_basic``): the check
    asking for it plans that one too, so it is not sent twice."""
    chats = [rest_chat_spec(plan, name) for name in _chat_names(plan.profile, plan.chat_model)
             if name != plan.chat_model]
    gets = [Spec.get(f"/models/{urllib.parse.quote(i, safe='/:')}") for i in _retrieve_ids(plan.profile)]
    return chats + gets + [Spec.get(f"/models/{UNKNOWN_MODEL}")]


def _served(exchange) -> tuple[bool, str]:
    """Was a chat completion served (200 with a completion object)?"""
    body = exchange.json()
    ok = exchange.status == 200 and isinstance(body, dict) and body.get("object") == "chat.completion"
    return ok, f"HTTP {exchange.status}: {exchange.response.text[:300]}"


def _unknown_status_problems(exchange, profile) -> list[str]:
    statuses = profile.unknown_model_statuses()
    problems = [] if exchange.status in statuses else [f"HTTP {exchange.status}, expected {_either(statuses)}"]
    return problems + envelope_problems(exchange.response)


def _either(statuses) -> str:
    return " or ".join(map(str, statuses))


@pytest.mark.requirement("MODELS-008")
def test_documented_models_are_served(model_resolution_requests, one_token_chat, rest, expect, profile):
    # From the profile, not from /models: a gateway that documents no /models still serves its documented models.
    for documented in profile.get("models.chat") or []:
        ok, received = _served(rest.chat(documented["id"]))
        expect("MODELS-008", ok, expected="HTTP 200 chat.completion", received=received,
               note=f"model={documented['id']!r}")


@pytest.mark.requirement("MODELS-009", "MODELS-010")
def test_unknown_model_is_refused(model_resolution_requests, rest, expect, profile):
    exchange = rest.chat(UNKNOWN_MODEL)
    problems = _unknown_status_problems(exchange, profile)
    expect("MODELS-009", not problems, expected=f"HTTP {_either(profile.unknown_model_statuses())} with the "
           "error envelope", received="; ".join(problems) + f" | {exchange.response.text[:300]}")
    error = (exchange.json() or {}).get("error") if isinstance(exchange.json(), dict) else None
    if exchange.status >= 400 and isinstance(error, dict):
        expect("MODELS-010", error.get("param") == "model" or error.get("code") == "model_not_found",
               expected='param "model" or code "model_not_found"', received=error)


@pytest.mark.requirement("MODELS-011")
def test_rejected_names_are_refused(model_resolution_requests, rest, expect, profile):
    for name in profile.get("models.rejected") or []:
        exchange = rest.chat(name)
        problems = _unknown_status_problems(exchange, profile)
        expect("MODELS-011", not problems, expected=f"HTTP {_either(profile.unknown_model_statuses())} "
               "with the error envelope", received="; ".join(problems) + f" | {exchange.response.text[:300]}",
               note=f"model={name!r}")


def _retrieve_ids(profile) -> list[str]:
    """The default chat model plus the first documented ids holding "/" and ":" (they must survive the path)."""
    documented = [m["id"] for m in (profile.get("models.chat") or []) + (profile.get("models.embedding") or [])]
    picks = [profile.get("models.default_chat")]
    for char in "/:":
        picks += [i for i in documented if char in i][:1]
    return list(dict.fromkeys(p for p in picks if p))


@pytest.mark.requirement("MODELS-012")
def test_retrieve_returns_the_model(model_resolution_requests, rest, expect, profile):
    for model_id in _retrieve_ids(profile):
        # The Model's other fields are judged on the list (MODELS-002..004); here: the right one, by its id.
        # "/" stays literal (route /models/{model} with a slash in the id, as the OpenAI SDKs send it).
        exchange = rest.get(f"/models/{urllib.parse.quote(model_id, safe='/:')}")
        body = exchange.json()
        expect("MODELS-012", exchange.status == 200 and isinstance(body, dict) and body.get("id") == model_id,
               expected=f"HTTP 200 Model with id {model_id!r}",
               received=f"HTTP {exchange.status}: {exchange.response.text[:300]}")


@pytest.mark.requirement("MODELS-013")
def test_retrieve_unknown_model_is_404(model_resolution_requests, rest, expect):
    exchange = rest.get(f"/models/{UNKNOWN_MODEL}")
    problems = ([] if exchange.status == 404 else [f"HTTP {exchange.status}"]) + envelope_problems(exchange.response)
    expect("MODELS-013", not problems, expected="HTTP 404 with the error envelope",
           received="; ".join(problems) + f" | {exchange.response.text[:300]}")


def _expected_echo(entry: dict, alias: str, profile) -> str:
    """What `model` should say for a request naming ``alias`` (per model, then per profile)."""
    if entry.get("response_model") == "default":
        return "default"
    if (entry.get("response_model") or profile.get("models.response_model")) == "canonical":
        return entry["id"]
    return alias


@pytest.mark.requirement("MODELS-014", "MODELS-015")
def test_aliases_are_served(model_resolution_requests, rest, expect, profile):
    aliases = [(entry, a) for entry in profile.get("models.chat") or [] for a in entry.get("aliases") or []]
    if not aliases:
        pytest.skip("the profile documents no chat model aliases")
    for entry, alias in aliases:
        exchange = rest.chat(alias)
        ok, received = _served(exchange)
        expect("MODELS-014", ok, expected="HTTP 200 chat.completion", received=received, note=f"alias={alias!r}")
        if ok:
            wanted = _expected_echo(entry, alias, profile)
            expect("MODELS-015", exchange.json().get("model") == wanted, expected=f"model {wanted!r}",
                   received=exchange.json().get("model"), note=f"alias={alias!r} of {entry['id']!r}")


def _case_variant(name: str) -> str:
    variant = name.upper()
    return variant if variant != name else name.lower()


@pytest.mark.requirement("MODELS-016")
def test_case_variant_is_served(model_resolution_requests, rest, expect, chat_model):
    variant = _case_variant(chat_model)
    ok, received = _served(rest.chat(variant))
    expect("MODELS-016", ok, expected="HTTP 200 chat.completion", received=received, note=f"model={variant!r}")


@pytest.mark.requirement("MODELS-017")
def test_provider_model_names_are_routed(model_resolution_requests, rest, expect, profile):
    providers = [p for p in profile.get("models.providers") or [] if p.get("example")]
    if not providers:
        expect.untestable("MODELS-017", "the profile documents no provider-model example name")
    for provider in providers:
        ok, received = _served(rest.chat(provider["example"]))
        expect("MODELS-017", ok, expected="HTTP 200 chat.completion", received=received,
               note=f"provider {provider['name']!r}, model={provider['example']!r}")
