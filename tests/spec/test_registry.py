"""Lint the requirement registry (spec/requirements/*.yaml) the way JSON-Schema-Test-Suite lints its own cases.

The schema checks one file's shape; the cross-field rules JSON Schema cannot express (ID prefix = area, increasing
numbers, known features, level word in the sentence, IDs never dropped) are checked by ``registry_problems`` here,
and each rule is also shown to fire on a deliberately broken document.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from gateway_spec import REQUIREMENT_ID, load_features, load_requirements, load_yaml, spec_dir

AREAS = (
    "auth", "models", "chat", "chat-stream", "sse", "tools", "structured-output", "params", "usage", "errors",
    "rate-limits", "headers", "embeddings", "ollama", "cors", "sdk", "relay-request", "relay-response", "relay-stream",
    "upstream-failures", "disclosure",
)
REQ_DIR = spec_dir() / "requirements"
AREA_FILES = sorted(REQ_DIR.glob("*.yaml"))


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((spec_dir() / "schemas" / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def registry_problems(doc: dict, stem: str, features: set[str]) -> list[str]:
    """Cross-field problems of one area document; an empty list means the file is sound."""
    problems: list[str] = []
    area = doc.get("area")
    if area != stem:
        problems.append(f"area {area!r} is not the file stem {stem!r}")
    prefix = f"{str(area).upper()}-"
    last = 0
    for entry in doc.get("requirements", []):
        rid, level = entry.get("id", ""), entry.get("level")
        if not REQUIREMENT_ID.match(rid):
            problems.append(f"{rid}: breaks the ID grammar")
            continue
        head, number = rid.rsplit("-", 1)
        if f"{head}-" != prefix:
            problems.append(f"{rid}: prefix is not {prefix!r}")
        if int(number) <= last:
            problems.append(f"{rid}: number does not increase (previous {last:03d})")
        last = max(last, int(number))
        feature = entry.get("feature")
        if feature is not None and feature not in features:
            problems.append(f"{rid}: unknown feature {feature!r}")
        if level == "MAY" and not feature:
            problems.append(f"{rid}: MAY without a feature")
        if "untestable" in entry and not str(entry["untestable"] or "").strip():
            problems.append(f"{rid}: untestable without a reason")
        if level and level not in str(entry.get("text", "")):
            problems.append(f"{rid}: text does not state its level {level}")
    return problems


@pytest.fixture(scope="module")
def features() -> set[str]:
    return set(load_features())


def test_schemas_are_valid_2020_12():
    for name in ("requirements.schema.json", "features.schema.json"):
        Draft202012Validator.check_schema(json.loads((spec_dir() / "schemas" / name).read_text(encoding="utf-8")))


def test_features_file_matches_schema():
    errors = list(_validator("features.schema.json").iter_errors(load_yaml(spec_dir() / "features.yaml")))
    assert not errors, [e.message for e in errors]


def test_every_area_has_exactly_one_file():
    assert sorted(p.stem for p in AREA_FILES) == sorted(AREAS)


@pytest.mark.parametrize("path", AREA_FILES, ids=lambda p: p.stem)
def test_area_file_matches_schema(path: Path):
    errors = list(_validator("requirements.schema.json").iter_errors(load_yaml(path)))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("path", AREA_FILES, ids=lambda p: p.stem)
def test_area_file_cross_field_rules(path: Path, features: set[str]):
    assert registry_problems(load_yaml(path), path.stem, features) == []


def test_ids_unique_across_files():
    seen: dict[str, str] = {}
    for path in AREA_FILES:
        for entry in load_yaml(path)["requirements"]:
            assert entry["id"] not in seen, f"{entry['id']} in {path.name} and {seen[entry['id']]}"
            seen[entry["id"]] = path.name


def test_loader_sees_every_entry():
    loaded = load_requirements()
    raw = sum(len(load_yaml(p)["requirements"]) for p in AREA_FILES)
    assert len(loaded) == raw >= 120
    assert {r.area for r in loaded.values()} == set(AREAS)
    assert all(r.id.startswith(r.area.upper() + "-") for r in loaded.values())


def test_every_area_has_a_must():
    levels = {(r.area, r.level) for r in load_requirements().values()}
    assert all((area, "MUST") in levels for area in AREAS)


def test_every_feature_gates_a_must_level_requirement():
    """Claiming a feature means passing its MUSTs (OCI style); a feature with none would be an empty claim."""
    gated = {r.feature for r in load_requirements().values() if r.feature and r.level in ("MUST", "MAY")}
    assert set(load_features()) - gated == set()


def _committed_ids() -> set[str] | None:
    """IDs in the last commit's registry, or None outside a git checkout."""
    root = spec_dir().parent
    try:
        listing = subprocess.run(
            ["git", "ls-tree", "--name-only", "HEAD", "spec/requirements/"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    ids: set[str] = set()
    for name in listing:
        blob = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=root, capture_output=True, text=True, timeout=10)
        ids.update(re.findall(r"^\s*- id: (\S+)", blob.stdout, flags=re.M))
    return ids


def test_committed_ids_are_never_dropped():
    committed = _committed_ids()
    if committed is None:
        pytest.skip("not a git checkout")
    assert committed - set(load_requirements()) == set()


# The rules above must be able to fail: each broken document trips exactly the rule it targets.
GOOD = {
    "area": "chat-stream",
    "title": "t",
    "requirements": [
        {"id": "CHAT-STREAM-001", "level": "MUST", "text": "Chunks MUST be chunks.", "source": "s1"},
        {"id": "CHAT-STREAM-002", "level": "MAY", "feature": "streaming", "text": "It MAY stream.", "source": "s2"},
    ],
}


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["requirements"][0].update(id="CHAT-001"), "prefix"),
        (lambda d: d["requirements"][1].update(id="CHAT-STREAM-001"), "does not increase"),
        (lambda d: d["requirements"][1].update(id="chat-stream-2"), "grammar"),
        (lambda d: d["requirements"][1].update(feature="teleport"), "unknown feature"),
        (lambda d: d["requirements"][1].pop("feature"), "MAY without a feature"),
        (lambda d: d["requirements"][0].update(untestable=" "), "without a reason"),
        (lambda d: d["requirements"][0].update(text="Chunks are chunks."), "does not state its level"),
        (lambda d: d.update(area="chat"), "file stem"),
    ],
)
def test_cross_field_rules_catch_breakage(mutate, needle, features: set[str]):
    assert registry_problems(GOOD, "chat-stream", features) == []
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    assert any(needle in p for p in registry_problems(doc, "chat-stream", features))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["requirements"][1].pop("feature"),
        lambda d: d["requirements"][0].update(level="MUST NOT"),
        lambda d: d["requirements"][0].pop("source"),
        lambda d: d["requirements"][0].update(colour="red"),
        lambda d: d.update(area="billing"),
    ],
)
def test_schema_rejects_broken_documents(mutate):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    assert list(_validator("requirements.schema.json").iter_errors(doc))


CODE_ID = re.compile(
    r"[\"']((?:AUTH|MODELS|CHAT|CHAT-STREAM|SSE|TOOLS|STRUCTURED-OUTPUT|PARAMS|USAGE|ERRORS|RATE-LIMITS|HEADERS"
    r"|EMBEDDINGS|OLLAMA|CORS|SDK)-\d{3})[\"']"
)


def test_ids_quoted_in_server_and_suite_code_exist():
    """A fault or check keyed by a misspelt ID would never be graded; catch it here, where IDs are defined."""
    root = spec_dir().parent
    known = set(load_requirements())
    unknown = {
        f"{path.relative_to(root)}: {rid}"
        for folder in ("reference_server", "conformance")
        for path in (root / folder).rglob("*.py")
        for rid in CODE_ID.findall(path.read_text(encoding="utf-8", errors="replace"))
        if rid not in known
    }
    assert not unknown, sorted(unknown)
