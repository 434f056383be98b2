"""Read-only access to the contract in ``spec/``: OpenAPI document, requirement registry, features, profiles.

Both ``conformance`` and ``reference_server`` read the contract through this package, so neither imports the
other. In a checkout (or an editable install) the files are read from the repository's ``spec/`` folder; in a
wheel they are shipped as ``gateway_spec/data``.

PYTEST_DONT_REWRITE: ``llm-conformance`` reads the plugin's options (and so this package) before pytest starts, so
pytest could not rewrite it and warned on every run; it holds no test asserts.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Requirement",
    "Profile",
    "spec_dir",
    "load_yaml",
    "load_openapi",
    "load_requirements",
    "load_features",
    "load_profile",
    "profile_errors",
    "ProfileError",
    "profile_names",
    "LEVELS",
]

LEVELS = ("MUST", "SHOULD", "MAY")
REQUIREMENT_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)*-\d{3}$")


def spec_dir() -> Path:
    """Folder holding openapi.yaml, requirements/, profiles/, features.yaml and schemas/."""
    packaged = Path(__file__).resolve().parent / "data"
    if (packaged / "openapi.yaml").is_file():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "spec"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"spec files not found in {packaged} nor {checkout}")


@functools.lru_cache(maxsize=1)
def _safe_loader() -> Any:
    """libyaml's parser when PyYAML was built with it: the same safe documents, about ten times faster than the pure
    Python one (the spec is ~200 kB of YAML, read by every pytest process of a suite run and by the server).
    Imported on first use: the conformance plugin's entry point imports this package in every pytest run."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=64)
def _load_yaml_cached(path: str, mtime: float) -> Any:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_safe_loader())


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file, cached by path and modification time."""
    p = Path(path)
    return _load_yaml_cached(str(p.resolve()), p.stat().st_mtime)


def load_openapi() -> dict[str, Any]:
    """The gateway contract as a dict (spec/openapi.yaml)."""
    return load_yaml(spec_dir() / "openapi.yaml")


@dataclass(frozen=True)
class Requirement:
    """One entry of the requirement registry (spec/requirements/<area>.yaml)."""

    id: str
    level: str
    text: str
    area: str
    source: str = ""
    feature: str | None = None
    untestable: str | None = None
    notes: str | None = None

    @property
    def testable(self) -> bool:
        return self.untestable is None


@functools.lru_cache(maxsize=1)
def _requirements_cached(folder: str, stamp: tuple) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        doc = load_yaml(path) or {}
        area = doc.get("area", path.stem)
        for entry in doc.get("requirements", []):
            req = Requirement(
                id=entry["id"],
                level=entry["level"],
                text=" ".join(str(entry["text"]).split()),
                area=area,
                source=str(entry.get("source", "")),
                feature=entry.get("feature"),
                untestable=entry.get("untestable"),
                notes=" ".join(str(entry["notes"]).split()) if entry.get("notes") else None,
            )
            if req.id in out:
                raise ValueError(f"duplicate requirement id {req.id} in {path}")
            out[req.id] = req
    return out


def load_requirements() -> dict[str, Requirement]:
    """All requirements keyed by ID, in file then document order."""
    folder = spec_dir() / "requirements"
    stamp = tuple((p.name, p.stat().st_mtime) for p in sorted(folder.glob("*.yaml")))
    return _requirements_cached(str(folder), stamp)


def load_features() -> dict[str, dict[str, Any]]:
    """Features keyed by ID (spec/features.yaml)."""
    doc = load_yaml(spec_dir() / "features.yaml") or {}
    return {f["id"]: f for f in doc.get("features", [])}


def profile_names() -> list[str]:
    """Names of the bundled profiles (spec/profiles/*.yaml)."""
    return sorted(p.stem for p in (spec_dir() / "profiles").glob("*.yaml"))


_UNSEEN = object()
_ABSENT = object()


@dataclass(frozen=True)
class Profile:
    """A gateway dialect: what one gateway documents, as data (spec/profiles/<name>.yaml).

    ``raw`` holds the whole document; the properties below are the parts code reads most.
    """

    name: str
    raw: dict[str, Any] = field(repr=False)
    path: Path | None = None
    # dotted path -> node (or _ABSENT): the reference server asks the same few paths many times per request.
    # A profile's document is read-only once loaded (derive a new Profile to change one), so a lookup never goes stale.
    _lookups: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def get(self, dotted: str, default: Any = None) -> Any:
        """Look up a nested key such as ``"auth.key_pattern"``."""
        node = self._lookups.get(dotted, _UNSEEN)
        if node is _UNSEEN:
            node = self._lookups[dotted] = self._walk(dotted)
        return default if node is _ABSENT else node

    def _walk(self, dotted: str) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return _ABSENT
            node = node[part]
        return node

    @functools.cached_property
    def features(self) -> frozenset[str]:
        return frozenset(self.raw.get("features", []))

    def claims(self, feature: str | None) -> bool:
        """True when the feature is core (None) or claimed by the profile."""
        return feature is None or feature in self.features

    @property
    def base_path(self) -> str:
        return self.get("base_path", "/v1").rstrip("/")

    @property
    def ollama_base_path(self) -> str | None:
        value = self.get("ollama.base_path")
        return value.rstrip("/") if value else None

    @property
    def test_key(self) -> str:
        return self.get("auth.test_key")

    def unknown_model_statuses(self) -> tuple[int, ...]:
        """Statuses an unknown model may get: the documented one, else every reasonable one (never an invented one).

        400 or 404 where the doc states none, and 403 as well on a gateway with model allowlists (a name outside
        the key's list is refused before the gateway looks it up).
        """
        documented = self.get("models.unknown_status")
        if documented:
            return (int(documented),)
        return (400, 403, 404) if self.claims("model-allowlist") else (400, 404)

    def accepts_every_key(self, key: str) -> bool:
        """True when the doc says every key of this form is accepted (``auth.any_key_with_prefix``)."""
        prefix = self.get("auth.any_key_with_prefix")
        return bool(prefix) and key.startswith(prefix)


class ProfileError(ValueError):
    """A profile file that does not match spec/schemas/profile.schema.json; the message names each field."""


MAX_PROFILE_ERRORS = 12


def profile_errors(raw: Any) -> list[str]:
    """What is wrong with a profile document, one line per problem, each naming the field (dotted path)."""
    import json

    import jsonschema

    if not isinstance(raw, dict):
        return [f"(top level): expected a mapping of profile keys, got {type(raw).__name__}"]
    schema = json.loads((spec_dir() / "schemas" / "profile.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    doc = json.loads(json.dumps(raw, default=str))  # the JSON form: YAML's integer status keys become strings
    missing: dict[str, list[str]] = {}  # one line per mapping for its missing keys, not one per key
    lines = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "required" and isinstance(error.instance, dict):
            missing.setdefault(where, []).extend(k for k in error.validator_value if k not in error.instance
                                                 and k not in missing.get(where, []))
        else:
            lines.append(f"{where}: {error.message}")
    return [f"{where}: missing required keys: {', '.join(keys)}" for where, keys in missing.items()] + lines


def load_profile(name_or_path: str | Path, *, validate: bool | None = None) -> Profile:
    """Load a bundled profile by name, or any profile file by path.

    A profile file given by path is validated against spec/schemas/profile.schema.json (``validate`` forces it on or
    off); a mismatch raises ``ProfileError`` naming each field. Bundled profiles are validated by tests/spec.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        path = candidate
    else:
        path = spec_dir() / "profiles" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise FileNotFoundError(
                f"unknown profile {name_or_path!r}; bundled profiles: {', '.join(profile_names())}"
            )
    raw = load_yaml(path)
    if (path is candidate) if validate is None else validate:
        problems = profile_errors(raw)
        if problems:
            more = len(problems) - MAX_PROFILE_ERRORS
            raise ProfileError(f"profile {path} does not match spec/schemas/profile.schema.json:\n  "
                               + "\n  ".join(problems[:MAX_PROFILE_ERRORS])
                               + (f"\n  ... and {more} more" if more > 0 else ""))
    return Profile(name=raw.get("name", path.stem), raw=raw, path=path)
