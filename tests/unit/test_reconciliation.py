"""The reconciliation rules: which day an order is compared under, how statuses stand to
each other, what became of each difference, and the report."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from oms.domain.order import OrderStatus as S
from oms.domain.reconciliation import (
    RESOLUTION_LENGTH,
    AfterBackfill,
    DifferenceKind,
    Settled,
    ShopDay,
    Sighting,
    StatusGap,
    compare_days,
    day_window,
    days_ending,
    platform_copies_wanted,
    previous_day,
    render_report,
    settle,
    status_gap,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 5, 1)
NOON = datetime(2026, 5, 1, 4, tzinfo=timezone.utc)  # 12:00 in Shanghai
LATE = datetime(2026, 5, 2, 12, tzinfo=timezone.utc)  # when the night run reads the platform


def seen(pid: str, status: S | None, at: datetime, word: str = "") -> Sighting:
    return Sighting(pid, status, word or (status.value if status else "unreadable"), at)


def window(day: date = DAY):
    return day_window(day, SHANGHAI, served_until=LATE)


def compare(platform: list[Sighting], ours: list[Sighting], days=(DAY,)):
    return compare_days([window(d) for d in days], {s.platform_order_id: s for s in platform},
                        {s.platform_order_id: s for s in ours})


def test_a_day_runs_from_local_midnight_to_local_midnight_and_stops_where_the_platform_serves():
    w = window()
    assert (w.start, w.end) == (datetime(2026, 4, 30, 16, tzinfo=timezone.utc),
                                datetime(2026, 5, 1, 16, tzinfo=timezone.utc))
    today = day_window(DAY, SHANGHAI, served_until=NOON)
    assert today.end == NOON and not today.is_empty
    assert day_window(date(2026, 5, 3), SHANGHAI, served_until=NOON).is_empty


def test_the_night_run_reconciles_yesterday_in_the_warehouse_time_zone():
    # 01:00 on 2 May in Shanghai is still 1 May in UTC.
    assert previous_day(datetime(2026, 5, 1, 17, tzinfo=timezone.utc), SHANGHAI) == date(2026, 5, 1)
    assert days_ending(DAY, 3) == [date(2026, 4, 29), date(2026, 4, 30), DAY]
    assert days_ending(DAY, 0) == [DAY]


@pytest.mark.parametrize("ours, theirs, gap", [
    (S.PAID, S.PAID, None),
    (S.ALLOCATED, S.PAID, StatusGap.OURS_AHEAD),
    (S.SHIPPED, S.PAID, StatusGap.OURS_AHEAD),  # we shipped, the platform has not updated yet
    (S.DELIVERED, S.SHIPPED, StatusGap.OURS_AHEAD),
    (S.REFUNDED, S.CANCELLED, None),  # platforms close a refunded order as cancelled
    (S.PAID, S.SHIPPED, StatusGap.OURS_BEHIND),
    (S.PENDING_PAYMENT, S.PAID, StatusGap.OURS_BEHIND),
    (S.ALLOCATED, S.CANCELLED, StatusGap.OURS_BEHIND),  # the ingest follows a cancellation before a waybill
    (S.PACKING, S.CANCELLED, StatusGap.CONFLICT),  # a parcel exists: not a status flip
    (S.CANCELLED, S.PAID, StatusGap.CONFLICT),
    (S.PAID, S.PENDING_PAYMENT, StatusGap.CONFLICT),
])
def test_status_gaps_are_named_from_our_side(ours, theirs, gap):
    assert status_gap(ours, theirs) == gap


def test_an_order_we_miss_an_order_the_platform_misses_and_a_status_difference_are_found():
    platform = [seen("A", S.PAID, NOON), seen("B", S.SHIPPED, NOON), seen("C", S.PAID, NOON)]
    ours = [seen("B", S.PAID, NOON - timedelta(hours=1)), seen("C", S.PAID, NOON), seen("D", S.PAID, NOON)]
    (day,) = compare(platform, ours)
    kinds = {(d.platform_order_id, d.kind, d.gap) for d in day.differences}
    assert kinds == {("A", DifferenceKind.MISSING_HERE, None), ("B", DifferenceKind.STATUS, StatusGap.OURS_BEHIND),
                     ("D", DifferenceKind.MISSING_ON_PLATFORM, None)}
    assert (day.platform_orders, day.our_orders, day.agreed) == (3, 3, 1)
    assert platform_copies_wanted([day]) == ["A", "B"]


def test_an_order_the_platform_updated_after_the_day_is_compared_with_its_current_status():
    ours = [seen("A", S.PAID, NOON)]
    (day,) = compare([seen("A", S.CANCELLED, NOON + timedelta(days=1))], ours)
    (difference,) = day.differences
    assert (difference.kind, difference.gap, difference.platform_copy_newer) == (
        DifferenceKind.STATUS, StatusGap.OURS_BEHIND, True)
    assert day.platform_orders == 0 and day.our_orders == 1


def test_no_difference_when_our_copy_is_newer_than_the_listing():
    (day,) = compare([seen("A", S.PAID, NOON)], [seen("A", S.PACKING, NOON + timedelta(minutes=5))])
    assert day.differences == [] and day.ours_fresher == 1


def test_an_order_of_two_reconciled_days_is_compared_once_under_the_platforms_day():
    before = date(2026, 4, 30)
    ours = [seen("A", S.PAID, NOON - timedelta(days=1))]
    earlier, later = compare([seen("A", S.SHIPPED, NOON)], ours, days=(before, DAY))
    assert earlier.differences == [] and earlier.our_orders == 1
    assert [d.platform_order_id for d in later.differences] == ["A"]


def test_orders_outside_every_day_are_left_alone():
    (day,) = compare([seen("A", S.PAID, LATE - timedelta(hours=1))], [])
    assert day.differences == [] and day.platform_orders == 0


def test_an_unmappable_platform_status_is_no_status_difference_but_a_missing_order_still_is():
    (day,) = compare([seen("A", None, NOON), seen("B", None, NOON)], [seen("A", S.PAID, NOON)])
    assert day.status_unreadable == 1
    assert [(d.platform_order_id, d.kind) for d in day.differences] == [("B", DifferenceKind.MISSING_HERE)]


def settled_for(platform, ours, after: AfterBackfill) -> dict[str, str]:
    (day,) = compare(platform, ours)
    return {d.platform_order_id: settle(d, after) for d in day.differences}


def test_each_difference_gets_a_resolution_and_only_the_unsettled_ones_need_a_person():
    platform = [seen("BACK", S.PAID, NOON), seen("PARKED", S.PAID, NOON), seen("KNOWN", S.PAID, NOON),
                seen("LATE", S.CANCELLED, NOON), seen("AHEAD", S.PAID, NOON), seen("ODD", S.PAID, NOON),
                seen("PICKUP", S.SHIPPED, NOON)]
    ours = [seen("LATE", S.PAID, NOON - timedelta(hours=2)), seen("AHEAD", S.SHIPPED, NOON),
            seen("ODD", S.CANCELLED, NOON), seen("PICKUP", S.PACKING, NOON), seen("GONE", S.PAID, NOON)]
    after = AfterBackfill(
        ours_now={"BACK": seen("BACK", S.PAID, NOON), "LATE": seen("LATE", S.CANCELLED, NOON)},
        parked={"PARKED": "receiver phone is not a valid number", "KNOWN": "sku missing"},
        already_waiting=frozenset({"KNOWN"}))
    got = settled_for(platform, ours, after)
    assert {pid: r.text for pid, r in got.items()} == {
        "BACK": "backfilled",
        "PARKED": "backfill parked in review queue: receiver phone is not a valid number",
        "KNOWN": "already waiting in the review queue: sku missing",
        "LATE": "status differs: ours behind; updated from the platform (now cancelled)",
        "AHEAD": "status differs: ours ahead (the platform has not caught up yet)",
        "ODD": "status differs: conflict (ours cancelled, platform paid): a person decides",
        "PICKUP": ("status differs: ours behind (the platform has our tracking number; "
                   "the carrier's pickup scan moves us on)"),
        "GONE": "not listed by the platform: check whether it was deleted there or belongs to another shop",
    }
    assert {pid for pid, r in got.items() if r.needs_person} == {"PARKED", "ODD", "GONE"}
    assert {pid for pid, r in got.items() if r.fixed} == {"BACK", "LATE"}


def test_a_long_parking_reason_is_cut_to_the_column():
    after = AfterBackfill(ours_now={}, parked={"A": "x" * 500})
    (resolution,) = settled_for([seen("A", S.PAID, NOON)], [], after).values()
    assert len(resolution.text) == RESOLUTION_LENGTH and resolution.text.endswith("…")


def test_the_report_gives_totals_per_shop_and_the_differences_a_person_must_see_first():
    platform = [seen(f"M{n}", S.PAID, NOON) for n in range(3)] + [seen("ODD", S.PAID, NOON)]
    (day,) = compare(platform, [seen("ODD", S.CANCELLED, NOON)])
    after = AfterBackfill(ours_now={"M0": seen("M0", S.PAID, NOON), "M1": seen("M1", S.PAID, NOON),
                                    "M2": seen("M2", S.PAID, NOON)}, parked={})
    shop_day = ShopDay("pdd-1", "pdd", day, [Settled(d, settle(d, after)) for d in day.differences])
    report = render_report([shop_day], "Asia/Shanghai", first=2, not_reconciled={"jd-1": "Unavailable: HTTP 503"})
    assert "2026-05-01 (Asia/Shanghai), 1 shop(s): 4 order(s) on the platforms, 1 here; 4 difference(s), " \
           "3 settled by this run, 1 for a person." in report
    assert "| pdd-1 | pdd | 2026-05-01 | 4 | 1 | 3 | 3 | 0 | 1 | 3 | 1 |" in report
    assert "## Differences (first 2 of 4: missing_here 3, status 1)" in report
    rows = [line for line in report.splitlines() if line.startswith("| pdd-1 | 2026-05-01 |")]
    assert len(rows) == 2 and "ODD" in rows[0] and "status (conflict)" in rows[0]
    assert "- jd-1: Unavailable: HTTP 503" in report


def test_the_report_shows_what_this_run_fixed_before_what_already_waits_in_the_review_queue():
    platform = [seen("WAITS", S.PAID, NOON), seen("BACK", S.PAID, NOON)]
    (day,) = compare(platform, [])
    after = AfterBackfill(ours_now={"BACK": seen("BACK", S.PAID, NOON)}, parked={"WAITS": "sku missing"},
                          already_waiting=frozenset({"WAITS"}))
    shop_day = ShopDay("pdd-1", "pdd", day, [Settled(d, settle(d, after)) for d in day.differences])
    rows = [line for line in render_report([shop_day], "Asia/Shanghai", first=1).splitlines()
            if line.startswith("| pdd-1 | 2026-05-01 |")]
    assert len(rows) == 1 and "BACK" in rows[0] and "backfilled" in rows[0]


def test_a_report_without_differences_says_so():
    (day,) = compare([seen("A", S.PAID, NOON)], [seen("A", S.PAID, NOON)])
    report = render_report([ShopDay("pdd-1", "pdd", day)], "Asia/Shanghai")
    assert "No differences." in report and "0 difference(s)" in report
