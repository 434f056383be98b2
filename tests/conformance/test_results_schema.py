"""results.json's schema_version and the JSON Schema shipped in the package."""

import copy
import json
import re

import pytest

from conformance import results_schema
from conformance.baseline import Baseline
from conformance.redact import Redactor
from conformance.report import build_results, write_reports
from tests.conformance.test_report import CASES, REGISTRY, RUN


def test_the_schema_is_shipped_inside_the_package_and_is_a_valid_schema():
    schema = results_schema.schema()
    assert schema["properties"]["schema_version"]["pattern"].startswith("^1")
    results_schema._validator()  # check_schema ran


def test_a_written_results_json_validates_and_carries_its_version(tmp_path):
    results = build_results(CASES, REGISTRY, Baseline(), RUN)
    write_reports(tmp_path, results, CASES, Redactor())
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema_version"] == results_schema.SCHEMA_VERSION
    assert data["run"]["label"] == "fake@gw"
    results_schema.validate(data)


@pytest.mark.parametrize("breakage, where", [
    (lambda d: d.pop("schema_version"), "(document)"),
    (lambda d: d["requirements"]["T-001"].update(verdict="BROKEN"), "requirements/T-001/verdict"),
    (lambda d: d["cases"][0].update(duration_ms=-1), "cases/0/duration_ms"),
    (lambda d: d["run"].pop("label"), "run"),
])
def test_a_broken_document_is_refused_naming_the_field(breakage, where):
    data = copy.deepcopy(build_results(CASES, REGISTRY, Baseline(), RUN))
    breakage(data)
    with pytest.raises(results_schema.ResultsInvalid, match=re.escape(f"at {where}:")):
        results_schema.validate(data)


def test_major_version():
    assert results_schema.major("1.0") == 1 and results_schema.major("2.3") == 2
    assert results_schema.major(None) is None and results_schema.major("x") is None
