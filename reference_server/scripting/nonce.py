"""The nonce channel: ``[[mock:<nonce>]]`` anywhere in a request's message content names the script to follow.

Message content is the one part of a request every gateway forwards untouched (headers and unknown body fields get
dropped), so sandwich mode puts the marker there. Also the prompt text rules match on (``prompt_contains``,
``prompt_regex``), gathered from every surface's request shape.
"""

from __future__ import annotations

import re
from typing import Any

NONCE_VALUE = re.compile(r"[A-Za-z0-9_-]{6,64}")
NONCE_MARKER = re.compile(r"\[\[mock:([A-Za-z0-9_-]{6,64})\]\]")
MARKER_BYTES = b"[[mock:"


def marker(nonce: str) -> str:
    """The text to put into a message so that rules matching ``nonce`` apply to the request."""
    if not NONCE_VALUE.fullmatch(nonce):
        raise ValueError(f"invalid nonce {nonce!r}: 6-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return f"[[mock:{nonce}]]"


def _content_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return []


def prompt_texts(body: Any) -> list[str]:
    """Every piece of prompt text of a chat, embeddings or Ollama request body (messages, input, prompt, system)."""
    if not isinstance(body, dict):
        return []
    texts: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                texts.extend(_content_texts(message.get("content")))
    for name in ("input", "prompt", "system"):
        value = body.get(name)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(v for v in value if isinstance(v, str))
    return texts


def find_nonce(texts: list[str]) -> str | None:
    """The first nonce marked in ``texts`` (None when there is none)."""
    for text in texts:
        found = NONCE_MARKER.search(text)
        if found:
            return found.group(1)
    return None
