"""Vendor baselines: requirement IDs (optionally per case) a gateway is known to fail, with reasons.

Accepted shapes (YAML or JSON):

    expected_failures:
      - {requirement: CHAT-STREAM-002, reason: "sends role on every chunk", case: "test_chat_stream.py::test_role"}
    # or a mapping ID -> reason, or a plain list of IDs

A baselined failure grades XFAIL; a baselined requirement that passes everywhere is XPASS and fails the run,
because a stale baseline hides regressions (modelcontextprotocol/conformance, web-platform-tests).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path


class BaselineError(ValueError):
    """The baseline file is malformed."""


@dataclass(frozen=True)
class BaselineEntry:
    requirement: str
    reason: str = ""
    case: str | None = None

    def matches_case(self, case_id: str) -> bool:
        """True for requirement-wide entries, or when ``case`` matches the node id (glob or suffix)."""
        if self.case is None:
            return True
        return case_id == self.case or case_id.endswith(self.case) or fnmatch.fnmatchcase(case_id, self.case)


class Baseline:
    """The expected failures of one gateway."""

    def __init__(self, entries: list[BaselineEntry] = ()) -> None:
        self.entries = list(entries)

    @classmethod
    def load(cls, path: str | Path | None) -> Baseline:
        """Read a baseline file; ``None`` gives an empty baseline."""
        if path is None:
            return cls()
        import yaml  # here: this module is imported in every pytest run (conformance/entry.py)

        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise BaselineError(f"cannot read baseline {path}: {exc}") from exc
        return cls(_entries(doc, path))

    def entry_for(self, requirement: str, case_id: str) -> BaselineEntry | None:
        """The entry that expects ``requirement`` to fail in this case, if any."""
        for entry in self.entries:
            if entry.requirement == requirement and entry.matches_case(case_id):
                return entry
        return None

    def case_specific(self, requirement: str, case_id: str) -> BaselineEntry | None:
        """An entry naming this very case (a pass then is XPASS at once)."""
        entry = self.entry_for(requirement, case_id)
        return entry if entry is not None and entry.case is not None else None

    def requirement_wide(self, requirement: str) -> BaselineEntry | None:
        return next((e for e in self.entries if e.requirement == requirement and e.case is None), None)


def _entries(doc, path) -> list[BaselineEntry]:
    if doc is None:
        return []
    if isinstance(doc, dict) and "expected_failures" in doc:
        doc = doc["expected_failures"] or []
    if isinstance(doc, dict):
        return [BaselineEntry(str(k), str(v or "")) for k, v in doc.items()]
    if not isinstance(doc, list):
        raise BaselineError(f"{path}: expected a list or mapping of expected failures")
    out = []
    for item in doc:
        if isinstance(item, str):
            out.append(BaselineEntry(item))
        elif isinstance(item, dict) and "requirement" in item:
            out.append(BaselineEntry(str(item["requirement"]), str(item.get("reason", "")), item.get("case")))
        else:
            raise BaselineError(f"{path}: each entry needs a 'requirement' (got {item!r})")
    return out
