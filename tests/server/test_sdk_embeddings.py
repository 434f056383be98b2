"""The official openai SDK against a live reference server: embeddings decoding and retry behaviour."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest
from werkzeug.serving import make_server

from reference_server import ServerConfig, create_app

MODEL = "text-embedding-3-small"


@pytest.fixture(scope="module")
def server():
    config = ServerConfig.for_profile("openai", keys={"sk-one-per-minute": {"requests_per_minute": 1}})
    httpd = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", config.profile.test_key
    httpd.shutdown()
    thread.join(5)


@pytest.fixture
def root(server):
    url, _ = server
    httpx.post(f"{url}/_mock/reset")
    httpx.delete(f"{url}/_mock/requests")
    return url


def sdk(server, **kwargs) -> openai.OpenAI:
    url, key = server
    return openai.OpenAI(base_url=f"{url}/v1", api_key=kwargs.pop("api_key", key), **kwargs)


def journal(root: str) -> list[dict]:
    return httpx.get(f"{root}/_mock/requests").json()["data"]


def test_default_base64_is_decoded_to_the_float_vectors(server, root):
    client = sdk(server)
    decoded = client.embeddings.create(model=MODEL, input=["hello", "world"])
    assert journal(root)[-1]["body"]["encoding_format"] == "base64"  # the SDK's default
    floats = client.embeddings.create(model=MODEL, input=["hello", "world"], encoding_format="float")
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    assert all(isinstance(v, float) for v in decoded.data[0].embedding)
    assert len(decoded.data[0].embedding) == 1536
    assert decoded.usage.prompt_tokens == decoded.usage.total_tokens == 2


def test_token_inputs_and_dimensions_through_the_sdk(server, root):
    result = sdk(server).embeddings.create(model=MODEL, input=[[1, 2, 3], [4]], dimensions=32)
    assert [len(d.embedding) for d in result.data] == [32, 32]
    assert result.usage.prompt_tokens == 4


def test_unknown_model_is_not_found_error(server, root):
    with pytest.raises(openai.NotFoundError) as info:
        sdk(server).embeddings.create(model="no-such-model", input="x")
    assert info.value.code == "model_not_found"


def test_sdk_retries_through_fail_times_then_succeeds(server, root):
    client = sdk(server, max_retries=2, default_headers={"X-Mock-Fail-Times": "2", "X-Mock-Retry-After-Ms": "10"})
    start = time.perf_counter()
    result = client.embeddings.create(model=MODEL, input="retry me")
    assert len(result.data) == 1
    assert time.perf_counter() - start < 2  # retry-after-ms 10 is honoured, not the 0.5 s+ backoff
    attempts = journal(root)
    assert [e["status"] for e in attempts] == [503, 503, 200]
    assert [e["headers"].get("X-Stainless-Retry-Count") for e in attempts] == ["0", "1", "2"]


def test_sdk_gives_up_after_max_retries(server, root):
    client = sdk(server, max_retries=1, default_headers={"X-Mock-Fail-Times": "5", "X-Mock-Retry-After-Ms": "10"})
    with pytest.raises(openai.InternalServerError) as info:
        client.embeddings.create(model=MODEL, input="never")
    assert info.value.status_code == 503
    assert len(journal(root)) == 2


def test_injected_429_surfaces_as_rate_limit_error_with_retry_after(server, root):
    client = sdk(server, max_retries=1, default_headers={"X-Mock-Fail-Times": "3", "X-Mock-Status": "429",
                                                         "X-Mock-Retry-After-Ms": "10"})
    with pytest.raises(openai.RateLimitError) as info:
        client.embeddings.create(model=MODEL, input="busy")
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.code == "rate_limit_exceeded"


def test_real_rate_limit_429_without_retries(server, root):
    client = sdk(server, api_key="sk-one-per-minute", max_retries=0)
    client.embeddings.create(model=MODEL, input="first")
    with pytest.raises(openai.RateLimitError) as info:
        client.embeddings.create(model=MODEL, input="second")
    headers = info.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining-requests"] == "0"
