"""Token usage of a chat completion, from the one rule in ``tokenizer.py``; identical streamed and not.

Prompt-cache fields (profiles claiming ``prompt-cache-usage``) follow the profile's doc: a request marked cacheable
(a ``prompt_cache_key``, or ``cache_control`` on a message or a content part) to a model the profile's
``usage.cache_models`` patterns name (all models when null) caches the prompt tokens of every message before the last
user message. The first request of such a prefix writes the cache (a miss: ``cached_tokens`` 0, UnifiedAI's
``cache_creation_input_tokens`` = the prefix), later ones read it (``cached_tokens`` / ``cache_read_input_tokens`` =
the prefix), as UnifiedAI documents ("First Request: ... creates cache", "Second Request: Cache hit!"). The prefixes
seen live in ``app.extensions["prompt_cache"]`` (``POST /_mock/reset`` forgets them); chat.py does not keep the
answers of cacheable requests in the answer cache, whose replay would repeat the first request's miss.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

from flask import current_app

from reference_server import faults
from reference_server.chat_request import ChatRequest
from reference_server.context import server_config
from reference_server.providers import Generation
from reference_server.tokenizer import count_prompt_tokens, count_tokens, message_text

F = faults.declare
FAULT_NO_USAGE = F("USAGE-001", "Non-streaming completions carry no usage.",
                   collateral=("USAGE-002", "USAGE-003", "USAGE-009", "USAGE-012", "USAGE-015"))
FAULT_FLOAT_COUNTS = F("USAGE-002", "Non-streamed usage counts are floats (12.0).", collateral=("CHAT-019",))
FAULT_ARITHMETIC = F("USAGE-003", "total_tokens is prompt_tokens + completion_tokens + 1.")
FAULT_INSIDE_CHOICES = F("USAGE-004", "A copy of usage sits inside choices[0] as well.")
FAULT_STREAM_DIFFERS = F("USAGE-009", "Streamed usage counts one completion token more than the non-streamed answer.")
FAULT_CACHED_OVER = F("USAGE-010", "cached_tokens exceeds prompt_tokens.")
FAULT_REASONING_OVER = F("USAGE-011", "reasoning_tokens exceeds completion_tokens.")
FAULT_PROMPT_ZERO = F("USAGE-012", "prompt_tokens is 0.")
FAULT_CACHE_MISSED = F("USAGE-016", "Requests marked cacheable report cached_tokens 0 (no cache hit, ever).")
FAULT_CACHE_FIELD_GONE = F("USAGE-018", "Requests marked cacheable get usage without the documented cache-read field.",
                           collateral=("USAGE-016",))
FAULT_COMPLETION_ZERO = F("USAGE-015", "completion_tokens is 0 even when content is not empty.")


def _fault(fault: faults.Fault) -> bool:
    return server_config().fault(fault)


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


def is_cacheable(req: ChatRequest) -> bool:
    """The request asks for caching, on a model whose provider caches (profile ``usage.cache_models``)."""
    profile = server_config().profile
    if not profile.claims("prompt-cache-usage") or not _has_cache_marker(req):
        return False
    patterns = profile.get("usage.cache_models")
    return patterns is None or any(re.search(p, req.model.id) for p in patterns)


def _prefix(req: ChatRequest) -> list[dict]:
    last_user = max((i for i, m in enumerate(req.messages) if m.get("role") == "user"), default=0)
    return req.messages[:last_user]


def cached_tokens(req: ChatRequest) -> int:
    """Prompt tokens of the messages before the last user message, when the request asks for caching."""
    if not is_cacheable(req):
        return 0
    return sum(1 + count_tokens(message_text(m)) for m in _prefix(req))


def _cache_hit(req: ChatRequest) -> bool:
    """Whether this request reads the cache (True) or writes it (False: the first request of its prefix)."""
    store = current_app.extensions.setdefault("prompt_cache", PromptCache())
    prefix = json.dumps([req.model.id, _prefix(req)], sort_keys=True, default=str)
    return store.read_or_write(hashlib.sha256(prefix.encode()).hexdigest())


def build_usage(req: ChatRequest, generations: list[Generation], *, streamed: bool = False) -> dict[str, Any]:
    """The ``usage`` object for all choices of the request."""
    profile = server_config().profile
    prompt = 0 if _fault(FAULT_PROMPT_ZERO) else count_prompt_tokens(req.messages, req.tools)
    completion = 0 if _fault(FAULT_COMPLETION_ZERO) else sum(g.completion_tokens for g in generations)
    if streamed and _fault(FAULT_STREAM_DIFFERS):
        completion += 1
    reasoning = sum(g.reasoning_tokens for g in generations)
    if _fault(FAULT_REASONING_OVER):
        reasoning = completion + 5
    cached = cached_tokens(req)
    created = 0
    if cached and not _cache_hit(req):  # the first request of this prefix writes the cache
        created, cached = cached, 0
    if cached and _fault(FAULT_CACHE_MISSED):  # asked only where a hit could be missed
        cached = 0
    if _fault(FAULT_CACHED_OVER):
        cached = prompt + 5
    total = prompt + completion + (1 if _fault(FAULT_ARITHMETIC) else 0)
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    if not streamed and _fault(FAULT_FLOAT_COUNTS):
        usage = {k: float(v) for k, v in usage.items()}
    usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    usage["completion_tokens_details"] = {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    if "cache_read_input_tokens" in (profile.get("usage.cache_fields") or []):
        usage["cache_creation_input_tokens"] = created
        usage["cache_read_input_tokens"] = cached
    if (cached or created) and _fault(FAULT_CACHE_FIELD_GONE):
        usage["prompt_tokens_details"].pop("cached_tokens")
        usage.pop("cache_read_input_tokens", None)
    return usage
