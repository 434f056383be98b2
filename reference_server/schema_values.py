"""Deterministic values that satisfy a JSON Schema: the arguments of mock tool calls and json_schema answers.

Handles ``type`` (one or a list), ``properties`` / ``required`` / ``additionalProperties``, ``enum``, ``const``,
``minimum`` / ``maximum`` / exclusive bounds / ``multipleOf`` (integers), ``minLength`` / ``maxLength`` / ``format``
(date, date-time, email, uri, uuid), ``items`` / ``minItems`` / ``maxItems``, ``anyOf`` / ``oneOf`` (first branch)
and ``allOf`` (merged). ``$ref`` is not followed (the branch falls back to a string). Every property of an object
is produced, required or not, so strict schemas (all properties required) are satisfied too; no extra ones ever.
"""

from __future__ import annotations

import random
from typing import Any

WORDS = ("alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kestrel",
         "lumen", "meadow", "nova", "orbit", "prairie", "quartz", "river", "summit", "tundra")
FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
MAX_DEPTH = 8


def generate(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value valid against ``schema`` (a dict, or True/absent for "anything"), drawn from ``rng``."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return rng.choice(WORDS)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][rng.randrange(len(schema["enum"]))]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return generate(schema[key][0], rng, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged = _merge(merged, part)
        return generate(merged, rng, depth + 1)
    kind = _pick_type(schema)
    maker = {"object": _object, "array": _array, "string": _string, "integer": _integer, "number": _number,
             "boolean": lambda s, r, d: r.random() < 0.5, "null": lambda s, r, d: None}
    return maker.get(kind, _string)(schema, rng, depth)


def _merge(a: dict, b: dict) -> dict:
    out = {**a, **b}
    if "properties" in a or "properties" in b:
        out["properties"] = {**a.get("properties", {}), **b.get("properties", {})}
    if "required" in a or "required" in b:
        out["required"] = sorted(set(a.get("required", [])) | set(b.get("required", [])))
    return out


def _pick_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        return kinds[0]
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _object(schema: dict, rng: random.Random, depth: int) -> dict:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    out = {name: generate(sub, rng, depth + 1) for name, sub in properties.items()}
    for name in schema.get("required") or []:
        if isinstance(name, str) and name not in out:
            out[name] = rng.choice(WORDS)
    return out


def _array(schema: dict, rng: random.Random, depth: int) -> list:
    low = int(schema.get("minItems", 1))
    high = int(schema.get("maxItems", max(low, 3)))
    count = max(low, min(high, low + rng.randrange(2)))
    items = schema.get("items", {})
    values = [generate(items, rng, depth + 1) for _ in range(count)]
    if schema.get("uniqueItems"):
        unique: list = []
        for value in values:
            if value not in unique:
                unique.append(value)
        values = unique
    return values


def _string(schema: dict, rng: random.Random, depth: int) -> str:
    fmt = schema.get("format")
    if fmt in FORMATS:
        return FORMATS[fmt]
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", max(low, 24)))
    text = rng.choice(WORDS)
    while len(text) < low:
        text += " " + rng.choice(WORDS)
    return text[:high] if len(text) > high else text


def _bounds(schema: dict, step: float) -> tuple[float, float]:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (step if "exclusiveMinimum" in schema else 0))
    high = schema.get("maximum",
                      schema.get("exclusiveMaximum", low + 100) - (step if "exclusiveMaximum" in schema else 0))
    return float(low), float(max(low, high))


def _integer(schema: dict, rng: random.Random, depth: int) -> int:
    low, high = _bounds(schema, 1)
    value = rng.randint(int(-(-low // 1)), int(high // 1)) if int(-(-low // 1)) <= int(high // 1) else int(low)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = -(-int(low) // step) * step
    return value


def _number(schema: dict, rng: random.Random, depth: int) -> float:
    low, high = _bounds(schema, 0.001)
    return round(low + (high - low) * rng.random(), 3) if high > low else low
