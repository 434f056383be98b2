"""Token usage of a chat completion, from the one rule in ``tokenizer.py``; identical streamed and not.

Prompt-cache fields (profiles claiming ``prompt-cache-usage``) are deterministic: when the request carries a
``prompt_cache_key`` or a content part with ``cache_control``, the prompt tokens of every message before the last
user message count as cached (OpenAI ``prompt_tokens_details.cached_tokens``; UnifiedAI
``cache_read_input_tokens``, with ``cache_creation_input_tokens`` 0), since a stateless mock always "hits".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reference_server.context import server_config
from reference_server.faults.seams import USAGE
from reference_server.mock import scripted
from reference_server.mock.tokenizer import count_tokens, message_text

if TYPE_CHECKING:
    from reference_server.mock.providers import Generation
    from reference_server.surfaces.chat_request import ChatRequest

def _has_cache_marker(req: ChatRequest) -> bool:
    if req.body.get("prompt_cache_key"):
        return True
    for message in req.messages:
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and "cache_control" in p for p in content):
            return True
    return False


def cached_tokens(req: ChatRequest) -> int:
    """Prompt tokens of the messages before the last user message, when the request asks for caching."""
    if not _has_cache_marker(req):
        return 0
    last_user = max((i for i, m in enumerate(req.messages) if m.get("role") == "user"), default=0)
    return sum(1 + count_tokens(message_text(m)) for m in req.messages[:last_user])


def build_usage(req: ChatRequest, generations: list[Generation], *, streamed: bool = False) -> dict[str, Any]:
    """The ``usage`` object for all choices of the request, through the ``USAGE`` seam."""
    config = server_config()
    profile = config.profile
    prompt = req.prompt_tokens
    completion = sum(g.completion_tokens for g in generations)
    cached = cached_tokens(req) if profile.claims("prompt-cache-usage") else 0
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    usage["completion_tokens_details"] = {"reasoning_tokens": sum(g.reasoning_tokens for g in generations),
                                          "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}
    if "cache_read_input_tokens" in (profile.get("usage.cache_fields") or []):
        usage["cache_creation_input_tokens"] = 0
        usage["cache_read_input_tokens"] = cached
    # A matched rule's usage numbers win (docs/scripts.md); the faults' USAGE seam acts on the server's own.
    return scripted.usage_override(USAGE(config, usage, req, generations, streamed))
