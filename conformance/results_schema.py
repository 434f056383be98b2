"""The published shape of ``results.json``: its ``schema_version`` and the JSON Schema shipped in the package.

Compatibility promise (README "results.json"): within one major version fields are only added, never removed,
renamed or given another meaning; a reader that ignores fields it does not know keeps working. A major bump says
otherwise, and ``compare`` refuses a major version it does not know.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_VERSION = "1.1"  # 1.1: run.claims, no_claims, replay, upstream, target_down, usage_counted/flagged/flags
SCHEMA_FILE = "results.schema.json"


class ResultsInvalid(ValueError):
    """A results.json that does not match the schema (the message names the failing path)."""


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of results.json (``conformance/schemas/results.schema.json``)."""
    return json.loads(resources.files("conformance").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


def validate(data: Any) -> None:
    """Raise ``ResultsInvalid`` naming the first bad field when ``data`` is not a valid results.json document."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        raise ResultsInvalid(f"results.json does not match {SCHEMA_FILE} at {where}: {error.message}")


def major(version: Any) -> int | None:
    """The major part of a ``schema_version`` (None when absent: a run written before versions existed)."""
    try:
        return int(str(version).split(".", 1)[0]) if version is not None else None
    except ValueError:
        return None
