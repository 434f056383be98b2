"""Which requests a case judged (``request_ids``) and, with ``--gw-server-trace-faults``, which faults they consulted.

``request_ids`` are the ``x-request-id`` values of the exchanges in a case's transcript (its own, the session-cached
ones it reused, the SDK's), so a case's requests can be found in a gateway's logs. ``faults_consulted`` is what the
negative-control matrix needs to rerun only the cases a fault can change (docs/ARCHITECTURE.md): the union of

- the traces of those requests (a cached exchange was sent during an earlier case, but this case judges it),
- the traces of every request the embedded server started since the previous case record (requests no transcript
  keeps: a fixture's discarded setup requests, raw sockets, teardown requests of the case before), and
- the server's global consults (made outside any request: they may affect all of them).

It is None, meaning "unknown: rerun this case", when an exchange has no request id or one the server does not know,
when the case ended in a harness ERROR (an exchange may be missing), or when the server no longer retains a trace.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def request_ids(exchanges: Iterable[Any]) -> list[str | None]:
    """The ``x-request-id`` of each exchange, in order, once each; None for an exchange answered without one."""
    out: list[str | None] = []
    for exchange in exchanges:
        rid = next((v for k, v in exchange.response_headers if k.lower() == "x-request-id"), None)
        if rid is None or rid not in out:
            out.append(rid)
    return out


class CaseTracer:
    """The embedded server's fault trace, read case by case in the order the cases record their verdicts.

    One per process: the suite runs its cases one after another, so "started since the previous record" is exactly
    the requests sent while this case (or a case without a record, or the previous teardown) ran.
    """

    def __init__(self, fault_trace: Any) -> None:
        self.trace = fault_trace
        self._mark = 0  # the server was started inside the first case: its setup requests count for it

    def faults_consulted(self, ids: list[str | None], outcome: str) -> list[str] | None:
        """Sorted fault IDs this case's verdicts may depend on, or None when that cannot be known."""
        mark, self._mark = self._mark, self.trace.mark()
        window = self.trace.consulted_since(mark)
        if window is None or outcome == "ERROR" or None in ids:
            return None
        consulted = window | self.trace.global_consults.copy()
        for rid in ids:
            trace = self.trace.consulted_by(rid)
            if trace is None:
                return None
            consulted |= trace
        return sorted(consulted)


def merge(old: dict, new: dict) -> dict:
    """The ``request_ids``/``faults_consulted`` of two records of one case (call, then teardown) combined."""
    ids = list(old.get("request_ids", []))
    ids += [r for r in new.get("request_ids", []) if r is None or r not in ids]
    merged: dict = {"request_ids": ids}
    if "faults_consulted" in old or "faults_consulted" in new:
        a, b = old.get("faults_consulted"), new.get("faults_consulted")
        merged["faults_consulted"] = None if a is None or b is None else sorted(set(a) | set(b))
    return merged
