"""Installing the package must not break another pytest run: the suite's option names and dests (``--gw-*``,
``gw_*``) clash neither with widely used plugins nor with the generic options a project's conftest defines.

pytest itself refuses a run whose plugins declare the same option name or dest ("option names ... already added",
"option dest ... already used"), so a run with all of them loaded that starts is the proof.
"""

# rename_options: skip-file (the short spellings here are the point: a project's own options, llm-conformance's)
import importlib.metadata
import os
import subprocess
import sys

import pytest

# distribution -> an option it declares (shows it was loaded beside ours)
PLUGINS = {
    "pytest-profiling": "--profile-svg",
    "pytest-base-url": "--base-url",
    "pytest-html": "--self-contained-html",
    "pytest-timeout": "--timeout",
    "pytest-randomly": "--randomly-seed",
    "pytest-benchmark": "--benchmark-skip",
    "pytest-django": "--ds",
    "pytest-cov": "--cov",
    "pytest-xdist": "--numprocesses",
}


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def pytest_help(cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS",
                                                             "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def help_with_every_plugin(tmp_path_factory) -> subprocess.CompletedProcess:
    """One ``pytest --help`` in which every installed plugin loads beside ours."""
    return pytest_help(tmp_path_factory.mktemp("plugins"))


@pytest.mark.parametrize("distribution", sorted(PLUGINS))
def test_our_options_load_beside_a_widely_used_plugin(distribution, help_with_every_plugin):
    if not installed(distribution):
        pytest.skip(f"{distribution} is not installed in this environment")
    proc = help_with_every_plugin  # the run starts only when no option name or dest clashes
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert PLUGINS[distribution] in proc.stdout, f"{distribution} did not load"
    assert "--gw-profile" in proc.stdout and "--target-url" in proc.stdout


def test_no_suite_option_keeps_a_generic_name():
    from conformance.cli import short_spellings

    kept = {"--target-url", "--conformance", "--upstream", "--upstream-listen"}
    recorder_names = {*short_spellings().values()}
    assert recorder_names and all(name.startswith("--gw-") for name in recorder_names)
    from conformance.options import RUN_SELECTING

    assert all(dest.startswith("gw_") or "--" + dest.replace("_", "-") in kept for dest in RUN_SELECTING)


CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--model", default="none")
    parser.addoption("--profile", default="none")
    parser.addoption("--header", action="append", default=[])
    parser.addoption("--api-key", default=None)
"""

TEST = """
def test_options(pytestconfig):
    opt = pytestconfig.option
    assert (opt.model, opt.profile, opt.header, opt.api_key) == ("m", "p", ["X: 1"], "k")
"""


def test_a_project_conftest_with_generic_options_still_starts(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_generic.py").write_text(TEST)
    # only our plugin beside the conftest: pytest-profiling (dev extra) declares --profile itself
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.entry", "-p", "no:cacheprovider",
                           "--model", "m", "--profile", "p", "--header", "X: 1", "--api-key", "k"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout
    assert "--gw-profile" in subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.entry", "--help"],
                                            cwd=tmp_path, env=env, capture_output=True, text=True,
                                            timeout=120).stdout  # our plugin was loaded
    assert "conformance:" not in proc.stdout  # the project's --profile selects no conformance run
