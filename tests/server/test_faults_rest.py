"""Every fault of the rate-limit, billing, CORS, embeddings and Ollama surfaces breaks its requirement.

Each case is a check that holds on the healthy server and fails with exactly that fault switched on, so the
negative controls are proven to be visible on the wire.
"""

from __future__ import annotations

import array
import base64
import datetime as dt
import email.utils
import json
import re

import pytest

from reference_server import ServerConfig, create_app, faults

KEYS = {"sk-one": {"requests_per_minute": 1}, "sk-two": {"requests_per_minute": 2}}
GO = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s)?$|^\d+(\.\d+)?ms$")
HI = [{"role": "user", "content": "hi"}]
PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def client_for(profile: str, fault: str | None, **kwargs):
    config = ServerConfig.for_profile(profile, faults=[fault] if fault else [], **kwargs)
    client = create_app(config).test_client()
    client.key = config.profile.test_key
    client.base = config.profile.base_path
    return client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- rate limits (openai profile, openai headers)


def models(c, key="sk-two"):
    return c.get(f"{c.base}/models", headers=bearer(key))


def over_limit(c):
    models(c, "sk-one")
    return models(c, "sk-one")


def is_int_string(v) -> bool:
    return v is not None and v.isdigit()


def rl_001(c):
    r = over_limit(c)
    return r.status_code == 429 and r.mimetype == "application/json" and "error" in r.get_json()


def rl_002(c):
    return "Retry-After" in over_limit(c).headers


def rl_003(c):
    v = over_limit(c).headers.get("Retry-After")
    if v is None:
        return True
    try:
        return float(v) > 0
    except ValueError:
        return email.utils.parsedate_to_datetime(v) is not None if "," in v else False


def rl_004(c):
    return float(over_limit(c).headers["Retry-After"]) <= 60


def rl_017(c):
    return over_limit(c).headers.get("Retry-After") == "60"  # the wallet doc: "Retry-After: 60"


def rl_005(c):
    h = models(c).headers
    return all(f"x-ratelimit-{p}-requests" in h for p in ("limit", "remaining", "reset"))


def rl_006(c):
    h = models(c).headers
    return all(is_int_string(h.get(f"x-ratelimit-{p}-{k}")) for p in ("limit", "remaining") for k in ("requests", "tokens"))


def rl_007(c):
    h = models(c).headers
    return all(GO.match(h[f"x-ratelimit-reset-{k}"]) for k in ("requests", "tokens"))


def rl_008(c):
    h = models(c).headers
    return all(f"x-ratelimit-{p}-tokens" in h for p in ("limit", "remaining", "reset"))


def rl_012(c):
    first, second = models(c, c.key).headers, models(c, c.key).headers
    return int(first["x-ratelimit-remaining-requests"]) - int(second["x-ratelimit-remaining-requests"]) == 1


def rl_013(c):
    return models(c, c.key).headers["x-ratelimit-limit-requests"] == str(c.application.config["SERVER"].profile.get("rate_limits.requests_per_minute"))


def rl_014(c):
    return over_limit(c).get_json()["error"]["code"] == "rate_limit_exceeded"


def rl_015(c):
    return over_limit(c).headers.get("x-ratelimit-remaining-requests") == "0"


def rl_016(c):
    ms = over_limit(c).headers.get("retry-after-ms")
    return ms is None or float(ms) >= 0


# ---------------------------------------------------------------- x-ratelimit headers, billing (wallet-gateway)


def x_headers(c):
    return models(c, c.key).headers


def rl_009(c):
    return all(f"X-RateLimit-{n}" in x_headers(c) for n in ("Limit", "Remaining", "Reset"))


def rl_010(c):
    value = x_headers(c)["X-RateLimit-Reset"]
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def rl_011(c):
    h = x_headers(c)
    return is_int_string(h["X-RateLimit-Limit"]) and is_int_string(h["X-RateLimit-Remaining"])


def embed(c, key, model="text-embedding-3-small", **body):
    return c.post(f"{c.base}/embeddings", json={"model": model, "input": "hi", **body}, headers=bearer(key))


def errors_016(c):
    return embed(c, "wallet-conformance-empty-wallet").status_code == 402


def errors_026(c):
    return embed(c, "wallet-conformance-suspended").status_code == 402


def rl_018(c):
    return embed(c, "wallet-conformance-quota").status_code == 429


def rl_019(c):
    return embed(c, "wallet-conformance-daily").status_code == 429


def errors_017(c):
    return embed(c, "wallet-conformance-restricted").status_code == 403


# ---------------------------------------------------------------- CORS (unit23)


def preflight(c):
    return c.options("/v1/chat/completions", headers=PREFLIGHT)


def cors_001(c):
    return preflight(c).status_code in (200, 204)


def cors_002(c):
    return preflight(c).headers.get("Access-Control-Allow-Origin") in ("*", PREFLIGHT["Origin"])


def cors_003(c):
    return "POST" in preflight(c).headers.get("Access-Control-Allow-Methods", "")


def cors_004(c):
    allowed = preflight(c).headers.get("Access-Control-Allow-Headers", "").lower()
    return "authorization" in allowed and "content-type" in allowed


def cors_005(c):
    r = c.get("/v1/models", headers={"Origin": "https://x", **bearer(c.key)})
    return r.status_code == 200 and "Access-Control-Allow-Origin" in r.headers


def cors_006(c):
    exposed = c.get("/v1/models", headers={"Origin": "https://x", **bearer(c.key)}).headers.get(
        "Access-Control-Expose-Headers", "").lower()
    return "x-request-id" in exposed


def cors_007(c):
    r = c.get("/v1/models", headers={"Origin": "https://x"})
    return r.status_code == 401 and "Access-Control-Allow-Origin" in r.headers


# ---------------------------------------------------------------- embeddings (openai)


def emb(c, **body):
    return embed(c, c.key, **body)


def data(c, **body):
    return emb(c, **body).get_json()["data"]


EMBEDDING_CHECKS = {
    "EMBEDDINGS-001": lambda c: emb(c).get_json()["object"] == "list",
    "EMBEDDINGS-002": lambda c: data(c)[0]["object"] == "embedding",
    "EMBEDDINGS-003": lambda c: [d["index"] for d in data(c, input=["a", "b"])] == [0, 1],
    "EMBEDDINGS-004": lambda c: array.array("f", base64.b64decode(data(c, encoding_format="base64")[0]["embedding"]))
    .tolist() == data(c)[0]["embedding"],
    "EMBEDDINGS-005": lambda c: emb(c).status_code == 200,
    "EMBEDDINGS-006": lambda c: len(data(c, input=["a", "b", "c"])) == 3,
    "EMBEDDINGS-007": lambda c: emb(c, input=[1, 2, 3]).status_code == 200,
    "EMBEDDINGS-008": lambda c: len(data(c, input=[[1], [2]])) == 2,
    "EMBEDDINGS-009": lambda c: len(data(c, dimensions=16)[0]["embedding"]) == 16,
    "EMBEDDINGS-010": lambda c: {"prompt_tokens", "total_tokens"} <= set(emb(c).get_json()["usage"]),
    "EMBEDDINGS-011": lambda c: emb(c, input=[]).status_code == 400,
    "EMBEDDINGS-012": lambda c: emb(c, input="").status_code == 400,
    "EMBEDDINGS-013": lambda c: emb(c, custom_field=1).status_code == 200,
    "EMBEDDINGS-014": lambda c: embed(c, c.key, model="nope").status_code == 404,
    "EMBEDDINGS-015": lambda c: c.post("/v1/embeddings", json={"model": "text-embedding-3-small"},
                                       headers=bearer(c.key)).status_code == 400,
    "EMBEDDINGS-016": lambda c: len({len(d["embedding"]) for d in data(c, input=["a", "b"])}) == 1,
    "EMBEDDINGS-017": lambda c: isinstance(data(c)[0]["embedding"], list),
    "EMBEDDINGS-018": lambda c: emb(c, encoding_format="int8").status_code == 400,
    "EMBEDDINGS-019": lambda c: len(set(emb(c).get_json()["usage"].values())) == 1,
    "EMBEDDINGS-020": lambda c: emb(c).mimetype == "application/json",
    "EMBEDDINGS-021": lambda c: data(c, input=["a", "b"])[1]["embedding"] == data(c, input="b")[0]["embedding"],
}


# ---------------------------------------------------------------- Ollama (ollama profile)


def ochat(c, **body):
    return c.post("/api/chat", json={"model": "llama3.2", "messages": HI, **body})


def ndjson(resp) -> list:
    return [json.loads(line) for line in resp.get_data(as_text=True).splitlines()]


def rfc3339(value) -> bool:
    return isinstance(value, str) and bool(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value))


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {
    "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}]

OLLAMA_CHECKS = {
    "OLLAMA-001": lambda c: c.get("/").get_data(as_text=True) == "Ollama is running",
    "OLLAMA-002": lambda c: isinstance(c.get("/api/version").get_json()["version"], str),
    "OLLAMA-003": lambda c: all("digest" in m for m in c.get("/api/tags").get_json()["models"]),
    "OLLAMA-004": lambda c: all("families" in m["details"] for m in c.get("/api/tags").get_json()["models"]),
    "OLLAMA-005": lambda c: ochat(c).mimetype == "application/x-ndjson",
    "OLLAMA-006": lambda c: ochat(c).get_data(as_text=True).endswith("\n"),
    "OLLAMA-007": lambda c: all("created_at" in o for o in ndjson(ochat(c))[:-1]),
    "OLLAMA-008": lambda c: "done_reason" in ndjson(ochat(c))[-1],
    "OLLAMA-009": lambda c: isinstance(ndjson(ochat(c))[-1]["eval_duration"], int),
    "OLLAMA-010": lambda c: ndjson(ochat(c))[-1]["message"]["content"] == "",
    "OLLAMA-011": lambda c: ochat(c, stream=False).mimetype == "application/json",
    "OLLAMA-012": lambda c: isinstance(ochat(c, stream=False, tools=TOOLS).get_json()["message"]["tool_calls"][0]
                                       ["function"]["arguments"], dict),
    "OLLAMA-013": lambda c: isinstance(ochat(c, model="nope").get_json()["error"], str),
    "OLLAMA-014": lambda c: ochat(c, stream=False).get_json()["message"]
    == ochat(c, model="llama3.2:latest", stream=False).get_json()["message"],
    "OLLAMA-015": lambda c: ochat(c, model="nope").status_code == 404,
    "OLLAMA-016": lambda c: ndjson(c.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}))[-1]
    .get("done") is True,
    "OLLAMA-017": lambda c: len(c.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b"]})
                                .get_json().get("embeddings", [])) == 2,
    "OLLAMA-018": lambda c: c.get("/api/tags").status_code == 200,
    "OLLAMA-019": lambda c: rfc3339(ndjson(ochat(c))[0]["created_at"])
    and rfc3339(c.get("/api/tags").get_json()["models"][0]["modified_at"]),
    "OLLAMA-020": lambda c: isinstance(ndjson(c.post("/api/chat", json={"model": "llama3.2", "messages": HI},
                                                     headers={"X-Mock-Error-After": "1"}))[-1]["error"], str),
    "OLLAMA-021": lambda c: c.post("/api/chat", json={"messages": HI}).status_code == 400,
    "OLLAMA-022": lambda c: all(ochat(c, model=m["name"], stream=False).status_code in (200, 400)
                                and ochat(c, model=m["name"]).status_code != 404
                                for m in c.get("/api/tags").get_json()["models"]),
    "OLLAMA-023": lambda c: c.head("/").status_code == 200,
    "OLLAMA-024": lambda c: c.post("/api/generate", json={"model": "llama3.2", "prompt": "hi", "stream": False})
    .mimetype == "application/json",
}

CASES: dict[str, tuple[str, object, dict]] = {
    **{f"RATE-LIMITS-{n:03d}": ("openai", fn, {"keys": KEYS}) for n, fn in [
        (1, rl_001), (2, rl_002), (3, rl_003), (4, rl_004), (5, rl_005), (6, rl_006), (7, rl_007), (8, rl_008),
        (12, rl_012), (13, rl_013), (14, rl_014), (15, rl_015), (16, rl_016)]},
    **{f"RATE-LIMITS-{n:03d}": ("wallet-gateway", fn, {}) for n, fn in [(9, rl_009), (10, rl_010), (11, rl_011)]},
    "RATE-LIMITS-017": ("wallet-gateway", rl_017, {"keys": KEYS}),
    "ERRORS-016": ("wallet-gateway", errors_016, {}),
    "ERRORS-026": ("wallet-gateway", errors_026, {}),
    "RATE-LIMITS-018": ("wallet-gateway", rl_018, {}),
    "RATE-LIMITS-019": ("wallet-gateway", rl_019, {}),
    "ERRORS-017": ("wallet-gateway", errors_017, {}),
    **{f"CORS-{n:03d}": ("unit23", fn, {}) for n, fn in [
        (1, cors_001), (2, cors_002), (3, cors_003), (4, cors_004), (5, cors_005), (6, cors_006), (7, cors_007)]},
    **{rid: ("openai", fn, {}) for rid, fn in EMBEDDING_CHECKS.items()},
    **{rid: ("ollama", fn, {}) for rid, fn in OLLAMA_CHECKS.items()},
}


@pytest.mark.parametrize("requirement", sorted(CASES))
def test_fault_breaks_its_requirement(requirement):
    profile, check, kwargs = CASES[requirement]
    assert check(client_for(profile, None, **kwargs)), f"{requirement} check fails on the healthy server"
    assert not check(client_for(profile, requirement, **kwargs)), f"fault {requirement} is not visible"


def test_every_fault_of_these_areas_has_a_case():
    prefixes = ("RATE-LIMITS-", "CORS-", "EMBEDDINGS-", "OLLAMA-")
    mine = {rid for rid in faults.catalogue() if rid.startswith(prefixes)} | {"ERRORS-016", "ERRORS-017", "ERRORS-026"}
    assert mine == set(CASES)
