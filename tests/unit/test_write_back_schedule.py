"""When a failed tracking push is tried again, and when it is handed to a person."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from oms.domain.write_back import (
    Attempt, GiveUp, Retry, RetryPolicy, gave_up_reason, next_step, not_accepted_reason,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
FIVE = timedelta(minutes=5)
POLICY = RetryPolicy(retries=3, interval=FIVE)


def failures(count: int, start: datetime = T0) -> list[Attempt]:
    return [Attempt("retry", start + n * FIVE) for n in range(count)]


def test_a_first_failure_is_tried_again_one_interval_later():
    assert next_step([], T0, POLICY) == Retry(at=T0 + FIVE)


def test_the_third_retry_is_still_scheduled_and_the_fourth_failure_gives_up():
    assert isinstance(next_step(failures(2), T0 + 2 * FIVE, POLICY), Retry)
    step = next_step(failures(3), T0 + 3 * FIVE, POLICY)
    assert step == GiveUp(attempts=4, since=T0)


def test_the_number_of_retries_is_configurable():
    assert isinstance(next_step(failures(3), T0 + 3 * FIVE, RetryPolicy(retries=5, interval=FIVE)), Retry)
    assert isinstance(next_step([], T0, RetryPolicy(retries=0, interval=FIVE)), GiveUp)


def test_rate_limits_do_not_use_up_an_orders_retries():
    history = [Attempt("retry", T0), Attempt("deferred", T0 + FIVE), Attempt("deferred", T0 + 2 * FIVE),
               Attempt("retry", T0 + 3 * FIVE)]
    assert isinstance(next_step(history, T0 + 4 * FIVE, POLICY), Retry)


def test_an_operators_requeue_starts_a_fresh_round_of_retries():
    history = [*failures(3), Attempt("gave_up", T0 + 3 * FIVE), Attempt("requeued", T0 + timedelta(hours=2))]
    assert next_step(history, T0 + timedelta(hours=2), POLICY) == Retry(at=T0 + timedelta(hours=2) + FIVE)


def test_the_give_up_reason_says_how_long_it_tried_and_what_to_run():
    step = next_step(failures(3), T0 + 3 * FIVE, POLICY)
    reason = gave_up_reason(step, T0 + 3 * FIVE, "HTTP 502", "pdd", "shop-a")
    assert reason.startswith("gave up after 4 attempts over 15 minutes: HTTP 502")
    assert "`oms writeback retry --shop shop-a` once Pinduoduo answers again" in reason


def test_a_carrier_refused_before_sending_names_the_carriers_the_platform_takes():
    reason = not_accepted_reason("jd", "JT", {"SF", "ZTO"})
    assert reason.startswith("JD does not accept carrier JT; accepted: SF, ZTO.")
