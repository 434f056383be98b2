"""``compact_encoder`` (the C encoder made once) writes exactly what ``json.JSONEncoder.encode`` writes."""

import json
import random

import pytest

from reference_server.wire.json_text import compact_encoder
from tests.server.test_request_hashes import _value


@pytest.mark.parametrize("sort_keys", [True, False])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_compact_encoder_equals_json_encoder(sort_keys, ensure_ascii):
    fast = compact_encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=str)
    slow = json.JSONEncoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii, separators=(",", ":"), default=str).encode
    rnd = random.Random(7)
    for _ in range(500):
        value = _value(rnd)
        assert fast(value) == slow(value)
    for value in ("é\n", 1.5, float("inf"), None, [object], {"b": 1, "a": {2: 3}}):
        assert fast(value) == slow(value)


def test_compact_encoder_without_default_refuses_what_json_refuses():
    with pytest.raises(TypeError):
        compact_encoder(sort_keys=False, ensure_ascii=True)({"x": object()})
