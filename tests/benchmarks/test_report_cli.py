"""Report writing and rendering, command-line parsing, /proc readings, and a tiny end-to-end run."""

import argparse
import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import __main__ as cli
from benchmarks import report, servers, targets


def sample_report():
    results = {"nonstream": {"bare": {"rps": 1000.0, "p50_ms": 1.0, "p99_ms": 2.0},
                             "reference": {"rps": 850.0, "p50_ms": 1.2, "p99_ms": math.nan},
                             "ratio_rps": 0.85, "ratio_p50": 1.2}}
    return {"generator": "asyncio", "gunicorn": ["--workers", "2"],
            "settings": {"duration": 1.0, "rounds": 1, "connections": 8}, "results": results,
            "targets": targets.evaluate(results)}


def test_write_report_writes_timestamped_and_latest_with_nan_as_null(tmp_path):
    path = report.write_report(sample_report(), tmp_path)
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert json.loads(path.read_text()) == latest
    assert latest["results"]["nonstream"]["reference"]["p99_ms"] is None


def test_render_shows_figures_ratio_and_verdicts():
    text = report.render(sample_report())
    assert "nonstream req/s" in text and "0.85" in text
    assert "PASS     reference non-streaming chat, a repeated request >= 0.8x bare" in text


def test_only_keeps_run_order_and_rejects_unknown_sections():
    assert cli.parse_only("memory,nonstream") == ("nonstream", "memory")
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_only("nonstream,speed")


def test_quick_and_skip_suite_shape_the_settings():
    args = cli.build_parser().parse_args(["--quick", "--skip-suite", "--generator", "asyncio", "--workers", "1"])
    settings = cli.settings_from(args)
    assert (settings.duration, settings.rounds) == (1.0, 1)
    assert "suite" not in settings.sections and settings.gunicorn.workers == 1


def test_proc_readings_of_a_child_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in servers.child_pids(os.getpid())
        assert servers.vm_rss_mib(child.pid) > 1
    finally:
        child.kill()
        child.wait()
    assert servers.vm_rss_mib(child.pid) is None


def test_render_shows_how_far_the_rounds_spread():
    sample = sample_report()
    sample["results"]["nonstream"]["ratio_rps_rounds"] = [0.83, math.nan, 0.78, 0.91]
    assert "0.78-0.91" in report.render(sample)
    assert "ratio by round" not in report.render(sample_report())


def test_tiny_run_completes(capsys):
    argv = ["--quick", "--only", "nonstream,memory", "--generator", "asyncio", "--duration", "0.3",
            "--workers", "1", "--no-write"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "nonstream req/s" in out and "worker RSS MiB" in out and "nonstream req/s ratio by round" in out


def test_sync_worker_class_is_given_one_thread():
    # gunicorn turns sync with threads > 1 (from gunicorn_conf.py) into gthread; the comparison would be void.
    assert servers.GunicornConfig(worker_class="sync", threads=32).args()[-2:] == ["--threads", "1"]
    assert servers.GunicornConfig(worker_class="gthread", threads=32).args()[-2:] == ["--threads", "32"]


def test_production_config_is_read_from_the_gunicorn_conf(tmp_path, monkeypatch):
    conf = tmp_path / "gunicorn_conf.py"
    conf.write_text('workers = 3\nworker_class = "gthread"\nthreads = 7\naccesslog = "-"\n')
    monkeypatch.setattr(servers, "GUNICORN_CONF", conf)
    assert servers.production_config() == servers.GunicornConfig(workers=3, worker_class="gthread", threads=7)
    monkeypatch.setattr(servers, "GUNICORN_CONF", tmp_path / "absent.py")
    assert servers.production_config() == servers.GunicornConfig()


def test_worker_classes_always_include_the_configured_one():
    from benchmarks.sections import _worker_classes

    assert _worker_classes("gthread")[:2] == ["sync", "gthread"]
    assert _worker_classes("eventlet")[-1] == "eventlet"


def test_suite_command_documented_and_lean(tmp_path):
    from benchmarks.suite_cost import read_run_totals, suite_command

    documented = suite_command("openai", tmp_path, 2)
    assert documented[3:] == ["--pyargs", "conformance.suite", "--gw-profile", "openai", "--gw-report-dir", str(tmp_path),
                              "-q", "-p", "no:cacheprovider", "-n", "2"]
    lean = suite_command("openai", tmp_path, 2, autoload=False)
    assert lean[3:7] == ["-p", "conformance.entry", "-p", "xdist.plugin"]
    (tmp_path / "results.json").write_text('{"run": {"requests": 58, "completion_tokens": 240}}')
    assert read_run_totals(tmp_path / "results.json") == {"requests": 58, "completion_tokens": 240}
    assert read_run_totals(tmp_path / "absent.json") == {"requests": None, "completion_tokens": None}


def test_black_box_command_names_the_target_but_never_the_key(tmp_path):
    from benchmarks.suite_cost import suite_command

    command = suite_command("openai", tmp_path, 1, target=("http://127.0.0.1:9", "sk-secret-bench-key"))
    assert command[command.index("--target-url") + 1] == "http://127.0.0.1:9"
    assert not any("sk-secret-bench-key" in part for part in command)  # the key travels by CONFORMANCE_API_KEY


def test_black_box_run_spends_what_the_suite_reports():
    """A real black-box run: the suite against the reference server in its own gunicorn, through --target-url."""
    from benchmarks.suite_cost import run_black_box

    run = run_black_box("openai")
    assert run["exit_code"] == 0, run["tail"]
    assert run["requests"] and run["completion_tokens"]
