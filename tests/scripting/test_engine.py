"""Rule selection (reference_server/scripting/engine.py) over the memory store and a real Redis."""

from __future__ import annotations

import pytest

from reference_server.scripting import RequestFacts, RuleError, ScriptEngine
from reference_server.state import MemoryStore, open_store


@pytest.fixture(params=["memory", "redis"])
def engine(request):
    if request.param == "memory":
        return ScriptEngine(MemoryStore())
    return ScriptEngine(open_store(request.getfixturevalue("redis_url"), "engine"))


def chat(text: str, model: str = "gpt-4o-mini", tools: bool = False, route: str = "chat") -> RequestFacts:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": "f"}}]
    return RequestFacts.from_body(route, body)


def served_by(engine, facts) -> str | None:
    selection = engine.select(facts)
    return selection and f"{selection.rule.id}:{selection.served}"


def test_conditions_order_and_fallthrough(engine):
    engine.add([
        {"id": "tools", "match": {"tools": True}, "respond": {"content": "t"}},
        {"id": "regex", "match": {"prompt_regex": "^Hi", "route": "chat"}, "respond": {"content": "r"}},
        {"id": "model", "match": {"model": "GPT-4O"}, "respond": {"content": "m"}},
        {"id": "nonce", "match": {"nonce": "abcdef"}, "respond": {"content": "n"}},
    ])
    assert served_by(engine, chat("x", tools=True)) == "tools:1"
    assert served_by(engine, chat("Hi there")) == "regex:1"
    assert served_by(engine, chat("Hi there", route="ollama-chat")) is None
    assert served_by(engine, chat("x", model="gpt-4o")) == "model:1"
    assert served_by(engine, chat("x [[mock:abcdef]]")) == "nonce:1"
    assert served_by(engine, chat("x [[mock:abcdeg]]")) is None


def test_nth_times_and_answer_sequence(engine):
    engine.add([{"id": "third", "match": {"prompt_contains": "go", "nth": 3}, "respond": {"status": 503}},
                {"id": "twice", "match": {"prompt_contains": "go"}, "times": 2,
                 "respond": [{"status": 429}, {"content": "ok"}]}])
    results = [engine.select(chat("go")) for _ in range(5)]
    assert [r and (r.rule.id, r.served, r.response.status) for r in results] == [
        ("twice", 1, 429), ("twice", 2, None), ("third", 1, 503), None, None]


def test_registration_errors_and_listing(engine):
    engine.add([{"id": "a", "respond": {}}])
    with pytest.raises(RuleError) as err:
        engine.add([{"id": "b", "respond": {}}, {"id": "a", "respond": {}}])
    assert err.value.path == "rules[1].id"
    assert [r["id"] for r in engine.listing()] == ["a"]
    assert engine.delete("a") and engine.listing() == []


def test_nonce_attempts_count_per_nonce(engine):
    assert [engine.attempt("abcdef"), engine.attempt("abcdef"), engine.attempt("zzzzzz")] == [1, 2, 1]


def test_rules_registered_by_one_process_are_seen_by_another(redis_url):
    first, second = (ScriptEngine(open_store(redis_url, "shared")) for _ in range(2))
    assert second.select(chat("go")) is None  # caches the empty rule list
    first.add([{"id": "x", "match": {"prompt_contains": "go"}, "times": 1, "respond": {"content": "y"}}])
    assert served_by(second, chat("go")) == "x:1"
    assert first.select(chat("go")) is None  # times 1 is counted across both
