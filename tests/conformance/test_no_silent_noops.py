"""Options that used to do nothing quietly: unmatched globs, unknown baseline IDs, invalid profiles; and the run's
end: the failing requirements named one per line, ``--gw-write-baseline``."""

import pytest
import yaml

from gateway_spec import ProfileError, load_profile
from tests.conformance.test_plugin import inner_suite, results

pytest_plugins = ["pytester"]


@pytest.fixture
def suite(pytester, monkeypatch):
    return inner_suite(pytester, monkeypatch)


def test_an_unmatched_requirement_glob_is_a_usage_error_naming_close_ids(suite):
    result = suite("--gw-requirement", "T-01*")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--gw-requirement T-01* matches no requirement ID; close: " in err and "T-001" in err


def test_a_lower_case_glob_matches_like_upper_case(suite):
    result = suite("--gw-requirement", "t-002")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_must_fail checks T-001 and T-002
    assert set(results(suite.pytester)["requirements"]) == {"T-001", "T-002"}


def test_a_baseline_naming_an_unknown_requirement_is_a_usage_error(suite):
    suite.pytester.makefile(".yaml", baseline="expected_failures:\n  - {requirement: T-0001, reason: typo}\n")
    result = suite("--gw-baseline", "baseline.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown requirement IDs:\n  T-0001; close: T-001" in result.stderr.str()


def test_an_invalid_custom_profile_is_a_usage_error_naming_the_field(suite):
    raw = yaml.safe_load((suite.pytester.path / "profile.yaml").read_text())
    raw["models"]["unknown_status"] = "404"
    del raw["auth"]["key_format"]
    (suite.pytester.path / "broken.yaml").write_text(yaml.safe_dump(raw))
    result = suite("--gw-profile", "broken.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "does not match spec/schemas/profile.schema.json" in err
    assert "auth: missing required keys: key_format" in err
    assert "models.unknown_status: '404' is not one of" in err or "models.unknown_status: '404'" in err


def test_load_profile_validates_files_but_not_bundled_names(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nbase_path: v1\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "base_path: 'v1' does not match" in str(info.value)
    assert "(top level): missing required keys: title, source, auth, models" in str(info.value)
    assert load_profile(path, validate=False).name == "mine"
    assert load_profile("unit23").name == "unit23"


SOURCE = '''
import pytest

@pytest.mark.requirement("T-001")
def test_pass(expect):
    expect("T-001", True, expected=1, received=1)

@pytest.mark.requirement("T-001", "U-001")
def test_must_fail(expect):
    expect("T-001", False, expected="one", received="two")

@pytest.mark.requirement("T-002")
def test_should_warn(expect):
    expect("T-002", False, expected="a", received="b")
'''


def test_the_closing_summary_names_each_failing_requirement_and_write_baseline_starts_one(suite):
    first = suite("--gw-write-baseline", "baseline.yaml", "--gw-requirement", "T-00[12]", "--gw-requirement", "U-*",
                  source=SOURCE)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    lines = first.stdout.str().splitlines()
    assert any(line.startswith("FAIL  T-001 ") and "MUST   The gateway MUST do one." in line for line in lines)
    assert any(line.startswith("WARN  T-002 ") for line in lines)
    assert not any(line.startswith(("FAIL  U-001", "WARN  U-001")) for line in lines)
    doc = yaml.safe_load((suite.pytester.path / "baseline.yaml").read_text())
    assert [e["requirement"] for e in doc["expected_failures"]] == ["T-001", "T-002"]
    second = suite("--gw-baseline", "baseline.yaml", "--gw-requirement", "T-00[12]", "--gw-requirement", "U-*",
                   source=SOURCE)
    verdicts = {rid: r["verdict"] for rid, r in results(suite.pytester)["requirements"].items()
                if rid.startswith("T-")}
    assert "FAIL" not in verdicts.values() and verdicts["T-001"] == "XFAIL", verdicts
    assert second.ret == pytest.ExitCode.OK, second.stdout.str()
