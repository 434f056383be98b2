"""The one token rule the reference server counts with, so usage is reproducible by anyone reading this docstring.

A token is one of, scanned left to right (``TOKEN_PATTERN``):

* a run of letters and digits (``[^\\W_]+``: "Hello", "42", "naïve"),
* a run of whitespace (``\\s+``: " ", "\\n\\n"),
* any other single character (punctuation, symbols, "_", emoji).

Concatenating the tokens of a text gives the text back exactly, which is what lets the streaming code send one token
per content delta and lets logprobs carry each token's UTF-8 bytes.

Prompt tokens (``count_prompt_tokens``): for every message, 1 token for the role plus the tokens of its text (string
content, the ``text`` of text parts, a refusal, the name and arguments of each tool call); plus the tokens of the
JSON text of ``tools`` when the request declares tools. Completion tokens are the tokens of the generated text
(content, refusal, reasoning, tool-call name and arguments).
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN_PATTERN = re.compile(r"[^\W_]+|\s+|[^\w\s]|_", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens; ``"".join(tokenize(t)) == t`` for every string."""
    return TOKEN_PATTERN.findall(text or "")


def count_tokens(text: str | None) -> int:
    """Number of tokens in ``text`` (0 for None or empty); always ``len(tokenize(text))``.

    Every chat request counts its prompt and its answer, and the regular expression spends about a microsecond per
    token on it. ASCII text (nearly every request) is counted with a few passes in C instead. Each character is
    mapped to one byte holding its class as a bit (1: letter or digit, 2: whitespace, 0: anything else) and the
    bytes read as one big integer. A character of neither class is one token; a run of either of the other two
    classes starts where a character has its class bit and the character before it does not
    (``classes & ~(classes >> 8)``, the previous character's byte shifted onto it). So the count is the characters
    without a class bit, plus the bits set where runs start.
    """
    if not text:
        return 0
    if not text.isascii():
        return len(TOKEN_PATTERN.findall(text))
    classes = int.from_bytes(text.encode("ascii").translate(_CLASS_BITS), "big")
    return len(text) - classes.bit_count() + (classes & ~(classes >> 8)).bit_count()


# The class bit of each ASCII character: ``str.isalnum`` and ``str.isspace`` are what the pattern's ``[^\W_]`` and
# ``\s`` test, so for ASCII characters the classes are exactly the pattern's.
_CLASS_BITS = bytes(1 if chr(i).isalnum() else 2 if chr(i).isspace() else 0 for i in range(256))


def message_text(message: dict[str, Any]) -> str:
    """The countable text of one request message (content parts, refusal, tool-call names and arguments)."""
    content = message.get("content")
    if type(content) is str and message.get("refusal") is None and not message.get("tool_calls"):
        return content  # the usual message: its text is its content (what the general case below gives too)
    pieces: list[str] = []
    if isinstance(content, str):
        pieces.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text") or part.get("refusal")
                if isinstance(text, str):
                    pieces.append(text)
    if isinstance(message.get("refusal"), str):
        pieces.append(message["refusal"])
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            pieces.extend(str(function.get(k) or "") for k in ("name", "arguments"))
    return " ".join(pieces)


def count_prompt_tokens(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
    """Prompt tokens of a chat request: per message 1 (role) + its text's tokens, plus the tools' JSON tokens."""
    total = 0
    for message in messages:
        if isinstance(message, dict):
            total += 1 + count_tokens(message_text(message))
    if tools:
        total += count_tokens(json.dumps(tools, sort_keys=True))
    return total
