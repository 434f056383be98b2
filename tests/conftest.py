"""Process-wide set-up for the project's own tests.

Several tests run the suite in-process (pytester's ``runpytest_inprocess``, the proof matrix's ``pytest.main``).
pytester drops every module first imported during such a run, so a library first imported there (httpx imports
httpcore lazily, the suite imports openai only when an SDK check runs) would leave the process with two copies:
classes of the discarded one in some maps, of the fresh one elsewhere, and ``pytest.raises(httpx.ConnectError)``
then sees a raw ``httpcore.ConnectError``. Importing them here, before any test, keeps one copy per process.
"""

import json

import httpcore  # noqa: F401
import httpx  # noqa: F401
import openai  # noqa: F401
import pytest

import conformance.options
from conformance import results_schema
from tests.proof import summary


@pytest.fixture(autouse=True)
def _registry_unpatched():
    """Undo the registry patch that inner suite runs apply (tests/conformance/test_plugin.py CONFTEST).

    Their conftest patches ``conformance.options.load_requirements`` when imported and restores it in
    ``pytest_unconfigure``, which pytest skips when a run exits before configuring (``--gw-list-requirements``). The
    patch then outlived the run, and a later suite run in the same worker (the proof matrix) graded fake T-*
    requirements too.
    """
    original = conformance.options.load_requirements
    yield
    conformance.options.load_requirements = original


@pytest.fixture(autouse=True)
def _results_json_valid(request):
    """Every results.json a suite run wrote during this test (one beside a report.md, under the test's tmp_path,
    pytester's included) matches the schema shipped in the package. The proof matrix checks its own runs
    (tests/proof/matrix.py)."""
    yield
    tmp = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    for path in sorted(tmp.rglob("results.json")) if tmp is not None and tmp.is_dir() else ():
        if (path.parent / "report.md").is_file():
            results_schema.validate(json.loads(path.read_text(encoding="utf-8")))


def pytest_configure(config: pytest.Config) -> None:
    summary.register(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """The negative-control matrix's size and state, when matrix rows ran (tests/proof/summary.py)."""
    summary.terminal_summary(terminalreporter, config)
