"""Fixtures of the proof matrices. The matrix summary printed at the end of the run is in summary.py, hooked in
from tests/conftest.py: with xdist the controller never collects, so it never loads this conftest."""

from __future__ import annotations

import json

import pytest

from tests.proof import matrix


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory):
    """Folder for the report dirs of this process's suite runs."""
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="session")
def baselines(matrix_dir) -> matrix.Baselines:
    """Clean suite runs per profile (and variant set), cached for the process."""
    return matrix.Baselines(matrix_dir)


@pytest.fixture(scope="session")
def exemptions() -> matrix.Exemptions:
    """``spec/fault-exemptions.yaml``."""
    return matrix.load_exemptions()


@pytest.fixture
def record_row(request):
    """Attach a matrix row (``kind``, ``id``, ``profile``, ``status``, ...) to this test's report."""
    def record(**row) -> None:
        request.node.user_properties.append(("matrix_row", json.dumps(row, sort_keys=True)))
    return record
