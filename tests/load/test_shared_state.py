"""Proof under load: real gunicorn workers and server processes sharing one real redis-server count exactly.

* 4 gunicorn workers, one Redis: a 3-a-minute key admits exactly 3 of 32 concurrent requests; X-Mock-Fail-Times 2
  fails exactly 2 requests; a rule registered through one worker is honoured by the others (``times`` counted
  across them). The shared journal's ``pid`` shows the requests really were spread over several workers.
* The same across two server processes on different ports (standing in for two hosts) sharing the Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.server_process import free_port, stop, wait_healthy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LIMITED_KEY = "sk-three-a-minute"
TEST_KEY = "sk-conformance-test"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def server_env(redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "REFERENCE_SERVER_STATE": redis_url, "REFERENCE_SERVER_PROFILE": "openai",
            "REFERENCE_SERVER_KEYS": json.dumps({LIMITED_KEY: {"requests_per_minute": 3}}), **extra}


def start_gunicorn(redis_url: str, workers: int) -> tuple[subprocess.Popen, str]:
    pytest.importorskip("gunicorn")
    port = free_port()
    env = server_env(redis_url, REFERENCE_SERVER_BIND=f"127.0.0.1:{port}", REFERENCE_SERVER_WORKERS=str(workers),
                     REFERENCE_SERVER_THREADS="8")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "reference_server/gunicorn_conf.py"),
                             "reference_server.wsgi:app"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, timeout=120.0)
    return proc, url


def start_cli(redis_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "reference_server", "--port", str(port), "--state", redis_url],
                            env=server_env(redis_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, timeout=120.0)
    return proc, url


def burst(urls: list[str], count: int, key: str, body: dict = BODY, headers: dict | None = None) -> list[int]:
    """``count`` concurrent chat requests, spread round-robin over ``urls``, each on its own connection."""

    def one(n: int) -> int:
        with httpx.Client(timeout=30) as client:  # a fresh connection each: gunicorn hands them to any worker
            return client.post(urls[n % len(urls)] + "/v1/chat/completions", json=body,
                               headers={"Authorization": f"Bearer {key}", **(headers or {})}).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def journal_pids(url: str) -> set[int]:
    return {entry["pid"] for entry in httpx.get(url + "/_mock/requests").json()["data"]}


def check_shared_state(urls: list[str]) -> None:
    httpx.post(urls[0] + "/_mock/reset").raise_for_status()
    statuses = burst(urls, 32, LIMITED_KEY)
    assert Counter(statuses) == {200: 3, 429: 29}
    assert len(journal_pids(urls[-1])) > 1, "the requests were not spread over several processes"

    httpx.post(urls[-1] + "/_mock/reset").raise_for_status()
    statuses = burst(urls, 16, TEST_KEY, headers={"X-Mock-Fail-Times": "2", "X-Mock-Fail-Key": "load"})
    assert Counter(statuses) == {503: 2, 200: 14}
    assert len(journal_pids(urls[0])) > 1

    httpx.post(urls[0] + "/_mock/reset").raise_for_status()
    resp = httpx.post(urls[0] + "/_mock/scripts", json={"rules": [
        {"id": "five", "match": {"nonce": "load-test"}, "times": 5, "respond": {"status": 502}}]})
    assert resp.status_code == 201
    marked = {**BODY, "messages": [{"role": "user", "content": "hi [[mock:load-test]]"}]}
    statuses = burst(urls, 16, TEST_KEY, body=marked)
    assert Counter(statuses) == {502: 5, 200: 11}
    entries = httpx.get(urls[-1] + "/_mock/requests", params={"nonce": "load-test"}).json()["data"]
    assert sorted(e["attempt"] for e in entries) == list(range(1, 17))
    assert len({e["pid"] for e in entries if e["rule"] == "five"}) > 1, "one process served the whole rule"


def test_four_gunicorn_workers_share_one_redis(redis_url):
    proc, url = start_gunicorn(redis_url, workers=4)
    try:
        check_shared_state([url])
    finally:
        stop(proc)


def test_two_server_processes_share_one_redis(redis_url):
    first, url_a = start_cli(redis_url)
    try:
        second, url_b = start_cli(redis_url)
        try:
            check_shared_state([url_a, url_b])
        finally:
            stop(second)
    finally:
        stop(first)


def test_gunicorn_with_an_unreachable_redis_stops_with_one_clear_error():
    pytest.importorskip("gunicorn")
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = server_env(url, REFERENCE_SERVER_BIND=f"127.0.0.1:{free_port()}", REFERENCE_SERVER_WORKERS="2")
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "reference_server/gunicorn_conf.py"),
                           "reference_server.wsgi:app"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"reference_server: error: state store {url} unavailable: cannot connect" in proc.stderr
    assert "Traceback" not in proc.stderr
