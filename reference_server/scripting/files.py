"""Script files (``--script FILE``, ``REFERENCE_SERVER_SCRIPT``): YAML or JSON, ``{"rules": [...]}`` or a list.

Rules without an ``id`` get ``script-<index>``, so every worker and host loading the same file registers the same
rules once in a shared store. A malformed file raises ``ValueError`` naming the file, the rule index and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reference_server.scripting.rules import RuleError, parse_rules


def load_script_file(path: str | Path) -> list[dict[str, Any]]:
    """The validated, normalised rules of a script file (``FileNotFoundError`` when it is missing)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON: one parser for both
    except yaml.YAMLError as exc:
        raise ValueError(f"script file {path}: not valid YAML/JSON ({exc})") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if isinstance(items, list):
        items = [{**raw, "id": raw.get("id") or f"script-{index}"} if isinstance(raw, dict) else raw
                 for index, raw in enumerate(items)]
        data = {**data, "rules": items} if isinstance(data, dict) else items
    try:
        return [rule.raw for rule in parse_rules(data)]
    except RuleError as err:
        raise ValueError(f"script file {path}: {err}") from None
