"""The two hashes of a chat request: ``request_hash`` (the completion id) and ``content_key`` (what seeds the text).

``request_hash`` is the sha256 of the canonical JSON (sorted keys, no spaces) of ``[path, body]``: different bodies,
different ids. ``content_key`` is the sha256 of the canonical JSON of ``[model_id, shaping]``, where ``shaping`` holds
the parsed values of ``CONTENT_FIELDS`` only, so a streamed, truncated or differently-``n`` request gets the same text.
Client developers snapshot both (ids, seeded text, logprobs, tool-call ids): the texts hashed never change.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reference_server.wire.json_text import compact_encoder

# Fields that shape the generated text. Transport fields (stream, n, max_tokens, stop, logprobs) are left out, so a
# streamed answer equals the non-streamed one and a truncated answer is a prefix of the full one.
CONTENT_FIELDS = ("messages", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "temperature")

_CANONICAL = compact_encoder(sort_keys=True, ensure_ascii=False, default=str)


def canonical_hash(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (sorted keys, no spaces): equal requests, equal hashes."""
    return hashlib.sha256(_CANONICAL(value).encode()).hexdigest()


def request_hashes(path: str, body: dict[str, Any], model_id: str, shaping: dict[str, Any]) -> tuple[str, str]:
    """``canonical_hash([path, body])`` and ``canonical_hash([model_id, shaping])``, the messages encoded once.

    Both hashes cover the messages, nearly all of a chat body's bytes: their canonical JSON is encoded once and
    written into both texts. The outer objects are written here as the canonical encoder writes them (sorted keys,
    no spaces), because its C loop spends over a thousand CPU instructions on every key it encodes afresh, and
    ``shaping`` has the same seven keys on every request: its text is one format string. The texts are exactly the
    canonical encodings of ``[path, body]`` and ``[model_id, shaping]`` (tests/server/test_request_hashes.py).
    """
    messages = body.get("messages")
    shared = _CANONICAL(messages) if messages is not None and shaping.get("messages") is messages else None
    request_text = f"[{_json_string(path)},{_object_text(body, shared)}]"
    content_text = f"[{_json_string(model_id)},{_shaping_text(shaping, shared)}]"
    return hashlib.sha256(request_text.encode()).hexdigest(), hashlib.sha256(content_text.encode()).hexdigest()


def _json_value(value: Any) -> str:
    """The canonical JSON of ``value``; the values a request's fields hold most are written without the encoder."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:
        return _json_string(value)
    if type(value) is list and not value:
        return "[]"
    return _CANONICAL(value)


def _object_text(obj: dict[str, Any], messages_text: str | None) -> str:
    """The canonical JSON of ``obj`` (string keys), ``messages_text`` the encoding of its "messages" when given."""
    items = [f"{_json_string(key)}:{messages_text}" if key == "messages" and messages_text is not None
             else f"{_json_string(key)}:{_json_value(obj[key])}" for key in sorted(obj)]
    return "{" + ",".join(items) + "}"


def _shaping_text(shaping: dict[str, Any], messages_text: str | None) -> str:
    """``_object_text(shaping, messages_text)``, written as one format string when it has the keys it always has
    (CONTENT_FIELDS, the seed left out at temperature 0), in sorted order."""
    keys = shaping.keys()
    if messages_text is None or (keys != _SHAPING_KEYS and keys != _SHAPING_KEYS_WITHOUT_SEED):
        return _object_text(shaping, messages_text)
    seed = f',"seed":{_json_value(shaping["seed"])}' if "seed" in keys else ""
    return (f'{{"messages":{messages_text},"parallel_tool_calls":{_json_value(shaping["parallel_tool_calls"])},'
            f'"response_format":{_json_value(shaping["response_format"])}{seed},'
            f'"temperature":{_json_value(shaping["temperature"])},"tool_choice":{_json_value(shaping["tool_choice"])},'
            f'"tools":{_json_value(shaping["tools"])}}}')


# What the canonical encoder writes for a string: quotes, escapes, non-ASCII as is.
_json_string = json.encoder.encode_basestring
_SHAPING_KEYS = frozenset(CONTENT_FIELDS)
_SHAPING_KEYS_WITHOUT_SEED = _SHAPING_KEYS - {"seed"}
