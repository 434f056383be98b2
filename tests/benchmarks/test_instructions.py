"""The callgrind section: instructions per request, a figure the machine's other load cannot move."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import __main__ as cli
from benchmarks import instructions, report, targets
from benchmarks.servers import BARE_APP, GunicornConfig
from benchmarks.workload import NONSTREAM


def test_dump_total_reads_the_summary_or_totals_line():
    assert instructions.dump_total("version: 1\ncmd: python\nsummary: 123456\n") == 123456
    assert instructions.dump_total("events: Ir\nfl=x\n1 5\ntotals: 987\n") == 987
    with pytest.raises(ValueError):
        instructions.dump_total("events: Ir\n")


def test_the_server_runs_inside_callgrind_following_the_fork_into_the_worker(tmp_path):
    server = instructions.CallgrindServer(BARE_APP, GunicornConfig(workers=1), out_dir=tmp_path, port=8123)
    command = server.command()
    assert command[:3] == ["valgrind", "--tool=callgrind", "--trace-children=yes"]
    assert command[3] == f"--callgrind-out-file={tmp_path}/callgrind.%p"
    assert "gunicorn" in command and command[-1] == BARE_APP and "127.0.0.1:8123" in command


def test_quick_runs_leave_it_out_unless_asked_for():
    quick = cli.settings_from(cli.build_parser().parse_args(["--quick"]))
    asked = cli.settings_from(cli.build_parser().parse_args(["--quick", "--only", "instructions"]))
    full = cli.settings_from(cli.build_parser().parse_args([]))
    assert "instructions" not in quick.sections and "instructions" in full.sections
    assert asked.sections == ("instructions",) and asked.instruction_requests == 20
    assert full.instruction_requests == instructions.REQUESTS


def _render(counted):
    results = {"instructions": counted}
    return report.render({"generator": "wrk", "gunicorn": [], "settings": {"duration": 1.0, "rounds": 1,
                                                                          "connections": 8},
                          "results": results, "targets": targets.evaluate(results)})


def test_the_table_shows_both_counts_and_bare_over_reference():
    text = _render({"bare": 1_120_456.0, "reference": 1_465_278.0, "ratio": 0.7647, "requests": 300,
                    "workload": "nonstream"})
    assert "nonstream instructions/request (callgrind)  1,120,456  1,465,278  0.76 (bare/ref)" in text


def test_the_table_shows_the_first_seen_count_beside_the_repeated_one():
    text = _render({"bare": 1_120_456.0, "reference": 1_465_278.0, "ratio": 0.7647, "requests": 300,
                    "workload": "nonstream",
                    "first_seen": {"bare": 1_130_000.0, "reference": 2_500_000.0, "ratio": 0.452}})
    assert "first-seen instructions/request (callgrind)  1,130,000  2,500,000  0.45 (bare/ref)" in text


def test_without_valgrind_the_table_says_so():
    assert "valgrind is not installed" in _render({"skipped": "valgrind is not installed"})


@pytest.mark.slow
@pytest.mark.skipif(not instructions.available(), reason="valgrind is not installed")
def test_a_real_count_of_the_bare_app(tmp_path: Path):
    figures = instructions.measure({"bare": (BARE_APP, {})}, GunicornConfig(), NONSTREAM, requests=10, warm_up=2)
    # A Flask request under gunicorn runs some hundreds of thousands to a few million instructions.
    assert 2e5 < figures["bare"] < 2e7
