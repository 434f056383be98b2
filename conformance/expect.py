"""The ``expect`` fixture's recorder: soft per-requirement checks with Expected/Received, and their message."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from conformance.client import HarnessError
from conformance.redact import Redactor

_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict, _repr.maxlevel = 400, 400, 12, 12, 4


class UnknownRequirementInCheck(HarnessError):
    """A check named a requirement that is not in the test's marker: a typo in the suite, not a gateway fault."""


@dataclass(frozen=True)
class Violation:
    """One broken requirement as observed: what was expected, what came back."""

    requirement: str
    expected: str
    received: str
    note: str | None = None
    untestable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StopCase(Exception):
    """Raised by ``expect.fatal``: the case cannot go on once this requirement is broken.

    A fixture without an ``expect`` recorder (a session-scoped shared exchange) raises
    ``StopCase.violated(...)`` instead: the violation rides on the exception, and the plugin grades it against
    the markers of every test that requested the fixture (a test that does not name the requirement gets its own
    requirements graded "Not testable").
    """

    def __init__(self, requirement: str = "", violation: Violation | None = None) -> None:
        super().__init__(requirement)
        self.requirement = requirement
        self.violation = violation

    @classmethod
    def violated(cls, req_id: str, *, expected: Any, received: Any, note: str | None = None) -> StopCase:
        """A StopCase carrying the violation of ``req_id`` (Expected/Received as ``expect`` records them)."""
        return cls(req_id, Violation(req_id, _show(expected), _show(received), note))


def _show(value: Any) -> str:
    return value if isinstance(value, str) else _repr.repr(value)


class Expect:
    """Callable recorder bound to one test: ``expect(req_id, condition, expected=..., received=...)``."""

    def __init__(self, marker_ids: tuple[str, ...], redactor: Redactor | None = None) -> None:
        self.marker_ids = tuple(marker_ids)
        self.redactor = redactor or Redactor()
        self.violations: list[Violation] = []
        # Requirements an expectation was evaluated for, held or not: the evidence a PASS needs (outcomes.py).
        self.evaluated: set[str] = set()

    def __call__(self, req_id: str, condition: Any, *, expected: Any, received: Any,
                 note: str | None = None) -> bool:
        """Record a violation of ``req_id`` unless ``condition`` holds; the test goes on. Returns the condition."""
        self._check_id(req_id)
        self.evaluated.add(req_id)
        if not condition:
            self.violations.append(Violation(req_id, self.redactor.text(_show(expected)),
                                             self.redactor.text(_show(received)),
                                             self.redactor.text(note) if note else None))
        return bool(condition)

    def fatal(self, req_id: str, condition: Any, *, expected: Any, received: Any, note: str | None = None) -> None:
        """Like ``expect(...)`` but stops the test when the condition does not hold."""
        if not self(req_id, condition, expected=expected, received=received, note=note):
            raise StopCase(req_id)

    def untestable(self, req_id: str, why: str) -> None:
        """Record that ``req_id`` could not be exercised because a prerequisite broke (graded FAIL)."""
        self._check_id(req_id)
        self.violations.append(Violation(req_id, "", "", self.redactor.text(why), untestable=True))

    def _check_id(self, req_id: str) -> None:
        if req_id not in self.marker_ids:
            raise UnknownRequirementInCheck(
                f"check names {req_id!r}, which is not in the test's requirement marker {list(self.marker_ids)}")


def failure_message(violations: list[Violation], registry: Mapping[str, Any], transcript_hint: str) -> str:
    """Per violated requirement: its ID and level, its quoted text, Expected beside Received; then the transcript."""
    blocks = []
    for v in violations:
        req = registry.get(v.requirement)
        level = getattr(req, "level", "?")
        text = getattr(req, "text", "")
        if v.untestable:
            blocks.append(f"{v.requirement} ({level}) Not testable: {v.note}\n  Requirement: \"{text}\"")
            continue
        lines = [f"{v.requirement} ({level}) violated", f"  Requirement: \"{text}\"",
                 f"  Expected: {v.expected}", f"  Received: {v.received}"]
        if v.note:
            lines.append(f"  Note:     {v.note}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + f"\n\nTranscript: {transcript_hint}"
