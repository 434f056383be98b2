"""Rule parsing and validation (reference_server/scripting/rules.py): every bad field is named by index and path."""

from __future__ import annotations

import pytest

from reference_server.scripting import RuleError, parse_rules
from reference_server.scripting.nonce import find_nonce, marker, prompt_texts


def test_a_full_rule_parses():
    (rule,) = parse_rules({"rules": [{
        "id": "weather", "times": 2,
        "match": {"nonce": "n-7f3a99", "route": "chat", "model": "gpt-4o-mini", "prompt_contains": "weather",
                  "prompt_regex": "^What", "tools": True, "nth": 3},
        "respond": [{"status": 429, "headers": {"Retry-After": 1}},
                    {"content": "Sunny", "usage": {"prompt_tokens": 7, "completion_tokens": 3}, "n": 2,
                     "logprobs": True, "finish_reason": "stop",
                     "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
                     "stream": {"first_byte_ms": 10, "interval_ms": 5, "cut_after": 2}}],
    }]})
    assert rule.id == "weather" and rule.times == 2 and rule.match.nth == 3
    first, second = rule.respond
    assert first.raw_answer and first.headers == (("Retry-After", "1"),)
    assert second.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert second.tool_calls[0].arguments == '{"city": "Paris"}'
    assert second.shapes_answer and not second.raw_answer
    assert rule.response_for(1) is first and rule.response_for(5) is second  # the last item repeats


@pytest.mark.parametrize(("rules", "path"), [
    ([{"respond": {"status": 99}}], "rules[0].respond.status"),
    ([{"respond": {}}, {"respond": {"statu": 500}}], "rules[1].respond.statu"),
    ([{"match": {"nth": 0}, "respond": {}}], "rules[0].match.nth"),
    ([{"match": {"route": "chats"}, "respond": {}}], "rules[0].match.route"),
    ([{"match": {"prompt_regex": "("}, "respond": {}}], "rules[0].match.prompt_regex"),
    ([{"match": {"nonce": "abc"}, "respond": {}}], "rules[0].match.nonce"),
    ([{"match": {"tools": "yes"}, "respond": {}}], "rules[0].match.tools"),
    ([{"match": {}}], "rules[0].respond"),
    ([{"respond": []}], "rules[0].respond"),
    ([{"respond": [{}, {"stall_ms": -1}]}], "rules[0].respond[1].stall_ms"),
    ([{"respond": {"headers": {"A": "b\r\nc"}}}], "rules[0].respond.headers"),
    ([{"respond": {"status": 503, "content": "x"}}], "rules[0].respond.content"),
    ([{"match": {"route": "embeddings"}, "respond": {"content": "x"}}], "rules[0].respond.content"),
    ([{"respond": {"tool_calls": [{"arguments": "{}"}]}}], "rules[0].respond.tool_calls[0].name"),
    ([{"respond": {"usage": {"prompt_tokens": -1}}}], "rules[0].respond.usage.prompt_tokens"),
    ([{"respond": {"stream": {"cut_after": 1, "error_after": 2}}}], "rules[0].respond.stream.error_after"),
    ([{"respond": {"stream": {"error": {"message": "x"}}}}], "rules[0].respond.stream.error"),
    ([{"respond": {"content": "one two", "stream": {"chunks": 2}}}], "rules[0].respond.stream.chunks"),
    ([{"respond": {"finish_reason": "done"}}], "rules[0].respond.finish_reason"),
    ([{"id": "a", "respond": {}}, {"id": "a", "respond": {}}], "rules[1].id"),
    ([{"id": "no spaces", "respond": {}}], "rules[0].id"),
    ({"rules": [], "extra": 1}, "rules.extra"),
    ("nope", "rules"),
])
def test_bad_rules_name_their_index_and_field(rules, path):
    with pytest.raises(RuleError) as err:
        parse_rules(rules)
    assert err.value.path == path
    assert str(err.value).startswith(path + ": ")


def test_nonce_channel():
    assert marker("abc-123_x") == "[[mock:abc-123_x]]"
    with pytest.raises(ValueError):
        marker("a b")
    body = {"messages": [{"role": "system", "content": "sys"},
                         {"role": "user", "content": [{"type": "text", "text": "hi [[mock:n-7f3a99]] there"}]}]}
    assert find_nonce(prompt_texts(body)) == "n-7f3a99"
    assert find_nonce(prompt_texts({"input": ["x", "[[mock:abcdef]]"]})) == "abcdef"
    assert find_nonce(prompt_texts({"prompt": "[[mock:short]]"})) is None  # 5 characters: not a nonce
