"""The bundled gateway profiles (spec/profiles/*.yaml): shape, internal consistency and loader access.

The schema says what a profile may contain; these tests check what the schema cannot: keys against key_pattern,
model names against each other, features against the vocabulary and against the data that backs them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from gateway_spec import load_features, load_profile, load_yaml, profile_names, spec_dir

EXPECTED_PROFILES = {
    "openai", "openai-compatible", "unit23", "unillm", "unifiedai", "unified-llm-gateway", "wallet-gateway", "ollama",
}
PROFILE_FILES = sorted((spec_dir() / "profiles").glob("*.yaml"))


def _raw(path: Path) -> dict:
    return load_yaml(path)


def _as_json(doc: dict) -> dict:
    """The JSON form the schema validates: YAML's integer status keys become strings."""
    return json.loads(json.dumps(doc))


def _schema() -> dict:
    return json.loads((spec_dir() / "schemas" / "profile.schema.json").read_text(encoding="utf-8"))


def _fold(name: str, case_insensitive: bool) -> str:
    return name.casefold() if case_insensitive else name


def _model_names(doc: dict) -> list[tuple[str, str]]:
    """(name, owning model id) for every id and alias on the OpenAI surface."""
    out = []
    for model in doc["models"]["chat"] + doc["models"]["embedding"]:
        out.append((model["id"], model["id"]))
        out.extend((alias, model["id"]) for alias in model.get("aliases", []))
    return out


def _resolves(doc: dict, name: str) -> bool:
    """True when a name reaches a model: by id or alias, or through a routing provider pattern."""
    ci = doc["models"]["case_insensitive"]
    if any(_fold(known, ci) == _fold(name, ci) for known, _ in _model_names(doc)):
        return True
    return any(re.fullmatch(p["pattern"], name) for p in doc["models"].get("providers", []))


@pytest.fixture(params=PROFILE_FILES, ids=lambda p: p.stem)
def profile_path(request) -> Path:
    return request.param


@pytest.fixture
def profile(profile_path) -> dict:
    return _raw(profile_path)


def test_schema_is_valid_2020_12():
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_bundled_profiles_are_exactly_the_expected_ones():
    assert set(profile_names()) == EXPECTED_PROFILES
    assert len(profile_names()) == len(EXPECTED_PROFILES)


@pytest.mark.parametrize("name", sorted(EXPECTED_PROFILES))
def test_load_profile_by_name(name):
    loaded = load_profile(name)
    assert loaded.name == name
    assert loaded.test_key == loaded.get("auth.test_key")
    assert loaded.base_path.startswith("/")


def test_profile_validates_against_schema(profile):
    validator = jsonschema.Draft202012Validator(_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(_as_json(profile)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_rejects_a_typo_key(profile):
    """additionalProperties false must catch a misspelt key at the levels code reads."""
    validator = jsonschema.Draft202012Validator(_schema())
    levels = {
        "top level": lambda d: d,
        "auth": lambda d: d["auth"],
        "models": lambda d: d["models"],
        "a chat model": lambda d: d["models"]["chat"][0],
        "rate_limits": lambda d: d["rate_limits"],
        "defaults": lambda d: d["defaults"],
    }
    for level, pick in levels.items():
        doc = _as_json(profile)
        pick(doc)["unknwon_key"] = 1
        assert not validator.is_valid(doc), f"typo accepted at {level}"


def test_name_matches_file_stem():
    for path in PROFILE_FILES:
        assert _raw(path)["name"] == path.stem


def test_features_exist(profile):
    unknown = set(profile["features"]) - set(load_features())
    assert not unknown, f"features not in spec/features.yaml: {sorted(unknown)}"


def test_keys_match_pattern(profile):
    auth = profile["auth"]
    pattern = auth["key_pattern"]
    keys = [auth["test_key"], *auth["extra_test_keys"].values()]
    assert len(set(keys)) == len(keys), "test keys must be distinct"
    if pattern is None:
        assert auth["malformed_key"] is None, "no pattern, so nothing is malformed"
        return
    for key in keys:
        assert re.fullmatch(pattern, key), f"{key!r} does not match {pattern!r}"
    assert auth["malformed_key"] and not re.fullmatch(pattern, auth["malformed_key"])


def test_extra_keys_follow_documented_state(profile):
    roles = set(profile["auth"]["extra_test_keys"])
    assert ("no-balance" in roles) == (profile["billing"] is not None)
    allowlist = "model-allowlist" in profile["features"]
    assert ("restricted" in roles) == allowlist
    if allowlist:
        assert 403 in profile["status_codes"]
    tiers = profile["rate_limits"]["tiers"] or {}
    assert {r for r in roles if r.startswith("tier-")} == {f"tier-{t}" for t in tiers}


def test_default_models_exist(profile):
    models = profile["models"]
    assert models["default_chat"] in {m["id"] for m in models["chat"]}
    embedding_ids = {m["id"] for m in models["embedding"]}
    if models["default_embedding"] is None:
        assert "embeddings" not in profile["features"]
    else:
        assert models["default_embedding"] in embedding_ids


def test_aliases_do_not_collide(profile):
    ci = profile["models"]["case_insensitive"]
    owner: dict[str, str] = {}
    for name, model_id in _model_names(profile):
        key = _fold(name, ci)
        assert key not in owner, f"{name!r} names both {owner[key]!r} and {model_id!r}"
        owner[key] = model_id


def test_rejected_names_do_not_resolve(profile):
    for name in profile["models"]["rejected"]:
        assert not _resolves(profile, name), f"rejected name {name!r} resolves to a model"


def test_routing_providers(profile):
    models = profile["models"]
    providers = models.get("providers", [])
    routed = models["routing"] == "provider-model"
    assert routed == bool(providers) == ("provider-routing" in profile["features"])
    for provider in providers:
        assert re.fullmatch(provider["pattern"], provider["example"])
        assert any(re.fullmatch(provider["pattern"], m["id"]) for m in models["chat"])
    if routed:
        owners = {p["owned_by"] for p in providers}
        assert all(m["owned_by"] in owners for m in models["chat"])


def test_rate_limit_consistency(profile):
    limits = profile["rate_limits"]
    tiers = limits["tiers"]
    if tiers:
        assert limits["default_tier"] in tiers
        assert limits["requests_per_minute"] == tiers[limits["default_tier"]]
    else:
        assert limits["default_tier"] is None
    headers = limits["headers"]
    assert (headers == "none") == (limits["reset_format"] is None)
    # A header family without a documented limit is fine: the profile states no number (the wallet doc's "Max
    # requests per minute" gives none), and the reference server reports its own undocumented limit.
    assert ("ratelimit-openai-headers" in profile["features"]) == (headers == "openai")
    assert ("ratelimit-x-headers" in profile["features"]) == (headers == "x-ratelimit")
    if limits["retry_after"] is not None:
        assert 429 in profile["status_codes"]


def test_error_types_name_documented_statuses(profile):
    statuses = set(profile["status_codes"])
    assert set(profile["errors"]["types"]) <= statuses
    if profile["billing"]:
        assert profile["billing"]["status"] in statuses


def test_key_ignored_means_no_401(profile):
    if profile["auth"].get("key_required_but_ignored"):
        assert 401 not in profile["status_codes"]
        assert profile["auth"]["key_pattern"] is None


def _reasoning_kinds(profile: dict) -> set:
    return {m["reasoning"] for m in profile["models"]["chat"]}


# feature -> what the profile's data must show for the claim to be testable (and, where marked, vice versa)
FEATURE_BACKING = {
    "embeddings": lambda p: bool(p["models"]["embedding"]) and p["models"]["default_embedding"] is not None,
    "model-pricing": lambda p: "pricing" in p["models"]["list_fields"]
    and all("pricing" in m and "context_length" in m for m in p["models"]["chat"]),
    "model-aliases": lambda p: any(m.get("aliases") for m in p["models"]["chat"] + p["models"]["embedding"]),
    "ollama": lambda p: p["ollama"] is not None,
    "billing": lambda p: bool(p["billing"]) and p["billing"]["status"] == 402,
    "upstream-timeout": lambda p: p["timeouts"]["upstream_seconds"] is not None and 504 in p["status_codes"],
    "prompt-cache-usage": lambda p: bool(p["usage"]["cache_fields"]),
    "reasoning-think-tag": lambda p: "think-tag" in _reasoning_kinds(p),
    "reasoning-content": lambda p: "reasoning-content" in _reasoning_kinds(p),
}
# flags that must agree with the feature both ways
FEATURE_FLAGS = {
    "case-insensitive-models": lambda p: p["models"]["case_insensitive"],
    "cors": lambda p: p["cors"],
    "upstream-timeout": lambda p: p["timeouts"]["upstream_seconds"] is not None,
}


def test_claimed_features_are_backed_by_data(profile):
    claimed = set(profile["features"])
    for feature, backed in FEATURE_BACKING.items():
        if feature in claimed:
            assert backed(profile), f"{feature} claimed but the profile's data does not back it"
    for feature, flag in FEATURE_FLAGS.items():
        assert (feature in claimed) == bool(flag(profile)), f"{feature} disagrees with its flag"
    if profile["stream"]["auto_include_usage"]:
        assert {"streaming", "stream-usage"} <= claimed


def test_ollama_surface(profile):
    surface = profile["ollama"]
    if surface is None:
        return
    names = {m["name"] for m in surface["models"]}
    default = surface["default_model"]
    assert default in names or f"{default}:latest" in names
    ids = {m["id"] for m in profile["models"]["chat"]}
    for model in surface["models"]:
        if "routes_to" in model:
            assert model["routes_to"] in ids, f"{model['name']} routes to an unlisted model"
    assert surface["base_path"] != profile["base_path"]


# --- every line checkable against its doc -------------------------------------------------------------------------

COMMENT = re.compile(r"(?:^|\s)#\s?(.*)$")
QUOTE = re.compile(r'"((?:[^"\\]|\\.)+)"')
ELLIPSIS = re.compile(r"\s*\.\.\.\s*")


def _docs_root() -> Path | None:
    """Folder holding gateway-docs/ and reference/ (outside the repo); None when absent, e.g. in CI."""
    env = os.environ.get("LLM_CONFORMANCE_DOCS")
    for candidate in ([Path(env)] if env else []) + [spec_dir().parent.parent / "shared"]:
        if (candidate / "gateway-docs").is_dir():
            return candidate
    return None


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _quoted_pieces(line: str) -> list[str]:
    """Text a profile line's comment quotes: double-quoted spans, split at '...' elisions."""
    match = COMMENT.search(line)
    if not match:
        return []
    pieces = []
    for quote in QUOTE.findall(match.group(1)):
        for piece in ELLIPSIS.split(quote.replace('\\"', '"')):
            if len(piece.strip()) >= 4:
                pieces.append(_normalise(piece))
    return pieces


def test_every_value_line_is_commented(profile_path):
    """A value line carries a comment, or sits in a block (no blank line) that a comment line opens."""
    lines = profile_path.read_text(encoding="utf-8").splitlines()
    bare = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith("#") or text.endswith(":") or COMMENT.search(line):
            continue
        block = []
        for above in reversed(lines[:i]):
            if not above.strip():
                break
            block.append(above.strip())
        if not any(a.startswith("#") for a in block):
            bare.append(f"{i + 1}: {line}")
    assert not bare, "values without a doc quote or a '# not documented' note:\n" + "\n".join(bare)


def test_comment_quotes_appear_in_the_doc(profile_path):
    root = _docs_root()
    if root is None:
        pytest.skip("gateway docs not available (set LLM_CONFORMANCE_DOCS)")
    source = _normalise((root / _raw(profile_path)["source"]).read_text(encoding="utf-8"))
    pitfalls = _normalise((root / "reference" / "pitfalls.md").read_text(encoding="utf-8"))
    missing = []
    for n, line in enumerate(profile_path.read_text(encoding="utf-8").splitlines(), 1):
        doc = pitfalls if "pitfalls.md" in line else source
        missing += [f"{n}: {piece!r}" for piece in _quoted_pieces(line) if piece not in doc]
    assert not missing, "quotes not found in the doc:\n" + "\n".join(missing)


# docs/ lives in the checkout only (the wheel ships spec/ as gateway_spec/data), so find it from this file.
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


# --- docs/profiles.md stays in step with the data ------------------------------------------------------------------

def _doc_rows(first_header: str) -> list[list[str]]:
    """Body rows of the docs/profiles.md table whose header starts with first_header, as stripped cells."""
    lines = (DOCS_DIR / "profiles.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_doc_glance_table_matches_profiles():
    rows = {row[0]: row for row in _doc_rows("profile | doc")}
    assert set(rows) == EXPECTED_PROFILES
    for name, (_, source, base, _key, unknown, statuses, headers) in rows.items():
        raw = load_profile(name).raw
        assert (source, base, headers) == (raw["source"], raw["base_path"], raw["rate_limits"]["headers"]), name
        assert (None if unknown == "undocumented" else int(unknown)) == raw["models"]["unknown_status"], name
        documented = [int(s) for s in statuses.split()] if statuses != "none" else []
        assert documented == sorted(raw["status_codes"]), name


def test_doc_feature_matrix_matches_profiles():
    lines = (DOCS_DIR / "profiles.md").read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| feature |"))
    columns = [cell.strip().strip("`") for cell in header.strip("|").split("|")][1:]
    assert set(columns) == EXPECTED_PROFILES
    rows = _doc_rows("feature")
    assert [row[0] for row in rows] == list(load_features())
    for row in rows:
        for name, cell in zip(columns, row[1:], strict=True):
            assert (cell == "✓") == (row[0] in load_profile(name).features), f"{row[0]} / {name}"
