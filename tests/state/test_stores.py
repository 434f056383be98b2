"""The state stores (reference_server/state): memory and a real redis-server behave the same."""

from __future__ import annotations

import threading

import pytest

from reference_server.policy.limits import KeyPolicy, Snapshot
from reference_server.state import MemoryStore, StateStoreUnavailable, open_store
from reference_server.state.base import display_url
from tests.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("redis_url")
    store = open_store(url, "test")
    yield store
    store.close()


def test_counters_count_from_one_and_reset(store):
    assert [store.incr("a"), store.incr("a"), store.incr("b")] == [1, 2, 1]
    store.reset_counters()
    assert store.incr("a") == 1


def test_counters_are_exact_under_concurrency(store):
    seen: list[int] = []
    lock = threading.Lock()

    def work():
        for _ in range(25):
            value = store.incr("c")
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 201))


def test_rules_keep_order_refuse_taken_ids_and_bump_the_version(store):
    v0 = store.rules_version()
    store.add_rules([{"id": "a", "respond": {}}, {"id": "b", "respond": {}}])
    assert store.rules_version() != v0
    with pytest.raises(KeyError) as taken:
        store.add_rules([{"id": "c", "respond": {}}, {"id": "a", "respond": {}}])
    assert taken.value.args[0] == 1
    assert [r["id"] for r in store.rule_list()] == ["a", "b"]  # nothing of the refused batch was added
    store.incr("rule:a:served")
    assert store.delete_rule("a") and not store.delete_rule("a")
    assert store.incr("rule:a:served") == 1  # a deleted rule's counters go with it
    store.clear_rules()
    assert store.rule_list() == []


def test_journal_keeps_the_newest_entries(store):
    journal = store.journal(3)
    for n in range(5):
        journal.record({"time": 1.0 + n, "method": "POST", "path": f"/p{n}", "query": "", "raw_headers": [],
                        "raw_body": b"{}", "body_bytes": 2, "status": 200})
    assert [e["path"] for e in journal.entries()] == ["/p2", "/p3", "/p4"]
    assert [e["path"] for e in journal.entries(1)] == ["/p4"]
    journal.clear()
    assert len(journal) == 0


def policy(**kw) -> KeyPolicy:
    return KeyPolicy(**{"tier": None, "requests_per_minute": 3, "tokens_per_minute": 100, **kw})


def test_redis_windows_match_the_memory_limiter(redis_url):
    from reference_server.policy.limits import RateLimiter

    redis_store = open_store(redis_url, "limits")
    limiters = [RateLimiter(), redis_store.rate_limiter(Snapshot)]
    for limiter in limiters:
        results = [limiter.hit("k", policy()) for _ in range(4)]
        assert [ok for ok, _ in results] == [True, True, True, False]
        assert [s.remaining_requests for _, s in results] == [2, 1, 0, 0]
        assert all(55 <= s.reset_seconds <= 60 for _, s in results)
        assert limiter.charge("k", policy(), 60)[0] is None
        reason, snap = limiter.charge("k", policy(), 50)
        assert reason == "tokens" and snap.remaining_tokens == 40  # a refused charge spends nothing
        assert limiter.charge("d", policy(daily_requests=1), 1)[0] is None
        assert limiter.charge("d", policy(daily_requests=1), 1)[0] == "daily"
        assert limiter.charge("w", policy(balance=1.5), 1)[0] is None
        assert limiter.charge("w", policy(balance=1.5), 1)[0] is None
        assert limiter.charge("w", policy(balance=1.5), 1)[0] == "balance"
        limiter.reset()
        assert limiter.hit("k", policy())[1].remaining_requests == 2
    redis_store.close()


def test_unreachable_redis_is_one_error_naming_the_url():
    port = RedisServer().port  # nothing listens there
    with pytest.raises(StateStoreUnavailable) as err:
        open_store(f"redis://:s3cret@127.0.0.1:{port}/0")
    assert f"redis://***@127.0.0.1:{port}/0" in str(err.value) and "s3cret" not in str(err.value)


def test_redis_going_away_raises_unavailable_and_recovers():
    server = RedisServer().start()
    try:
        store = open_store(server.url, "x")
        assert store.incr("a") == 1
        server.stop()
        with pytest.raises(StateStoreUnavailable) as err:
            store.incr("a")
        assert server.url in str(err.value)
        server.start()
        assert store.incr("a") == 1  # a fresh (empty) redis: the client reconnects by itself
    finally:
        server.stop()


def test_unknown_scheme_and_display_url():
    with pytest.raises(ValueError, match="unknown state store"):
        open_store("mysql://x")
    assert display_url("redis://h:1/0") == "redis://h:1/0"
