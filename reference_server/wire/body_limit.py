"""The ``body-limit-after-parse`` variant (faults/variants.py): a gateway that parses a chat body first, drops its
unknown top-level fields and enforces its body limit on what is left.

The correct server refuses a body over ``ServerConfig.max_body_bytes`` by its declared length before reading it
(``app.refuse_oversized_body``). Under this variant the chat route reads up to ``PARSE_FIRST_READ_FACTOR`` times
the limit (a gateway that parses first still caps what it reads), and ``surfaces/chat_request.read_json_body``
measures the parsed body here: bulk in the messages still gets 413, bulk in an unknown field does not.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import RequestEntityTooLarge

if TYPE_CHECKING:
    from reference_server.config import ServerConfig

VARIANT = "body-limit-after-parse"
PARSE_FIRST_READ_FACTOR = 16


def read_cap(config: ServerConfig) -> int | None:
    """The most a chat body may declare before it is read: None (the body limit itself, before reading) unless the
    variant measures it after parsing."""
    if config.variant(VARIANT) and config.max_body_bytes:
        return config.max_body_bytes * PARSE_FIRST_READ_FACTOR
    return None


def measured_after_parse(body: Any, limit: int, known: Collection[str]) -> Any:
    """The body without its top-level fields outside ``known``, or 413 when what is left, as compact JSON, is over
    ``limit``: what the gateway would forward is what it measures."""
    if isinstance(body, dict):
        body = {name: value for name, value in body.items() if name in known}
    if limit and len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()) > limit:
        raise RequestEntityTooLarge()
    return body
