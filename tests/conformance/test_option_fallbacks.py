"""Where the suite's settings come from: the command line, then the environment, then ``[pytest]`` ini keys
(pytest-base-url's order); and ``llm-conformance``'s short spellings of the ``--gw-`` options."""

# rename_options: skip-file (the short spellings here are the point: a project's own options, llm-conformance's)
import pytest

from conformance.cli import main, short_help, short_spellings, to_pytest_args
from conformance.options import ConformanceOptions, is_conformance_run

pytest_plugins = ["pytester"]

INI = """
[pytest]
conformance_target_url = http://ini.example:8000
conformance_profile = ollama
conformance_report_dir = ini-reports
"""
ENV = {"CONFORMANCE_TARGET_URL": "http://env.example:8000", "CONFORMANCE_PROFILE": "unit23",
       "CONFORMANCE_REPORT_DIR": "env-reports", "CONFORMANCE_API_KEY": "env-key"}


@pytest.fixture
def no_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def resolved(pytester, *args) -> tuple:
    config = pytester.parseconfig(*args)
    o = ConformanceOptions.from_config(config)
    return (o.target_url, o.profile, o.report_dir), o, config


def test_defaults_without_any_source(pytester, no_env):
    values, options, config = resolved(pytester)
    assert values == (None, "openai", "reports/conformance") and options.api_key is None
    assert not is_conformance_run(config)


def test_ini_keys_are_the_last_fallback(pytester, no_env):
    pytester.makeini(INI)
    values, _, config = resolved(pytester)
    assert values == ("http://ini.example:8000", "ollama", "ini-reports")
    assert not is_conformance_run(config)  # an ini file alone does not turn a pytest run into a conformance run


def test_the_environment_wins_over_the_ini_file(pytester, no_env):
    pytester.makeini(INI)
    for name, value in ENV.items():
        no_env.setenv(name, value)
    values, options, config = resolved(pytester)
    assert values == ("http://env.example:8000", "unit23", "env-reports") and options.api_key == "env-key"
    assert not is_conformance_run(config)


def test_the_command_line_wins_over_both(pytester, no_env):
    pytester.makeini(INI)
    for name, value in ENV.items():
        no_env.setenv(name, value)
    values, options, config = resolved(pytester, "--target-url", "http://cli.example:8000/", "--gw-profile",
                                       "openai-compatible", "--gw-report-dir", "cli-reports", "--gw-api-key", "cli")
    assert values == ("http://cli.example:8000", "openai-compatible", "cli-reports") and options.api_key == "cli"
    assert is_conformance_run(config)


def test_llm_conformance_takes_the_short_spellings():
    aliases = short_spellings()
    assert aliases["--profile"] == "--gw-profile" and aliases["--api-key"] == "--gw-api-key"
    assert "--target-url" not in aliases  # kept as it is
    assert to_pytest_args(["--profile=unit23", "--api-key", "k", "--gw-model", "m", "--target-url", "u", "-k", "x"]) \
        == ["--gw-profile=unit23", "--gw-api-key", "k", "--gw-model", "m", "--target-url", "u", "-k", "x"]


def test_llm_conformance_help_shows_the_short_spellings():
    text = "  --gw-profile=NAME|PATH\n  --gw-fuzz             Add fuzzing (--gw-fuzz-examples).\n"
    assert short_help(text) == "  --profile=NAME|PATH\n  --fuzz                Add fuzzing (--fuzz-examples).\n"


def test_llm_conformance_runs_with_a_short_spelling(capsys):
    assert main(["--profile", "openai", "--list-requirements", "--requirement", "MODELS-00[12]"]) == 0
    out = capsys.readouterr().out
    assert "MODELS-001" in out and "MODELS-002" in out and "MODELS-003" not in out
