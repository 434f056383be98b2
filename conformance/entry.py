"""The pytest11 entry point (``llm_gateway_conformance``): what every pytest run in an environment with the package
installed loads, so it stays small.

In every run it only declares the options (``conformance.options``, ``conformance.fuzz``), so that a conformance
option always parses. Only in a conformance run (a conformance option on the command line, or the bundled suite
among the paths: ``conformance.options.is_conformance_run``) does it register the plugin proper
(``conformance.plugin``: collection, grading, preflight, reports), the generic fixtures (``conformance.fixtures``:
``client``, ``expect``, ``profile``, ``target``, ...), the fuzz hooks (``conformance.fuzz``) and the run's end
(``conformance.closing``: failing requirements listed, ``--gw-write-baseline``). An unrelated run
therefore gets no fixture, no hook and no import of httpx, werkzeug, schemathesis or allure from this package.
"""

from __future__ import annotations

import importlib.util

import pytest

from conformance.fuzz import add_options as add_fuzz_options
from conformance.options import add_options, is_conformance_run

PLUGINS = (("conformance.plugin", "llm-gateway-conformance-plugin"),
           ("conformance.fixtures", "llm-gateway-conformance-fixtures"),
           ("conformance.fuzz", "llm-gateway-conformance-fuzz"),
           ("conformance.closing", "llm-gateway-conformance-closing"))


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    add_fuzz_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config):
    """``--gw-list-requirements`` lists and ``--gw-discover`` probes, each exiting before any configuration."""
    if config.option.gw_discover:
        from conformance.feature_discovery import discover
        from conformance.options import ConformanceOptions

        return discover(ConformanceOptions.from_config(config), config)
    if not config.option.gw_list_requirements:
        return None
    from conformance import plugin

    return plugin.pytest_cmdline_main(config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: the plugin's pytest_configure runs as it is registered, and must come before junitxml's and
    # allure's, which read their output options in their own pytest_configure.
    if not is_conformance_run(config):
        return
    if config.option.gw_fuzz and importlib.util.find_spec("schemathesis") is None:
        raise pytest.UsageError("--gw-fuzz needs schemathesis: pip install 'llm-gateway-conformance[fuzz]'")
    for module_name, name in PLUGINS:
        module = importlib.import_module(module_name)
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, name)
