"""When a shop counts as down or stalled, and what on-call is told."""

from datetime import datetime, timedelta, timezone

from oms.domain.errors import RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.health import (
    INGEST_GRACE,
    ProbeFailure,
    StallVerdict,
    classify_failure,
    down_message,
    format_age,
    is_failing,
    looks_stalled,
    owed_window,
    recovered_headline,
    stall_verdict,
    stalled_message,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
TWO_HOURS = timedelta(hours=2)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def test_a_shop_is_failing_only_once_the_threshold_of_failures_in_a_row_is_reached():
    assert not is_failing(0, 3)
    assert not is_failing(2, 3)
    assert is_failing(3, 3)
    assert is_failing(7, 3)


def test_a_threshold_below_one_still_needs_a_failure():
    assert not is_failing(0, 0)
    assert is_failing(1, 0)


def test_errors_are_classified_by_what_on_call_should_do():
    assert classify_failure(TokenExpired("x")) is ProbeFailure.AUTHORISATION
    assert classify_failure(RateLimited("x")) is ProbeFailure.THROTTLED
    assert classify_failure(Unavailable("x")) is ProbeFailure.UNAVAILABLE
    assert classify_failure(Rejected("x")) is ProbeFailure.REFUSED
    assert classify_failure(KeyError("x")) is ProbeFailure.INTERNAL


def test_ingest_fetching_nothing_for_longer_than_the_span_looks_stalled():
    assert looks_stalled(ago(minutes=3), ago(hours=3), NOW, TWO_HOURS)
    assert looks_stalled(ago(minutes=3), None, NOW, TWO_HOURS)


def test_a_recent_non_empty_fetch_does_not_look_stalled():
    assert not looks_stalled(ago(minutes=3), ago(minutes=90), NOW, TWO_HOURS)


def test_a_shop_whose_ingest_does_not_run_is_not_a_silent_stall():
    assert not looks_stalled(None, None, NOW, TWO_HOURS)
    assert not looks_stalled(ago(hours=3), ago(hours=5), NOW, TWO_HOURS)


def test_a_stall_needs_orders_on_the_platform():
    assert stall_verdict(ago(minutes=3), ago(hours=3), NOW, TWO_HOURS, 4) is StallVerdict.STALLED
    assert stall_verdict(ago(minutes=3), ago(hours=3), NOW, TWO_HOURS, 0) is StallVerdict.CLEAR


def test_without_a_count_from_the_platform_the_stall_is_unknown():
    assert stall_verdict(ago(minutes=3), ago(hours=3), NOW, TWO_HOURS, None) is StallVerdict.UNKNOWN


def test_a_shop_that_fetched_orders_recently_is_clear_whatever_the_platform_says():
    assert stall_verdict(ago(minutes=3), ago(minutes=10), NOW, TWO_HOURS, None) is StallVerdict.CLEAR


def test_a_stopped_ingest_leaves_the_stall_unknown_rather_than_resolved():
    assert stall_verdict(ago(hours=5), ago(hours=6), NOW, TWO_HOURS, 3) is StallVerdict.UNKNOWN


def test_orders_are_owed_from_the_span_ago_to_where_the_last_fetch_ended():
    start, end = owed_window(ago(minutes=1), NOW, TWO_HOURS, timedelta(minutes=2))
    assert start == ago(hours=2)
    assert end == ago(minutes=3) - INGEST_GRACE


def test_orders_updated_after_the_last_fetch_are_not_yet_owed():
    # A quiet shop's first order in hours, arriving after the last ingest, is no stall.
    start, end = owed_window(ago(minutes=4), NOW, TWO_HOURS, timedelta(0))
    assert end < ago(minutes=4)


def test_no_window_is_owed_when_the_span_is_shorter_than_the_grace():
    assert owed_window(NOW, NOW, timedelta(minutes=1), timedelta(0)) is None


def test_ages_read_as_short_human_durations():
    assert format_age(timedelta(seconds=42)) == "42 s"
    assert format_age(timedelta(minutes=12, seconds=30)) == "12 min"
    assert format_age(timedelta(hours=2)) == "2 h"
    assert format_age(timedelta(hours=2, minutes=30)) == "2.5 h"
    assert format_age(timedelta(days=3, hours=1)) == "3 d"
    assert format_age(None) == "never"


def test_a_down_message_names_platform_shop_error_and_the_next_step():
    text = down_message("shopee", "sg-1", 3, "[shopee] invalid access_token (code 401)",
                        ProbeFailure.AUTHORISATION, timedelta(minutes=9))
    assert "shopee shop sg-1" in text and "3 times in a row" in text
    assert "invalid access_token" in text and "last answered 9 min ago" in text
    assert "seller centre" in text and "`oms tokens refresh sg-1`" in text


def test_an_outage_points_at_the_platform_not_at_the_token():
    text = down_message("jd", "jd-1", 4, "HTTP 502", ProbeFailure.UNAVAILABLE, None)
    assert "never answered" in text and "status page" in text
    assert "oms tokens refresh" not in text


def test_a_stall_message_says_how_long_how_many_and_where_to_look():
    text = stalled_message("pdd", "pdd-1", timedelta(hours=2), 17)
    assert "stored nothing for 2 h" in text and "at least 17 orders" in text
    assert "ingest-orders runs of pdd-1" in text and "watermark" in text


def test_recovery_headlines_say_what_is_back():
    assert recovered_headline("jd", "jd-1", "connector-down") == "jd shop jd-1 answers again"
    assert recovered_headline("jd", "jd-1", "connector-stalled") == "jd shop jd-1 ingests orders again"
