"""Token usage of a chat completion, from the one rule in ``tokenizer.py``; identical streamed and not.

Prompt-cache fields (profiles claiming ``prompt-cache-usage``) follow the profile's doc: a request marked cacheable
(a ``prompt_cache_key``, or ``cache_control`` on a message or a content part) to a model the profile's
``usage.cache_models`` patterns name (all models when null) caches the prompt tokens of every message before the last
user message. The first request of such a prefix writes the cache (a miss: ``cached_tokens`` 0, UnifiedAI's
``cache_creation_input_tokens`` = the prefix), later ones read it (``cached_tokens`` / ``cache_read_input_tokens`` =
the prefix), as UnifiedAI documents ("First Request: ... creates cache", "Second Request: Cache hit!"). The prefixes
seen live in the app's :class:`PromptCache` (``Server.prompt_cache``; ``POST /_mock/reset`` forgets them);
surfaces/chat.py does not keep the answers of cacheable requests in the answer cache, whose replay would repeat the
first request's miss.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import TYPE_CHECKING, Any

from reference_server.context import request_context, server_config
from reference_server.faults.seams import USAGE
from reference_server.mock import scripted
from reference_server.mock.tokenizer import count_tokens, message_text

if TYPE_CHECKING:
    from reference_server.config import ServerConfig
    from reference_server.mock.providers import Generation
    from reference_server.surfaces.chat_request import ChatRequest


class PromptCache:
    """Prompt prefixes already written to the (emulated) provider cache."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def read_or_write(self, key: str) -> bool:
        """True when the prefix was cached before (a hit); else remember it (the miss that writes the cache)."""
        with self._lock:
            if key in self._seen:
                return True
            self._seen.add(key)
            return False

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


def _has_cache_marker(req: ChatRequest) -> bool:
    if req.body.get("prompt_cache_key"):
        return True
    for message in req.messages:
        if "cache_control" in message:
            return True
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and "cache_control" in p for p in content):
            return True
    return False


def is_cacheable(req: ChatRequest, config: ServerConfig | None = None) -> bool:
    """The request asks for caching, on a model whose provider caches (profile ``usage.cache_models``).

    Worked out once per request (kept on the request: its usage and the answer cache both ask)."""
    cacheable = req.cacheable
    if cacheable is None:
        profile = (config or server_config()).profile
        if not profile.claims("prompt-cache-usage") or not _has_cache_marker(req):
            cacheable = False
        else:
            patterns = profile.get("usage.cache_models")
            cacheable = patterns is None or any(re.search(p, req.model.id) for p in patterns)
        req.cacheable = cacheable
    return cacheable


def _prefix(req: ChatRequest) -> list[dict]:
    last_user = max((i for i, m in enumerate(req.messages) if m.get("role") == "user"), default=0)
    return req.messages[:last_user]


def cached_tokens(req: ChatRequest, config: ServerConfig | None = None) -> int:
    """Prompt tokens of the messages before the last user message, when the request asks for caching."""
    if not is_cacheable(req, config):
        return 0
    return sum(1 + count_tokens(message_text(m)) for m in _prefix(req))


def _cache_hit(req: ChatRequest) -> bool:
    """Whether this request reads the cache (True) or writes it (False: the first request of its prefix)."""
    prefix = json.dumps([req.model.id, _prefix(req)], sort_keys=True, default=str)
    return request_context().server.prompt_cache.read_or_write(hashlib.sha256(prefix.encode()).hexdigest())


def build_usage(req: ChatRequest, generations: list[Generation], *, streamed: bool = False,
                config: ServerConfig | None = None) -> dict[str, Any]:
    """The ``usage`` object for all choices of the request, through the ``USAGE`` seam."""
    config = config or server_config()
    profile = config.profile
    prompt = req.prompt_tokens
    completion = reasoning = 0
    for gen in generations:
        completion += gen.completion_tokens
        if gen.reasoning is not None:
            reasoning += gen.reasoning_tokens
    cached = cached_tokens(req, config)
    created = 0
    # variant cache-miss: a cache that never hits (best effort: USAGE-016 is a SHOULD)
    if cached and (config.variant("cache-miss") or not _cache_hit(req)):  # the first request of this prefix writes the cache
        created, cached = cached, 0
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    usage["completion_tokens_details"] = {"reasoning_tokens": reasoning,
                                          "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}
    if "cache_read_input_tokens" in (profile.get("usage.cache_fields") or []):
        usage["cache_creation_input_tokens"] = created
        usage["cache_read_input_tokens"] = cached
    # A matched rule's usage numbers win (docs/scripts.md); the faults' USAGE seam acts on the server's own.
    return scripted.usage_override(USAGE(config, usage, req, generations, streamed))
