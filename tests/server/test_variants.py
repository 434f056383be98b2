"""Variants: valid alternatives the contract allows. Each must change the wire and stay valid."""

from __future__ import annotations

import json

import pytest

from reference_server.faults.variants import VARIANTS
from tests.server.conftest import auth_headers, chat_body, make_client, sse_data, stream_chunks


def _stream(variant, **extra):
    client = make_client("openai", variants=[variant])
    return client.post("/v1/chat/completions", headers=auth_headers(client),
                       json=chat_body(stream=True, stream_options={"include_usage": True}, **extra))


def _healthy_content():
    client = make_client("openai")
    chunks = stream_chunks(client.post("/v1/chat/completions", headers=auth_headers(client),
                                       json=chat_body(stream=True)))
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


@pytest.mark.parametrize("variant", ["sse-no-space", "sse-crlf", "sse-cr", "sse-keepalive", "sse-charset-off",
                                     "extra-fields", "usage-omitted", "finish-separate"])
def test_stream_variants_stay_valid(variant):
    chunks = stream_chunks(_stream(variant))
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == _healthy_content()
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1


def test_framing_variants_change_the_bytes():
    assert _stream("sse-no-space").get_data().startswith(b"data:{")
    assert b"\r\n\r\n" in _stream("sse-crlf").get_data()
    raw = _stream("sse-cr").get_data()
    assert b"\r\r" in raw and b"\n" not in raw
    assert b": keep-alive\n\n" in _stream("sse-keepalive").get_data()
    assert _stream("sse-charset-off").headers["Content-Type"] == "text/event-stream"


def test_content_variants():
    chunks = stream_chunks(_stream("usage-omitted"))
    assert all("usage" not in c for c in chunks[:-1])
    chunks = stream_chunks(_stream("finish-separate"))
    assert chunks[-2]["choices"][0]["delta"] == {} and chunks[-2]["choices"][0]["finish_reason"] == "stop"
    chunks = stream_chunks(_stream("extra-fields"))
    assert chunks[0]["system_fingerprint"] and chunks[1]["choices"][0]["delta"]["reasoning_content"] is None


def test_extra_fields_in_json_and_header_case():
    client = make_client("openai", variants=["extra-fields", "header-case"])
    resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=chat_body())
    assert resp.get_json()["system_fingerprint"] == "fp_reference"
    names = [name for name, _ in resp.headers.items()]
    assert "X-REQUEST-ID" in names and "CONTENT-TYPE" in names


def test_keepalive_is_a_comment_not_an_event():
    events = sse_data(_stream("sse-keepalive").get_data())
    assert all(e == "[DONE]" or json.loads(e) for e in events)


def test_text_plain_served_reads_the_body_as_json():
    body = json.dumps(chat_body()).encode()
    for variants, status in (([], 415), (["text-plain-served"], 200)):
        client = make_client("openai", variants=variants)
        resp = client.post("/v1/chat/completions", data=body,
                           headers={**auth_headers(client), "Content-Type": "text/plain"})
        assert resp.status_code == status
    assert resp.get_json()["object"] == "chat.completion"


def test_owned_by_own_only_where_the_doc_names_no_owner():
    for profile, owner in (("openai", "openai"), ("unifiedai", "openrouter")):
        client = make_client(profile, variants=["owned-by-own"])
        listed = client.get(f"{client.application.config['SERVER'].profile.base_path}/models",
                            headers=auth_headers(client)).get_json()["data"]
        assert listed[0]["owned_by"] == owner


@pytest.mark.parametrize("variant", ["retry-after-fraction", "retry-after-date"])
def test_retry_after_forms_both_sdks_read(variant):
    import email.utils
    client = make_client("openai", variants=[variant], keys={"sk-one": {"requests_per_minute": 1}})
    client.get("/v1/models", headers={"Authorization": "Bearer sk-one"})
    value = client.get("/v1/models", headers={"Authorization": "Bearer sk-one"}).headers["Retry-After"]
    if variant == "retry-after-fraction":
        assert "." in value and 0 < float(value) <= 60
    else:
        assert email.utils.parsedate_to_datetime(value) is not None


def test_retry_after_ms_repeats_the_delay_in_milliseconds():
    client = make_client("openai", variants=["retry-after-ms"], keys={"sk-one": {"requests_per_minute": 1}})
    client.get("/v1/models", headers={"Authorization": "Bearer sk-one"})
    refused = client.get("/v1/models", headers={"Authorization": "Bearer sk-one"})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after-ms"]) == int(refused.headers["Retry-After"]) * 1000 > 0
    plain = make_client("openai", keys={"sk-one": {"requests_per_minute": 1}})
    plain.get("/v1/models", headers={"Authorization": "Bearer sk-one"})
    assert "retry-after-ms" not in plain.get("/v1/models", headers={"Authorization": "Bearer sk-one"}).headers


def test_unknown_model_400_only_where_the_doc_states_no_status():
    unknown = {"model": "conformance-unknown-model", "messages": [{"role": "user", "content": "hi"}]}
    for profile, status in (("wallet-gateway", 400), ("openai", 404), ("unifiedai", 400)):
        client = make_client(profile, variants=["unknown-model-400"])
        base = client.application.config["SERVER"].profile.base_path
        resp = client.post(f"{base}/chat/completions", json=unknown, headers=auth_headers(client))
        assert resp.status_code == status, profile
        assert resp.get_json()["error"]["code"] == "model_not_found"
    plain = make_client("wallet-gateway")
    resp = plain.post("/api/v1/chat/completions", json=unknown, headers=auth_headers(plain))
    assert resp.status_code == 404


def test_model_fields_renamed_keeps_the_values():
    plain, renamed = (make_client("unified-llm-gateway", variants=v) for v in ([], ["model-fields-renamed"]))
    (before,), (after,) = (c.get("/v1/models", headers=auth_headers(c)).get_json()["data"][:1] for c in (plain, renamed))
    assert "pricing" not in after and "context_length" not in after
    assert after["prompt_price_per_1m"] == before["pricing"]["input_per_1m"]
    assert after["completion_price_per_1m"] == before["pricing"]["output_per_1m"]
    assert after["context_window"] == before["context_length"]


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
           "required": ["city", "days"]}


def _answer(variant, body):
    client = make_client("openai", variants=[variant] if variant else [])
    resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=body)
    assert resp.status_code == 200
    return resp.get_json()


def test_tool_args_unparsed_only_without_strict():
    def args(variant, strict):
        tool = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER, "strict": strict}}
        return _answer(variant, chat_body("weather?", tools=[tool]))["choices"][0]["message"]["tool_calls"][0][
            "function"]["arguments"]
    broken = args("tool-args-unparsed", False)
    assert isinstance(broken, str)
    with pytest.raises(ValueError):
        json.loads(broken)
    assert json.loads(args("tool-args-unparsed", True)) == json.loads(args(None, True))


def test_schema_loose_drops_a_property_only_without_strict():
    def answer(variant, strict):
        fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER, "strict": strict}}
        return json.loads(_answer(variant, chat_body(response_format=fmt))["choices"][0]["message"]["content"])
    assert len(answer("schema-loose", False)) == len(answer(None, False)) - 1
    assert answer("schema-loose", True) == answer(None, True)


def test_cache_miss_never_reads_the_cache():
    messages = [{"role": "system", "content": "a long shared prefix " * 20}, {"role": "user", "content": "hi"}]
    body = {"model": "gpt-4o-mini", "messages": messages, "prompt_cache_key": "k"}

    def cached(variant):
        client = make_client("openai", variants=[variant] if variant else [])
        reads = [client.post("/v1/chat/completions", headers=auth_headers(client), json=body).get_json()["usage"]
                 ["prompt_tokens_details"]["cached_tokens"] for _ in range(2)]
        return reads
    assert cached(None)[0] == 0 and cached(None)[1] > 0
    assert cached("cache-miss") == [0, 0]


@pytest.mark.parametrize("field, sent, served", [("temperature", 2.5, 2.0), ("temperature", -1, 0.0),
                                                 ("top_p", 1.5, 1.0), ("n", 0, 1), ("n", 129, 128)])
def test_params_clamped_serves_the_bound(field, sent, served):
    body = chat_body(**{field: sent})
    plain, clamped = (make_client("openai", variants=v) for v in ([], ["params-clamped"]))
    assert plain.post("/v1/chat/completions", headers=auth_headers(plain), json=body).status_code == 400
    resp = clamped.post("/v1/chat/completions", headers=auth_headers(clamped), json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    # served as if the bound had been sent: the same answer (n: that many choices)
    bound = clamped.post("/v1/chat/completions", headers=auth_headers(clamped), json=chat_body(**{field: served}))
    assert resp.get_json()["choices"] == bound.get_json()["choices"]
    assert len(resp.get_json()["choices"]) == (served if field == "n" else 1)


@pytest.mark.parametrize("body", [chat_body(presence_penalty=2.5), chat_body(top_logprobs=21, logprobs=True),
                                  chat_body(temperature="hot"), chat_body(max_tokens=0),
                                  chat_body(stop=["a", "b", "c", "d", "e"])])
def test_params_clamped_clamps_nothing_else(body):
    client = make_client("openai", variants=["params-clamped"])
    assert client.post("/v1/chat/completions", headers=auth_headers(client), json=body).status_code == 400


def test_body_limit_after_parse_measures_what_is_left():
    padded = chat_body(conformance_padding="x" * 1000)
    oversize = chat_body("x" * 1000)
    plain, after = (make_client("openai", variants=v, max_body_bytes=512) for v in ([], ["body-limit-after-parse"]))
    assert plain.post("/v1/chat/completions", headers=auth_headers(plain), json=padded).status_code == 413
    assert after.post("/v1/chat/completions", headers=auth_headers(after), json=padded).status_code == 200
    for client in (plain, after):  # bulk in the messages is measured either way: 413 with the envelope
        resp = client.post("/v1/chat/completions", headers=auth_headers(client), json=oversize)
        assert resp.status_code == 413 and resp.get_json()["error"]["type"] == "invalid_request_error"
    # past the read cap the body is refused before it is read; other routes keep the limit before reading
    huge = chat_body(conformance_padding="x" * (512 * 16 + 1))
    assert after.post("/v1/chat/completions", headers=auth_headers(after), json=huge).status_code == 413
    big_input = {"model": "text-embedding-3-small", "input": "x" * 1000}
    assert after.post("/v1/embeddings", headers=auth_headers(after), json=big_input).status_code == 413


def test_every_catalogued_variant_is_tested_here():
    assert set(VARIANTS) == {"sse-no-space", "sse-crlf", "sse-cr", "sse-keepalive", "sse-charset-off",
                             "extra-fields", "usage-omitted", "header-case", "finish-separate", "text-plain-served",
                             "owned-by-own", "retry-after-fraction", "retry-after-date", "retry-after-ms", "unknown-model-400",
                             "model-fields-renamed", "cache-miss", "tool-args-unparsed", "schema-loose",
                             "params-clamped", "body-limit-after-parse"}


def test_unknown_variant_is_a_startup_error():
    with pytest.raises(ValueError, match="nope"):
        make_client("openai", variants=["nope"])
