"""Fuzz mode: the engine's contract copy, fitting and mapping, and ``--gw-fuzz`` end to end with pytester."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance import fuzz
from gateway_spec import load_profile

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parents[1] / "spec" / "examples"

OPENAI_SERVED = {"createChatCompletion-positive", "createChatCompletion-negative", "listModels-positive",
                 "retrieveModel-positive", "createEmbedding-positive", "createEmbedding-negative"}


# -- engine -------------------------------------------------------------------------------------------------
def _request_validator(path: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(fuzz.fuzzing_contract()["paths"][path]["post"]["requestBody"]["content"]
                                ["application/json"]["schema"])


def test_positive_contract_closes_request_objects_and_keeps_valid_requests():
    check = _request_validator("/v1/chat/completions")
    valid = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2, "max_tokens": 5}
    assert check.is_valid(valid)  # properties of both allOf parts survive the merge
    assert not check.is_valid({**valid, "unknown": 1})
    assert not check.is_valid({**valid, "messages": [{"role": "user", "content": "hi", "extra": True}]})
    assert not check.is_valid({**valid, "messages": [{"role": "user", "content": "x"}] * 4})  # short arrays


def test_fuzzing_leaves_response_schemas_open():
    contract = fuzz.fuzzing_contract()
    assert "additionalProperties" not in contract["components"]["schemas"]["CreateChatCompletionResponse"]


def test_generation_is_reproducible_and_bounded():
    first = fuzz.generate.__wrapped__("createEmbedding", fuzz.POSITIVE, 4, 7)
    again = fuzz.generate.__wrapped__("createEmbedding", fuzz.POSITIVE, 4, 7)
    assert 0 < len(first) <= 4
    assert [c.body for c in first] == [c.body for c in again]


def test_positive_bodies_name_served_models_and_ask_for_short_answers():
    models = fuzz.FuzzModels.for_profile(load_profile("openai"))
    chat = fuzz.OPERATIONS["createChatCompletion"]
    body = fuzz.fitted_body(chat, {"model": "x", "messages": [], "max_tokens": 9999, "n": 100}, fuzz.POSITIVE,
                            models, stream=True)
    assert body == {"model": models.chat, "messages": [], "max_tokens": fuzz.MAX_TOKENS, "n": fuzz.MAX_CHOICES,
                    "stream": True}
    assert fuzz.fitted_body(chat, {"max_tokens": -3}, fuzz.POSITIVE, models)["max_tokens"] == 1


def test_negative_bodies_stay_invalid():
    models = fuzz.FuzzModels.for_profile(load_profile("openai"))
    chat = fuzz.OPERATIONS["createChatCompletion"]
    body = {"model": 5, "messages": "x", "n": 1000, "max_tokens": "many"}
    assert fuzz.fitted_body(chat, body, fuzz.NEGATIVE, models, stream=True) == body
    assert fuzz.fitted_body(chat, b"{not json", fuzz.NEGATIVE, models) == b"{not json"


def test_positive_embedding_bodies_are_what_models_accept():
    models = fuzz.FuzzModels.for_profile(load_profile("openai"))
    embed = fuzz.OPERATIONS["createEmbedding"]
    body = fuzz.fitted_body(embed, {"model": "x", "input": [[-5, 3]], "dimensions": 99999}, fuzz.POSITIVE, models)
    assert body == {"model": models.embedding, "input": [[5, 3]]}
    assert fuzz.fitted_body(embed, {"model": "x", "input": ""}, fuzz.POSITIVE, models)["input"] == "x"
    negative = {"model": "x", "input": [[-5]], "dimensions": 0}
    assert fuzz.fitted_body(embed, negative, fuzz.NEGATIVE, models) == negative


def test_ollama_bodies_cap_num_predict():
    models = fuzz.FuzzModels.for_profile(load_profile("ollama"))
    body = fuzz.fitted_body(fuzz.OPERATIONS["ollamaChat"], {"model": "x", "options": {"num_predict": -1}},
                            fuzz.POSITIVE, models)
    assert body == {"model": "llama3.2", "options": {"num_predict": fuzz.MAX_TOKENS}}


def test_profiles_serve_only_what_they_claim():
    openai, unifiedai = load_profile("openai"), load_profile("unifiedai")
    served = {name for name, op in fuzz.OPERATIONS.items() if fuzz.serves(openai, op) is None}
    assert served == {"createChatCompletion", "listModels", "retrieveModel", "createEmbedding"}
    assert fuzz.serves(unifiedai, fuzz.OPERATIONS["ollamaChat"]) is None
    assert "does not document /api/embed" in fuzz.serves(unifiedai, fuzz.OPERATIONS["ollamaEmbed"])


@pytest.mark.parametrize(("operation_id", "check", "status", "content_type", "requirement"), [
    ("createChatCompletion", "not_a_server_error", 500, "application/json", "ERRORS-015"),
    ("createChatCompletion", "response_schema_conformance", 400, "application/json", "ERRORS-001"),
    ("createChatCompletion", "response_schema_conformance", 503, "application/json", "ERRORS-019"),
    ("createChatCompletion", "content_type_conformance", 400, "text/plain", "ERRORS-003"),
    ("createChatCompletion", "status_code_conformance", 422, "application/json", "PARAMS-016"),
    ("createChatCompletion", "response_schema_conformance", 200, "application/json", "CHAT-019"),
    ("createChatCompletion", "response_schema_conformance", 200, "text/event-stream; charset=utf-8",
     "CHAT-STREAM-017"),
    ("createEmbedding", "content_type_conformance", 200, "text/html", "EMBEDDINGS-020"),
    ("ollamaChat", "response_schema_conformance", 404, "application/json", "OLLAMA-013"),
    ("ollamaChat", "ndjson_line_conformance", 200, "application/x-ndjson", "OLLAMA-007"),
    ("listModels", "status_code_conformance", 201, "application/json", "MODELS-001"),
])
def test_findings_map_to_requirements(operation_id, check, status, content_type, requirement):
    op = fuzz.OPERATIONS[operation_id]
    finding = fuzz.Finding(operation_id, fuzz.POSITIVE, check, status, content_type, "t", "d", "r")
    assert fuzz.requirement_for(op, finding) == requirement
    assert requirement in op.requirement_ids()


def test_every_mapped_requirement_is_registered():
    from gateway_spec import load_requirements

    registry = load_requirements()
    for op in fuzz.OPERATIONS.values():
        assert set(op.requirement_ids()) <= set(registry), op.operation_id


def _answered_by(status: int, body: Any, operation_id: str, mode: str) -> list[fuzz.Finding]:
    """Judge the first generated case of ``operation_id`` as answered by a fixed JSON response."""
    import httpx

    from conformance.client import GatewayClient

    profile = load_profile("openai")
    client = GatewayClient("http://fixed.test", api_key="k",
                           transport=httpx.MockTransport(lambda request: httpx.Response(status, json=body)))
    op = fuzz.OPERATIONS[operation_id]
    case = fuzz.generate(operation_id, mode, 3)[0]
    exchange = fuzz.send(client, op, case, mode, profile, fuzz.FuzzModels.for_profile(profile))
    return fuzz.judge(op, mode, exchange, reject_invalid=True)


def test_checks_pass_a_conforming_answer_and_catch_a_broken_one():
    completion = json.loads((EXAMPLES / "chat_completion_default.json").read_text())
    assert _answered_by(200, completion, "createChatCompletion", fuzz.POSITIVE) == []
    broken = _answered_by(500, {"detail": "boom"}, "createChatCompletion", fuzz.POSITIVE)
    assert {(f.check, f.status) for f in broken} == {("not_a_server_error", 500),
                                                     ("response_schema_conformance", 500)}


def test_reject_invalid_flags_an_accepted_negative_case():
    completion = json.loads((EXAMPLES / "chat_completion_default.json").read_text())
    found = _answered_by(200, completion, "createChatCompletion", fuzz.NEGATIVE)
    assert [f.check for f in found] == ["negative_data_rejection"]


# -- --gw-fuzz end to end --------------------------------------------------------------------------------------
@pytest.fixture
def run(pytester, monkeypatch):
    """``pytest --pyargs conformance.suite -k test_fuzz ...`` in process; returns (result, results.json)."""
    monkeypatch.delenv("CONFORMANCE_TARGET_URL", raising=False)

    def runner(*args):
        result = pytester.runpytest("--pyargs", "conformance.suite", "-k", "test_fuzz", "--gw-report-dir", "out",
                                    "-p", "no:cacheprovider", "-rs", *args)
        return result, json.loads((pytester.path / "out" / "results.json").read_text())
    return runner


def _outcomes(data) -> dict[str, str]:
    return {case["id"].split("[", 1)[1].rstrip("]"): case["outcome"] for case in data["cases"]}


def test_without_fuzz_nothing_fuzzes(run):
    result, data = run()
    result.assert_outcomes(skipped=14)
    result.stdout.fnmatch_lines(["*fuzz mode is off (run with --gw-fuzz)*"])
    assert data["run"]["requests"] == 0


def test_fuzz_adds_a_case_per_served_operation_and_passes_on_the_reference_server(run):
    result, data = run("--gw-fuzz", "--gw-fuzz-examples", "3")
    result.assert_outcomes(passed=len(OPENAI_SERVED), skipped=14 - len(OPENAI_SERVED))
    result.stdout.fnmatch_lines(["fuzz: schemathesis, 3 requests per operation and mode, seed 0"])
    assert {case for case, outcome in _outcomes(data).items() if outcome == "PASS"} == OPENAI_SERVED
    assert data["run"]["requests"] > len(OPENAI_SERVED)


def test_fuzz_examples_must_not_be_negative(pytester):
    result = pytester.runpytest("--gw-fuzz", "--gw-fuzz-examples", "-1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gw-fuzz-examples must be 0 or more*"])


def test_a_broken_error_envelope_is_graded_under_its_requirement(run):
    result, data = run("--gw-fuzz", "--gw-fuzz-examples", "5", "--gw-server-fault", "ERRORS-001",
                       "-k", "createChatCompletion-negative")
    result.assert_outcomes(failed=1)
    verdicts = {rid: r["verdict"] for rid, r in data["requirements"].items() if r["verdict"] != "NOT_RUN"}
    assert verdicts["ERRORS-001"] == "FAIL"
    assert {rid for rid, verdict in verdicts.items() if verdict == "FAIL"} == {"ERRORS-001"}
    result.stdout.fnmatch_lines(["*ERRORS-001 (MUST) violated*", "*schemathesis check response_schema_conformance*"])


def test_a_broken_native_error_is_graded_ollama_013(run):
    result, data = run("--gw-profile", "ollama", "--gw-fuzz", "--gw-fuzz-examples", "5", "--gw-server-fault", "OLLAMA-013",
                       "-k", "ollamaEmbed-negative")
    result.assert_outcomes(failed=1)
    assert data["requirements"]["OLLAMA-013"]["verdict"] == "FAIL"


def test_fuzzing_spends_the_request_budget_like_any_case(run):
    result, data = run("--gw-fuzz", "--gw-fuzz-examples", "4", "--gw-request-budget", "2",
                       "-k", "createChatCompletion-positive")
    (case,) = [c for c in data["cases"] if c["outcome"] != "SKIP"]
    assert case["outcome"] == "ERROR" and "budget exhausted" in case["message"]
    assert data["run"]["requests"] == 2
