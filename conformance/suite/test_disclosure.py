"""Disclosure (sandwich mode): nothing of the upstream shows through the gateway (spec/requirements/disclosure.yaml).

Judged on a success, a stream, and the failures whose messages are the likeliest to name the upstream (503, 401,
429), plus ``GET /models``. The upstream key is found without the suite knowing it: every token of what the client
saw is fingerprinted as ``Bearer <token>`` and compared with the fingerprints the journal recorded for the
gateway's upstream credential.
"""

from __future__ import annotations

import json

import pytest

from conformance.exchanges import Recorded, Spec, exchange
from conformance.suite.fixtures_transit import sandwich_of, transit_chat
from conformance.transit import bearer_fingerprint, leaked, leaked_keys


def _visible(rec: Recorded) -> tuple[str, str, list[dict], list[str]]:
    """(what it was, everything the client could read, the journal entries, the fingerprints of the tokens the
    transcript masks in the response headers: a key a header echoed is masked there, never shown)."""
    head = "\n".join(f"{k}: {v}" for k, v in rec.headers.multi_items())
    what = f"{rec.spec.method} {rec.spec.path}" + (f" ({json.dumps(rec.spec.script.respond)[:60]})"
                                                  if rec.spec.script is not None and rec.spec.script.respond else "")
    return what, head + "\n" + rec.raw.decode("utf-8", "replace"), list(rec.journal or []), rec.last.masked_prints


@exchange(view=_visible)
def disclosure_exchanges(plan):
    side = sandwich_of(plan)
    side.identify()  # the upstream's Server banner (recorded, so a replay knows it too)
    return [transit_chat(plan, "discok"), transit_chat(plan, "discstream", stream=True),
            transit_chat(plan, "disc503", respond={"status": 503}),
            transit_chat(plan, "disc401", respond={"status": 401}),
            transit_chat(plan, "disc429", respond={"status": 429, "headers": {"Retry-After": "1",
                                                                               "retry-after-ms": "10"}}),
            Spec.get("/models")]


def _report(expect, rid: str, what: str, found: list[str]) -> None:
    expect(rid, not found, expected=f"no {what} in client-visible headers or bodies", received="; ".join(found[:6]))


@pytest.mark.requirement("DISCLOSURE-001")
def test_no_upstream_address(disclosure_exchanges, plan_context, expect):
    """DISCLOSURE-001: "Client-visible headers and bodies MUST NOT contain the upstream's URL or address (host and
    port)." """
    side = plan_context.sandwich
    port = side.address.rsplit(":", 1)[-1]
    needles = {"the upstream address": side.address, "the upstream address (localhost)": f"localhost:{port}",
               "the upstream address (loopback)": f"127.0.0.1:{port}"}
    found = [f"{what}: {hit}" for what, text, _, _ in disclosure_exchanges for hit in leaked(text, needles)]
    _report(expect, "DISCLOSURE-001", "upstream address", found)


@pytest.mark.requirement("DISCLOSURE-002")
def test_no_upstream_key(disclosure_exchanges, conformance, expect):
    """DISCLOSURE-002: "Client-visible headers and bodies MUST NOT contain the gateway's upstream key." """
    from conformance.embedded import UPSTREAM_KEY

    mine = bearer_fingerprint(conformance.api_key) if conformance.api_key else None
    prints = {(e.get("authorization") or {}).get("fingerprint") for _, _, journal, _ in disclosure_exchanges
              for e in journal}
    prints = {p for p in prints if p and p != mine}
    if not prints:
        pytest.skip("unobservable: no upstream attempt carried a credential the journal could fingerprint")
    found = [f"{what}: a token that is the upstream credential ({tok})" for what, text, _, _ in disclosure_exchanges
             for tok in leaked_keys(text, prints)]
    found += [f"{what}: a response header carries the upstream credential (masked in the transcript)"
              for what, _, _, masked in disclosure_exchanges if prints & set(masked)]
    found += [f"{what}: the suite's upstream key" for what, text, _, _ in disclosure_exchanges
              if UPSTREAM_KEY in text and bearer_fingerprint(UPSTREAM_KEY) != mine]
    _report(expect, "DISCLOSURE-002", "upstream key", found)


@pytest.mark.requirement("DISCLOSURE-003")
def test_no_upstream_banner(disclosure_exchanges, plan_context, expect):
    """DISCLOSURE-003: "The upstream's server banner (its Server header) SHOULD NOT appear in client-visible headers
    or bodies." """
    banner = plan_context.sandwich.banner
    if not banner:
        pytest.skip("unobservable: the upstream sends no Server header")
    found = [f"{what}: {hit}" for what, text, _, _ in disclosure_exchanges
             for hit in leaked(text, {f"the upstream's Server banner {banner!r}": banner})]
    _report(expect, "DISCLOSURE-003", "upstream Server banner", found)
