"""Deterministic log probabilities for generated tokens: the right shape, stable values, ``bytes`` = UTF-8."""

from __future__ import annotations

import hashlib

from reference_server.mock.providers import VOCABULARY


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def token_logprob(token: str, key: str, position: int, top_k: int) -> dict:
    """A ``ChatCompletionTokenLogprob`` for ``token``: its own entry leads ``top_logprobs`` (k entries), the
    alternatives have strictly lower log probabilities."""
    own = -round(_unit(key, position) * 2.0, 6)
    top = [{"token": token, "logprob": own, "bytes": list(token.encode("utf-8"))}]
    for rank in range(1, top_k):
        alternative = VOCABULARY[int(_unit(key, position, rank) * len(VOCABULARY))]
        if alternative == token:
            alternative += "s"
        top.append({"token": alternative, "logprob": round(own - rank - _unit(key, position, rank, 1), 6),
                    "bytes": list(alternative.encode("utf-8"))})
    return {"token": token, "logprob": own, "bytes": list(token.encode("utf-8")), "top_logprobs": top[:top_k]}


def content_logprobs(tokens: list[str], key: str, top_k: int, start: int = 0) -> list[dict]:
    """Logprob items for consecutive tokens starting at ``start`` (so streamed slices match the full list)."""
    return [token_logprob(t, key, start + i, top_k) for i, t in enumerate(tokens)]
