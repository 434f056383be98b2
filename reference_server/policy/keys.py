"""API keys from outside the profile: a keys file (``--keys-file``) and ``REFERENCE_SERVER_KEYS``.

Accepted forms, for both:

* a JSON or YAML mapping ``{key: {settings}}`` (settings as ``limits`` reads them: ``tier``, ``balance``,
  ``allowed_models``, ``requests_per_minute``, ...; ``{}`` or null for none);
* a JSON or YAML list of keys;
* plain text: keys separated by commas, whitespace or newlines (``#`` starts a comment line in a file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml


def parse_keys(text: str) -> dict[str, dict[str, Any]]:
    """Keys and their settings from one of the accepted forms; raises ``ValueError`` on a bad structure."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped[0] in "{[" or ":" in stripped.splitlines()[0]:
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = yaml.safe_load(stripped)
        return _from_structure(data)
    lines = [line for line in stripped.splitlines() if not line.lstrip().startswith("#")]
    return {key: {} for key in re.split(r"[\s,]+", " ".join(lines)) if key}


def _from_structure(data: Any) -> dict[str, dict[str, Any]]:
    if isinstance(data, list) and all(isinstance(k, str) for k in data):
        return {k: {} for k in data}
    if isinstance(data, dict) and all(isinstance(k, str) for k in data):
        out = {}
        for key, settings in data.items():
            if settings is not None and not isinstance(settings, dict):
                raise ValueError(f"settings of key {key[:6]}*** must be a mapping, not {type(settings).__name__}")
            out[key] = dict(settings or {})
        return out
    raise ValueError("keys must be a mapping of key -> settings, a list of keys, or plain text keys")


def load_keys_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a keys file (see the module docstring for its forms)."""
    return parse_keys(Path(path).read_text(encoding="utf-8"))
