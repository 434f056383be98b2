"""Process-wide set-up for the project's own tests.

Several tests run the suite in-process (pytester's ``runpytest_inprocess``, the proof matrix's ``pytest.main``).
pytester drops every module first imported during such a run, so a library first imported there (httpx imports
httpcore lazily, the suite imports openai only when an SDK check runs) would leave the process with two copies:
classes of the discarded one in some maps, of the fresh one elsewhere, and ``pytest.raises(httpx.ConnectError)``
then sees a raw ``httpcore.ConnectError``. Importing them here, before any test, keeps one copy per process.
"""

import httpcore  # noqa: F401
import httpx  # noqa: F401
import openai  # noqa: F401
import pytest

import conformance.options
from tests.proof import summary


@pytest.fixture(autouse=True)
def _registry_unpatched():
    """Undo the registry patch that inner suite runs apply (tests/conformance/test_plugin.py CONFTEST).

    Their conftest patches ``conformance.options.load_requirements`` when imported and restores it in
    ``pytest_unconfigure``, which pytest skips when a run exits before configuring (``--list-requirements``). The
    patch then outlived the run, and a later suite run in the same worker (the proof matrix) graded fake T-*
    requirements too.
    """
    original = conformance.options.load_requirements
    yield
    conformance.options.load_requirements = original


def pytest_configure(config: pytest.Config) -> None:
    summary.register(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """The negative-control matrix's size and state, when matrix rows ran (tests/proof/summary.py)."""
    summary.terminal_summary(terminalreporter, config)
