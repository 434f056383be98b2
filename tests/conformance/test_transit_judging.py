"""Scripted sandwich exchanges are judged only when an attempt reached the scripted upstream."""

import pytest

from conformance.exchanges import CallResult
from conformance.suite.fixtures_transit import skip_unless_upstream_reached


def test_no_upstream_attempt_is_unobservable_not_a_verdict():
    """A gateway answering from its own state (a cooldown 429) says nothing of how it relays the upstream's
    failure: the case SKIPs, naming what the gateway answered."""
    with pytest.raises(pytest.skip.Exception, match="no attempt reached the upstream; the gateway answered with no HTTP answer on its own"):
        skip_unless_upstream_reached(CallResult("sdk5xx", [], journal=[]))


@pytest.mark.parametrize("journal", [None, [{"status": 502, "nonce": "n"}]])
def test_an_attempt_or_no_sandwich_is_judged(journal):
    call = CallResult("sdk5xx", [], journal=journal)  # None: not sandwich mode (the embedded server's X-Mock-*)
    skip_unless_upstream_reached(call)  # no skip
