"""POST {base}/embeddings: response shape, the four input shapes, base64 float32, dimensions, usage and the 400s
(spec/requirements/embeddings.yaml). About a dozen small requests, each sent once per run."""

from __future__ import annotations

import base64
import math
import struct

import pytest

from conformance.exchanges import Spec, exchange
from conformance.expect import StopCase
from conformance.sse import check_content_type
from conformance.suite.fixtures_rest import EMBEDDING_TEXTS, embedding_spec, envelope_problems
from gateway_spec.openapi import schema_validator

TEXTS = EMBEDDING_TEXTS  # shared with the AUTH-005 check, which sends the same batch
TOKENS = [791, 4062, 14198]
TOKEN_ARRAYS = [[791, 4062], [14198]]
DIMENSIONS = 8
# Equal vectors: float JSON and float32 bytes agree to float32 precision; reruns of a real model may jitter.
SAME_COSINE = 0.999


# Every body the checks below send (``embed``): declared, so they go out with the plan.
BODIES = ({"input": TEXTS}, {"input": TEXTS, "encoding_format": "base64"}, {"input": TEXTS[1]}, {"input": TOKENS},
          {"input": TOKEN_ARRAYS}, {"input": TEXTS[:1], "dimensions": DIMENSIONS}, {"input": []}, {"input": ""}, {},
          {"input": TEXTS[0], "encoding_format": "hex"}, {"input": TEXTS, "conformance_unknown_field": True})


@exchange(hint=True)
def embedding_requests(plan):
    if not plan.embedding_model:
        return None
    return [embedding_spec(plan, **fields) for fields in BODIES] + [
        Spec.post("/embeddings", {"model": "conformance-no-such-embedding-model", "input": TEXTS[0]})]


@pytest.fixture
def embed(embedding_requests, rest, models, expect):
    """``embed(**fields)``: POST /embeddings for the run's embedding model with these fields."""
    def send(req_id: str, **fields):
        if not models.embedding:
            expect.untestable(req_id, "no embedding model: pass --gw-embedding-model or set models.default_embedding")
            raise StopCase(req_id)
        return rest.post("/embeddings", {"model": models.embedding, **fields})
    return send


def _vectors(exchange) -> list:
    """The embeddings of a 200 response, ordered by index (what SDKs do), or [] when absent."""
    body = exchange.json()
    data = body.get("data") if isinstance(body, dict) else None
    if exchange.status != 200 or not isinstance(data, list):
        return []
    items = [d for d in data if isinstance(d, dict)]
    return [d.get("embedding") for d in sorted(items, key=lambda d: d.get("index") if isinstance(
        d.get("index"), int) else 0)]


def _is_float_vector(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _decode(text) -> list[float] | None:
    """A base64 string of little-endian float32 values as floats, or None when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (TypeError, ValueError):
        return None
    return list(struct.unpack(f"<{len(raw) // 4}f", raw)) if raw and len(raw) % 4 == 0 else None


def _cosine(a: list, b: list) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _served(expect, req_id: str, exchange, count: int) -> bool:
    """``req_id``: HTTP 200 with ``count`` data items."""
    body = exchange.json()
    data = body.get("data") if isinstance(body, dict) else None
    return expect(req_id, exchange.status == 200 and isinstance(data, list) and len(data) == count,
                  expected=f"HTTP 200 with {count} embedding(s)",
                  received=f"HTTP {exchange.status}: {exchange.response.text[:300]}")


SCHEMA_FIELDS = {"object": "EMBEDDINGS-002", "index": "EMBEDDINGS-002", "embedding": "EMBEDDINGS-017"}


def _schema_requirement(path: list) -> str:
    """The requirement a CreateEmbeddingResponse schema error belongs to, from where it points."""
    if path[:1] == ["usage"]:
        return "EMBEDDINGS-010"
    if path[:1] == ["data"] and len(path) >= 2:
        return SCHEMA_FIELDS.get(str(path[2]) if len(path) > 2 else "", "EMBEDDINGS-002")
    return "EMBEDDINGS-001"


@pytest.mark.requirement("EMBEDDINGS-001", "EMBEDDINGS-002", "EMBEDDINGS-010", "EMBEDDINGS-017", "EMBEDDINGS-020")
def test_response_shape(embed, expect):
    exchange = embed("EMBEDDINGS-001", input=TEXTS)
    body = exchange.json()
    expect.fatal("EMBEDDINGS-001", exchange.status == 200 and isinstance(body, dict), expected="HTTP 200 JSON object",
                 received=f"HTTP {exchange.status}: {exchange.response.text[:300]}")
    finding = check_content_type(exchange.headers.get("content-type"), "application/json")
    expect("EMBEDDINGS-020", finding is None, expected="Content-Type application/json",
           received=exchange.headers.get("content-type"))
    expect("EMBEDDINGS-001", body.get("object") == "list" and isinstance(body.get("data"), list)
           and isinstance(body.get("model"), str) and isinstance(body.get("usage"), dict),
           expected='object "list", data array, model string, usage object', received=body)
    for err in schema_validator("CreateEmbeddingResponse").iter_errors(body):
        where = list(err.absolute_path)
        expect(_schema_requirement(where), False, expected="CreateEmbeddingResponse (spec/openapi.yaml)",
               received=f"{'/'.join(map(str, where)) or '(root)'}: {err.message[:300]}")
    for i, item in enumerate(d for d in body.get("data") or [] if isinstance(d, dict)):
        expect("EMBEDDINGS-002", item.get("object") == "embedding" and isinstance(item.get("index"), int)
               and "embedding" in item, expected='object "embedding", integer index, embedding',
               received={k: v for k, v in item.items() if k != "embedding"}, note=f"data[{i}]")
        expect("EMBEDDINGS-017", _is_float_vector(item.get("embedding")), expected="an array of numbers",
               received=str(item.get("embedding"))[:200], note=f"data[{i}], no encoding_format")


@pytest.mark.requirement("EMBEDDINGS-003", "EMBEDDINGS-006", "EMBEDDINGS-016")
def test_array_of_strings_gives_one_embedding_each_in_order(embed, expect, models, profile):
    exchange = embed("EMBEDDINGS-006", input=TEXTS)
    if not _served(expect, "EMBEDDINGS-006", exchange, len(TEXTS)):
        return
    data = [d for d in exchange.json()["data"] if isinstance(d, dict)]
    indexes = [d.get("index") for d in data]
    expect("EMBEDDINGS-003", sorted(indexes, key=str) == list(range(len(TEXTS))),
           expected=f"indexes {list(range(len(TEXTS)))}", received=indexes)
    vectors = _vectors(exchange)
    if not all(_is_float_vector(v) for v in vectors):
        return  # not float arrays: EMBEDDINGS-017 reports it
    lengths = [len(v) for v in vectors]
    documented = next((m.get("dimensions") for m in profile.get("models.embedding") or []
                       if models.embedding in (m["id"], *(m.get("aliases") or []))), None)
    expect("EMBEDDINGS-016", len(set(lengths)) == 1 and (documented is None or lengths[0] == documented),
           expected=f"equal lengths{f' of {documented}' if documented else ''}", received=lengths)


@pytest.mark.requirement("EMBEDDINGS-004")
def test_base64_decodes_to_the_float_vector(embed, expect):
    floats = _vectors(embed("EMBEDDINGS-004", input=TEXTS))
    exchange = embed("EMBEDDINGS-004", input=TEXTS, encoding_format="base64")
    encoded = _vectors(exchange)
    if not floats or len(encoded) != len(floats):
        expect.untestable("EMBEDDINGS-004", f"no float/base64 pair to compare (base64 request: HTTP "
                          f"{exchange.status}: {exchange.response.text[:200]})")
        return
    for i, (text, vector) in enumerate(zip(encoded, floats, strict=False)):
        decoded = _decode(text)
        if isinstance(vector, str):  # floats sent as base64 too: EMBEDDINGS-017's; compare what they decode to
            vector = _decode(vector) or []
        same = decoded is not None and len(decoded) == len(vector) and all(
            math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(decoded, vector, strict=True))
        expect("EMBEDDINGS-004", same, expected=f"little-endian float32 of {vector[:4]}...",
               received=(decoded[:4] if decoded else str(text)[:80]), note=f"data[{i}]")


@pytest.mark.requirement("EMBEDDINGS-005", "EMBEDDINGS-021")
def test_single_string_and_same_vector(embed, expect):
    single = embed("EMBEDDINGS-005", input=TEXTS[1])
    if not _served(expect, "EMBEDDINGS-005", single, 1):
        return
    batch = _vectors(embed("EMBEDDINGS-005", input=TEXTS))
    mine = _vectors(single)[0]
    # Unequal lengths are EMBEDDINGS-016's; only vectors that can be equal are compared.
    if len(batch) == len(TEXTS) and _is_float_vector(mine) and _is_float_vector(batch[1]) \
            and len(mine) == len(batch[1]):
        cosine = _cosine(mine, batch[1])
        expect("EMBEDDINGS-021", cosine >= SAME_COSINE, expected=f"cosine >= {SAME_COSINE} (same input, same "
               "vector, alone or second in a batch)", received=f"cosine {cosine:.6f}")


@pytest.mark.requirement("EMBEDDINGS-007")
def test_token_array_is_accepted(embed, expect):
    _served(expect, "EMBEDDINGS-007", embed("EMBEDDINGS-007", input=TOKENS), 1)


@pytest.mark.requirement("EMBEDDINGS-008")
def test_token_arrays_give_one_embedding_each(embed, expect):
    _served(expect, "EMBEDDINGS-008", embed("EMBEDDINGS-008", input=TOKEN_ARRAYS), len(TOKEN_ARRAYS))


@pytest.mark.requirement("EMBEDDINGS-009")
def test_dimensions_shortens_the_vectors(embed, expect):
    # One input in an array: string inputs are -005's, batching -006's.
    exchange = embed("EMBEDDINGS-009", input=TEXTS[:1], dimensions=DIMENSIONS)
    if not _served(expect, "EMBEDDINGS-009", exchange, 1):
        return
    # Counted after decoding: floats sent as base64 are EMBEDDINGS-017's.
    vectors = [_decode(v) if isinstance(v, str) else v for v in _vectors(exchange)]
    lengths = [len(v) if isinstance(v, list) else None for v in vectors]
    expect("EMBEDDINGS-009", all(n == DIMENSIONS for n in lengths), expected=f"{DIMENSIONS} numbers each",
           received=lengths)


@pytest.mark.requirement("EMBEDDINGS-010", "EMBEDDINGS-019")
def test_usage_counts_prompt_tokens(embed, expect):
    body = embed("EMBEDDINGS-010", input=TEXTS).json()
    usage = body.get("usage") if isinstance(body, dict) else None
    counts = [usage.get(k) for k in ("prompt_tokens", "total_tokens")] if isinstance(usage, dict) else [None, None]
    ok = all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
    expect("EMBEDDINGS-010", ok, expected="usage.prompt_tokens and total_tokens: integers >= 0", received=usage)
    if ok:
        expect("EMBEDDINGS-019", counts[0] == counts[1], expected="total_tokens == prompt_tokens", received=usage)


def _refused(expect, req_id: str, exchange, status: int | tuple[int, ...] = 400) -> None:
    statuses = (status,) if isinstance(status, int) else tuple(status)
    problems = ([] if exchange.status in statuses else [f"HTTP {exchange.status}"]) + \
        envelope_problems(exchange.response)
    expect(req_id, not problems, expected=f"HTTP {' or '.join(map(str, statuses))} with the error envelope",
           received="; ".join(problems) + f" | {exchange.response.text[:300]}")


@pytest.mark.requirement("EMBEDDINGS-011")
def test_empty_array_is_400(embed, expect):
    _refused(expect, "EMBEDDINGS-011", embed("EMBEDDINGS-011", input=[]))


@pytest.mark.requirement("EMBEDDINGS-012")
def test_empty_string_is_400(embed, expect):
    _refused(expect, "EMBEDDINGS-012", embed("EMBEDDINGS-012", input=""))


@pytest.mark.requirement("EMBEDDINGS-015")
def test_missing_input_is_400(embed, expect):
    _refused(expect, "EMBEDDINGS-015", embed("EMBEDDINGS-015"))


@pytest.mark.requirement("EMBEDDINGS-018")
def test_unsupported_encoding_is_400(embed, expect):
    _refused(expect, "EMBEDDINGS-018", embed("EMBEDDINGS-018", input=TEXTS[0], encoding_format="hex"))


@pytest.mark.requirement("EMBEDDINGS-014")
def test_unknown_model_gets_the_unknown_status(embedding_requests, rest, expect, profile):
    exchange = rest.post("/embeddings", {"model": "conformance-no-such-embedding-model", "input": TEXTS[0]})
    _refused(expect, "EMBEDDINGS-014", exchange, profile.unknown_model_statuses())


@pytest.mark.requirement("EMBEDDINGS-013")
def test_unknown_field_is_ignored(embed, expect):
    exchange = embed("EMBEDDINGS-013", input=TEXTS, conformance_unknown_field=True)
    expect("EMBEDDINGS-013", exchange.status == 200, expected="HTTP 200 (unknown field ignored)",
           received=f"HTTP {exchange.status}: {exchange.response.text[:300]}")
