"""Structured output: json_object and json_schema answers, streamed and not, validated with jsonschema."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from reference_server.mock.schema_values import generate
from tests.server.conftest import chat_body, stream_chunks

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 3},
        "address": {"type": "object", "properties": {"zip": {"type": "string", "minLength": 5}},
                    "required": ["zip"], "additionalProperties": False},
        "nickname": {"type": ["string", "null"]},
        "score": {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1}, {"type": "null"}]},
        "kind": {"const": "person"},
        "both": {"allOf": [{"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]},
                           {"properties": {"y": {"type": "integer", "multipleOf": 5, "minimum": 3}}}]},
    },
    "required": ["name", "age", "email", "tags", "address", "nickname", "score", "kind", "both"],
    "additionalProperties": False,
}


def _schema_format(schema, strict=True):
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": strict}}


def test_json_object_content_is_an_object(post_chat):
    choice = post_chat(chat_body(response_format={"type": "json_object"})).get_json()["choices"][0]
    assert isinstance(json.loads(choice["message"]["content"]), dict) and choice["finish_reason"] == "stop"


@pytest.mark.parametrize("strict", [True, False])
def test_json_schema_content_validates(post_chat, strict):
    content = post_chat(chat_body(response_format=_schema_format(PERSON, strict))).get_json()
    jsonschema.validate(json.loads(content["choices"][0]["message"]["content"]), PERSON)


def test_streamed_json_concatenates_to_the_same_object(post_chat):
    fmt = _schema_format(PERSON)
    chunks = stream_chunks(post_chat(chat_body(response_format=fmt, stream=True)))
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    plain = post_chat(chat_body(response_format=fmt)).get_json()["choices"][0]["message"]["content"]
    assert json.loads(streamed) == json.loads(plain)


def test_text_format_is_plain_text(post_chat):
    with_text = post_chat(chat_body(response_format={"type": "text"})).get_json()
    assert with_text["choices"][0]["message"]["content"] == post_chat(chat_body()).get_json()["choices"][0][
        "message"]["content"]


@pytest.mark.parametrize("seed", range(40))
def test_schema_values_always_valid(seed):
    jsonschema.validate(generate(PERSON, random.Random(seed)), PERSON)


HOSTILE_ATOMS = [None, True, 0, -5, 3, 2.5, "", "x", "string", "integer", "number", "object", "array", "null", [],
                 {}, ["a"], {"type": "string"}, 10**30, 1e308, -1e308]
HOSTILE_KEYS = ["type", "properties", "required", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
                "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "items", "minItems", "maxItems", "anyOf",
                "oneOf", "allOf", "format", "uniqueItems"]


def _hostile_schema(rng, depth=0):
    if depth > 3 or rng.random() < 0.2:
        return rng.choice(HOSTILE_ATOMS)
    out = {}
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(HOSTILE_KEYS)
        if key == "properties":
            out[key] = {"p": _hostile_schema(rng, depth + 1), "q": _hostile_schema(rng, depth + 1)}
        elif key in ("anyOf", "oneOf", "allOf", "items"):
            sub = [_hostile_schema(rng, depth + 1) for _ in range(2)]
            out[key] = sub[0] if key == "items" else sub
        else:
            out[key] = rng.choice(HOSTILE_ATOMS)
    return out


def test_hostile_schemas_give_finite_json_quickly():
    rng = random.Random(7)
    for _ in range(500):
        json.dumps(generate(_hostile_schema(rng), random.Random(1)), allow_nan=False)


def test_huge_sizes_are_capped():
    value = generate({"type": "array", "minItems": 10**9, "items": {"type": "string", "minLength": 10**9}},
                     random.Random(0))
    assert len(value) <= 8 and all(len(v) <= 2000 for v in value)
