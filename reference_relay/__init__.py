"""The reference relay: a minimal, correct OpenAI-compatible gateway that forwards to an upstream (any
OpenAI-compatible server, in this project a reference server) and relays answers and streams back.

It is the proof side of sandwich mode (issue 12): with ``--fault ID`` it breaks one transit requirement on purpose
(``faults.py``), with ``--variant NAME`` it switches on a valid alternative (``variants.py``). Faults and variants
are transforms at a few seams (``seams.py``); the relay's own code has no branch per fault.

It imports ``gateway_spec`` only: never ``reference_server`` nor ``conformance``.
"""

from reference_relay.app import create_relay_app
from reference_relay.config import RelayConfig

__all__ = ["RelayConfig", "create_relay_app"]
