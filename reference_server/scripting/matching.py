"""What a request shows the rules (:class:`RequestFacts`), and whether a rule's static conditions hold for it.

``nth`` and ``times`` are not static: they count requests, which the engine does in the shared state store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reference_server.scripting.nonce import find_nonce, prompt_texts
from reference_server.scripting.rules import Match

# Flask endpoint -> rule route (see rules.ROUTES).
ENDPOINT_ROUTES = {
    "chat.create_chat_completion": "chat",
    "embeddings.create_embeddings": "embeddings",
    "models.list_models": "models",
    "models.retrieve_model": "models",
    "ollama.chat": "ollama-chat",
    "ollama.generate": "ollama-generate",
    "ollama.embed": "ollama-embed",
    "ollama.embeddings": "ollama-embeddings",
}


@dataclass(frozen=True)
class RequestFacts:
    """The parts of one request rules look at; ``text`` is its prompt text joined by newlines."""

    route: str | None
    model: str | None
    text: str
    tools: bool
    nonce: str | None

    @classmethod
    def from_body(cls, route: str | None, body: Any) -> RequestFacts:
        texts = prompt_texts(body)
        model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        tools = isinstance(body, dict) and isinstance(body.get("tools"), list) and bool(body["tools"])
        return cls(route=route, model=model, text="\n".join(texts), tools=tools, nonce=find_nonce(texts))


def matches(match: Match, facts: RequestFacts) -> bool:
    """True when every condition of ``match`` except ``nth`` holds for the request."""
    if match.nonce is not None and match.nonce != facts.nonce:
        return False
    if match.route is not None and match.route != facts.route:
        return False
    if match.model is not None and (facts.model is None or match.model.lower() != facts.model.lower()):
        return False
    if match.prompt_contains is not None and match.prompt_contains not in facts.text:
        return False
    if match.prompt_regex is not None and not match.prompt_regex.search(facts.text):
        return False
    return match.tools is None or match.tools == facts.tools
