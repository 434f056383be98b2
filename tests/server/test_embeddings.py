"""POST {base}/embeddings of the reference server (reference_server/surfaces/embeddings.py)."""

from __future__ import annotations

import array
import base64
import math

import pytest

from gateway_spec import Profile, load_profile
from reference_server import ServerConfig, create_app
from reference_server.mock.tokenizer import count_tokens

MODEL = "text-embedding-3-small"


def make_client(profile: Profile | str = "openai", **kwargs):
    profile = load_profile(profile) if isinstance(profile, str) else profile
    app = create_app(ServerConfig(profile=profile, **kwargs))
    return app.test_client(), {"Authorization": f"Bearer {profile.test_key}"}


@pytest.fixture
def embed():
    client, headers = make_client()

    def _post(body, **kw):
        return client.post("/v1/embeddings", json={"model": MODEL, **body}, headers=headers, **kw)

    return _post


def norm(vector) -> float:
    return math.sqrt(sum(v * v for v in vector))


def decode(b64: str) -> list[float]:
    """What openai-python does (lib/_parsing/_embeddings.py without numpy)."""
    return array.array("f", base64.b64decode(b64)).tolist()


def assert_envelope(resp, status, param=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if param:
        assert err["param"] == param
    return err


def test_single_string_gives_one_unit_vector_of_model_dimensions(embed):
    resp = embed({"input": "hello world"})
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["object"] == "list" and body["model"] == MODEL
    [item] = body["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    assert len(item["embedding"]) == 1536
    assert norm(item["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert body["usage"] == {"prompt_tokens": count_tokens("hello world"), "total_tokens": count_tokens("hello world")}


def test_same_input_same_vector_regardless_of_batch_position(embed):
    alone = embed({"input": "b"}).get_json()["data"][0]["embedding"]
    batch = embed({"input": ["a", "b", "c"]}).get_json()["data"]
    assert [d["index"] for d in batch] == [0, 1, 2]
    assert batch[1]["embedding"] == alone
    assert batch[0]["embedding"] != alone


def test_token_array_and_array_of_token_arrays(embed):
    one = embed({"input": [1, 2, 3]}).get_json()
    assert len(one["data"]) == 1 and one["usage"]["prompt_tokens"] == 3
    many = embed({"input": [[1, 2], [3], [1, 2]]}).get_json()
    assert len(many["data"]) == 3 and many["usage"]["prompt_tokens"] == 5
    assert many["data"][0]["embedding"] == many["data"][2]["embedding"]
    assert many["data"][0]["embedding"] != one["data"][0]["embedding"]


def test_base64_is_little_endian_float32_of_the_float_vector(embed):
    floats = embed({"input": ["x", "y"], "encoding_format": "float"}).get_json()["data"]
    packed = embed({"input": ["x", "y"], "encoding_format": "base64"}).get_json()["data"]
    for f, p in zip(floats, packed, strict=True):
        assert isinstance(p["embedding"], str)
        assert decode(p["embedding"]) == f["embedding"]  # exact: values are float32 in both encodings


def test_dimensions_truncates_and_renormalises(embed):
    full = embed({"input": "q"}).get_json()["data"][0]["embedding"]
    short = embed({"input": "q", "dimensions": 8}).get_json()["data"][0]["embedding"]
    assert len(short) == 8
    assert norm(short) == pytest.approx(1.0, abs=1e-5)
    scale = norm(full[:8])
    assert short == pytest.approx([v / scale for v in full[:8]], rel=1e-5)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": [[]]}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [1.5]}, "input"),
        ({"input": {"text": "a"}}, "input"),
        ({}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": 5000}, "dimensions"),
        ({"input": "a", "dimensions": "8"}, "dimensions"),
    ],
)
def test_invalid_requests_answer_400_envelope_with_param(embed, body, param):
    assert_envelope(embed(body), 400, param)


def test_2048_inputs_are_accepted(embed):
    resp = embed({"input": [[1]] * 2048, "dimensions": 4})
    assert resp.status_code == 200 and len(resp.get_json()["data"]) == 2048


def test_unknown_fields_are_ignored(embed):
    assert embed({"input": "a", "user": "u1", "extra_field": True}).status_code == 200


def test_missing_and_unknown_model(embed):
    client, headers = make_client()
    assert_envelope(client.post("/v1/embeddings", json={"input": "a"}, headers=headers), 400, "model")
    err = assert_envelope(embed({"model": "no-such-embedder", "input": "a"}),
                          load_profile("openai").get("models.unknown_status"))
    assert err["code"] == "model_not_found"


def test_chat_model_is_not_an_embedding_model(embed):
    assert embed({"model": "gpt-4o-mini", "input": "a"}).status_code == 404


def test_not_json_body(embed):
    client, headers = make_client()
    resp = client.post("/v1/embeddings", data="nope", headers={**headers, "Content-Type": "application/json"})
    assert_envelope(resp, 400)


def test_404_envelope_when_profile_does_not_claim_embeddings():
    client, headers = make_client("unit23")
    resp = client.post("/v1/embeddings", json={"model": "x", "input": "a"}, headers=headers)
    assert_envelope(resp, 404)


def test_embeddings_call_admit_for_allowlists():
    base = load_profile("openai")
    profile = Profile(name="t", raw={**base.raw, "features": [*base.raw["features"], "model-allowlist"]})
    client, headers = make_client(profile, keys={"sk-only-chat": {"allowed_models": ["gpt-4o-mini"]}})
    resp = client.post("/v1/embeddings", json={"model": MODEL, "input": "a"},
                       headers={"Authorization": "Bearer sk-only-chat"})
    assert_envelope(resp, 403)
