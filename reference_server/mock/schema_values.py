"""Deterministic values that satisfy a JSON Schema: the arguments of mock tool calls and json_schema answers.

Handles ``type`` (one or a list), ``properties`` / ``required``, ``enum``, ``const``, ``minimum`` / ``maximum`` /
exclusive bounds / ``multipleOf`` (integers), ``minLength`` / ``maxLength`` / ``format`` (date, date-time, time,
email, uri, uuid), ``items`` / ``minItems`` / ``maxItems`` / ``uniqueItems``, ``anyOf`` / ``oneOf`` (first branch)
and ``allOf`` (merged). ``$ref`` is not followed (the branch falls back to a string). Every property of an object
is produced, required or not, so strict schemas (all properties required) are satisfied too; no extra ones ever.

Schemas come from clients, so nothing here trusts them: malformed keywords are ignored, sizes are capped
(``MAX_STRING``, ``MAX_ITEMS``) and a node budget bounds the work for deeply nested schemas.
"""

from __future__ import annotations

import math
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
MAX_STRING = 2000
MAX_ITEMS = 8
MAX_NODES = 2000


def generate(schema: Any, rng: random.Random) -> Any:
    """A value valid against ``schema`` (a dict, or True/absent for "anything"), drawn from ``rng``."""
    return _Generator(rng).value(schema, 0)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _size(schema: dict, key: str, default: int, cap: int) -> int:
    value = schema.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return default
    return min(value, cap)


def _merge(a: dict, b: dict) -> dict:
    out = {**a, **b}
    props = [p for p in (a.get("properties"), b.get("properties")) if isinstance(p, dict)]
    if props:
        out["properties"] = {k: v for p in props for k, v in p.items()}
    required = [r for r in (a.get("required"), b.get("required")) if isinstance(r, list)]
    if required:
        out["required"] = sorted({name for r in required for name in r if isinstance(name, str)})
    return out


def _pick_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str) and k != "null"]
        return kinds[0] if kinds else "null" if "null" in kind else "string"
    if isinstance(kind, str):
        return kind
    if isinstance(schema.get("properties"), dict):
        return "object"
    return "array" if "items" in schema else "string"


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nodes = 0

    def value(self, schema: Any, depth: int) -> Any:
        self.nodes += 1
        if not isinstance(schema, dict) or depth > MAX_DEPTH or self.nodes > MAX_NODES:
            return self.rng.choice(WORDS)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self.rng.randrange(len(schema["enum"]))]
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.value(schema[key][0], depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, dict):
                    merged = _merge(merged, part)
            return self.value(merged, depth + 1)
        maker = {"object": self.object, "array": self.array, "string": self.string, "integer": self.integer,
                 "number": self.number, "boolean": lambda s, d: self.rng.random() < 0.5, "null": lambda s, d: None}
        return maker.get(_pick_type(schema), self.string)(schema, depth)

    def object(self, schema: dict, depth: int) -> dict:
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        out = {name: self.value(sub, depth + 1) for name, sub in properties.items()}
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        for name in required:
            if isinstance(name, str) and name not in out:
                out[name] = self.rng.choice(WORDS)
        return out

    def array(self, schema: dict, depth: int) -> list:
        low = _size(schema, "minItems", 1, MAX_ITEMS)
        high = max(low, _size(schema, "maxItems", max(low, 3), MAX_ITEMS))
        count = min(high, low + self.rng.randrange(2))
        values = [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]
        if schema.get("uniqueItems") is True:
            unique: list = []
            for value in values:
                if value not in unique:
                    unique.append(value)
            values = unique
        return values

    def string(self, schema: dict, depth: int) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in FORMATS:
            return FORMATS[fmt]
        low = _size(schema, "minLength", 0, MAX_STRING)
        high = max(low, _size(schema, "maxLength", max(low, 24), MAX_STRING))
        text = self.rng.choice(WORDS)
        while len(text) < low:
            text += " " + self.rng.choice(WORDS)
        return text[:high]

    def _bounds(self, schema: dict, step: float) -> tuple[float, float]:
        low = _number(schema.get("minimum"))
        if low is None:
            exclusive = _number(schema.get("exclusiveMinimum"))
            low = exclusive + step if exclusive is not None else 0.0
        high = _number(schema.get("maximum"))
        if high is None:
            exclusive = _number(schema.get("exclusiveMaximum"))
            high = exclusive - step if exclusive is not None else low + 100
        return low, max(low, high)

    def integer(self, schema: dict, depth: int) -> int:
        low, high = self._bounds(schema, 1)
        first, last = int(-(-low // 1)), int(high // 1)
        value = self.rng.randint(first, last) if first <= last else first
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            value = -(-first // step) * step
        return value

    def number(self, schema: dict, depth: int) -> float:
        low, high = self._bounds(schema, 0.001)
        value = round(low + (high - low) * self.rng.random(), 3) if high > low else low
        return value if math.isfinite(value) else low  # huge bounds overflow; JSON has no Infinity
