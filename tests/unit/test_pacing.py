"""The per-shop token bucket that paces connector requests."""

from __future__ import annotations

import threading

import pytest

from connectors.pacing import RequestRate, TokenBucket, shop_bucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_goes_out_at_once_and_the_next_call_waits_for_one_token():
    clock = FakeClock()
    bucket = TokenBucket(RequestRate(per_second=2, burst=3), clock=clock, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(4)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3] == pytest.approx(0.5)


def test_idle_time_refills_the_bucket_but_never_beyond_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(RequestRate(per_second=1, burst=2), clock=clock, sleep=clock.sleep)
    bucket.take(), bucket.take()
    clock.now += 60
    assert [bucket.take(), bucket.take()] == [0, 0]
    assert bucket.take() == pytest.approx(1.0)


def test_callers_queued_behind_a_debt_wait_in_turn():
    clock = FakeClock()
    bucket = TokenBucket(RequestRate(per_second=4, burst=1), clock=clock, sleep=lambda s: None)
    waits = [bucket.take() for _ in range(4)]  # nobody's sleep advances the clock
    assert waits == pytest.approx([0, 0.25, 0.5, 0.75])


def test_one_shop_shares_one_bucket_and_another_shop_has_its_own():
    rate = RequestRate(per_second=5, burst=5)
    assert shop_bucket("taobao", "a", rate) is shop_bucket("taobao", "a", rate)
    assert shop_bucket("taobao", "a", rate) is not shop_bucket("taobao", "b", rate)
    assert shop_bucket("taobao", "a", RequestRate(1, 1)).rate == RequestRate(1, 1)


def test_concurrent_callers_never_exceed_the_rate():
    clock = FakeClock()
    lock = threading.Lock()
    bucket = TokenBucket(RequestRate(per_second=10, burst=2), clock=clock, sleep=lambda s: None)
    waits: list[float] = []

    def call() -> None:
        wait = bucket.take()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 2 free, then one every 0.1 s: the last of 12 calls waits 1.0 s.
    assert max(waits) == pytest.approx(1.0)
    assert sorted(waits) == pytest.approx([0, 0] + [0.1 * n for n in range(1, 11)])


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        RequestRate(per_second=0, burst=1)
