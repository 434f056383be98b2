"""The deterministic embedding model: float32 unit vectors derived from a hash of (model, input), OpenAI's
``dimensions`` shortening, and the little-endian float32 base64 encoding the SDKs decode. Shared by the OpenAI
embeddings surface and Ollama's native embed routes."""

from __future__ import annotations

import array
import base64
import hashlib
import json
import math
import sys


def unit_vector(model_id: str, item: str | list[int], dimensions: int, salt: str = "") -> list[float]:
    """The deterministic float32 unit vector of one input (a text or a token array) for ``model_id``."""
    key = json.dumps([model_id, item, salt], separators=(",", ":")).encode()
    raw = array.array("I", hashlib.shake_256(key).digest(4 * dimensions))
    centred = [(v / 4294967295.0) * 2.0 - 1.0 for v in raw]
    return normalise(centred)


def normalise(values: list[float]) -> list[float]:
    """Scale to length 1, then round to float32 (what the base64 encoding carries)."""
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array.array("f", [v / norm for v in values]).tolist()


def shorten(vector: list[float], dimensions: int) -> list[float]:
    """OpenAI's ``dimensions``: keep the first k numbers and renormalise."""
    return normalise(vector[:dimensions])


def encode_base64(vector: list[float], big_endian: bool = False) -> str:
    """Little-endian float32 bytes, base64: exactly what openai-python and openai-node decode."""
    packed = array.array("f", vector)
    if (sys.byteorder == "little") == big_endian:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(text: str) -> list[float]:
    """The numbers of a little-endian float32 base64 embedding (``encode_base64``'s inverse)."""
    packed = array.array("f", base64.b64decode(text))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()
