"""Parsing wrk's output and writing its request script (wrk itself is not needed)."""

import pytest

from benchmarks import wrk
from benchmarks.workload import FIRST_SEEN, STREAM

OUTPUT = """Running 5s test @ http://127.0.0.1:8000/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.91ms    1.02ms  21.10ms   80.00%
    Req/Sec     5.61k   310.22     6.01k    78.00%
  Latency Distribution
     50%    2.75ms
     75%    3.20ms
     90%    3.90ms
     99%  850.00us
  27904 requests in 5.00s, 22.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   5580.12
Transfer/sec:      4.42MB
"""


def test_parse_output_reads_rate_percentiles_and_failures():
    result = wrk.parse_output(OUTPUT)
    assert result.rps == 5580.12 and result.requests == 27904
    assert result.p50 == pytest.approx(0.00275) and result.p99 == pytest.approx(0.00085)
    assert result.errors == 3 and result.bad_status == 7


def test_parse_output_seconds_unit_and_no_failures():
    text = OUTPUT.replace("2.75ms", "1.50s").split("  Socket errors")[0] + "Requests/sec:   10.00\n"
    result = wrk.parse_output(text)
    assert result.p50 == 1.5 and result.errors == 0 and result.bad_status == 0


def test_parse_output_rejects_other_text():
    with pytest.raises(ValueError):
        wrk.parse_output("unable to connect to 127.0.0.1:1 Connection refused")


def test_lua_script_escapes_body_and_sets_headers():
    script = wrk.lua_script(STREAM)
    assert 'wrk.method = "POST"' in script
    assert '\\"stream\\":true' in script
    assert 'wrk.headers["X-Mock-Provider"] = "echo"' in script


def test_lua_script_of_a_first_seen_workload_makes_a_body_per_request():
    script = wrk.lua_script(FIRST_SEEN)
    assert "function request()" in script and "thread:set" in script and "word0" not in script.split("function")[-1]
