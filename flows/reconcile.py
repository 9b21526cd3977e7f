"""`reconcile-orders`: each shop's days, the platform's orders against ours; backfill what
we miss, record every difference, publish the report.

The window. A reconciled day is midnight to midnight in the warehouse's time zone
(settings.warehouse_timezone). Platforms list orders by update time and only know each
order's latest state, so the platform is asked once per shop for every order updated
from the first day's start, less `ingest_overlap_minutes`, up to now less the
platform's fetch lag. Reading past the day's end is the point: an order we hold as of
day D that the platform updated since is compared with its current status, not missed.
The few minutes before the start are cheap insurance against platforms whose time
filters round to the second or the minute; each listed order is still put under the day
of its exact update time. One thing this window cannot see: an order updated in the
last minutes of the platform's lag, which would show as missing on the platform. A
platform listing with a newer copy than ours is taken as the truth; an order whose copy
we stored after the listing was read (ours is newer) shows no difference.

The backfill. The orders we miss, and those the platform moved on from our copy, run
through the ingest's own clean, validate and store tasks on the payloads this run just
listed, rather than an `ingest-orders` subflow over the day: that would page through
the whole day a second time to restore a handful of orders, and take a second slot of
the platform's limit while this run still holds one.

The alert. RECONCILIATION_DIFFERENCES goes out once per shop and run, only for
differences a person must settle (missing on the platform, conflicting statuses, a
platform status we cannot follow, a backfill newly parked in the review queue) and that
no earlier run over the same day recorded. What the run settled itself, a status where
we are simply ahead, and orders already waiting in the review queue tell nobody; the
report lists them all.

A shop that fails holds back no other: the report names it, and the run fails at the
end, so the failed-run alert fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from oms.config import get_settings
from oms.db.shops import active_shop_codes, get_shop
from oms.domain.reconciliation import (
    ShopDay,
    day_window,
    days_ending,
    platform_copies_wanted,
    previous_day,
    render_report,
    totals_row,
)
from tasks.reconcile import (
    compare_with_ours,
    list_platform_orders,
    settle_and_record,
    take_platform_copies,
    tell_about_differences,
)
from tasks.resources import CONNECTORS, engine

REPORT_KEY = "reconciliation-report"
TOTALS_KEY = "reconciliation-totals"
DIFFERENCES_IN_REPORT = 20


@dataclass
class Reconciliation:
    days: list[date]
    shop_days: list[ShopDay] = field(default_factory=list)
    not_reconciled: dict[str, str] = field(default_factory=dict)
    alerted: list[str] = field(default_factory=list)  # shops whose differences went to on-call
    report: str = ""


@flow(name="reconcile-orders")
def reconcile_orders(shop_codes: list[str] | None = None, day: date | None = None,
                     days: int | None = None) -> Reconciliation:
    """Reconcile `days` days (default: the setting reconcile_days) ending with `day`
    (default: yesterday in the warehouse's time zone) for these shops (default: every
    active shop)."""
    settings = get_settings()
    zone = ZoneInfo(settings.warehouse_timezone)
    now = datetime.now(timezone.utc)
    outcome = Reconciliation(days_ending(day or previous_day(now, zone), days or settings.reconcile_days))
    for shop_code in shop_codes or _active_shops():
        try:
            _reconcile_shop(shop_code, outcome, zone, now)
        except Exception as error:  # recorded in the report, and the run fails below
            get_run_logger().exception("shop %s could not be reconciled", shop_code)
            outcome.not_reconciled[shop_code] = f"{type(error).__name__}: {error}"[:300]
    outcome.report = render_report(outcome.shop_days, settings.warehouse_timezone, first=DIFFERENCES_IN_REPORT,
                                   not_reconciled=outcome.not_reconciled)
    _publish(outcome)
    if outcome.not_reconciled:
        raise RuntimeError(f"reconciliation failed for {len(outcome.not_reconciled)} shop(s): "
                           f"{', '.join(sorted(outcome.not_reconciled))}")
    return outcome


def _active_shops() -> list[str]:
    with engine().connect() as conn:
        return active_shop_codes(conn)


def _reconcile_shop(shop_code: str, outcome: Reconciliation, zone: ZoneInfo, now: datetime) -> None:
    with engine().connect() as conn:
        platform = get_shop(conn, shop_code)["platform"]
    served_until = now - CONNECTORS[platform].fetch_lag
    windows = [w for w in (day_window(d, zone, served_until) for d in outcome.days) if not w.is_empty]
    if not windows:
        return
    overlap = timedelta(minutes=get_settings().ingest_overlap_minutes)
    listing = list_platform_orders(shop_code, windows[0].start - overlap, served_until)
    compared = compare_with_ours(shop_code, quote(windows), quote(listing.sightings))
    parked = take_platform_copies(shop_code, listing, platform_copies_wanted(compared.comparisons), compared.waiting)
    settled = settle_and_record(shop_code, platform, quote(compared), quote(parked), flow_run_id=flow_run.id)
    outcome.shop_days += settled.shop_days
    if tell_about_differences(settled):
        outcome.alerted.append(shop_code)


def _publish(outcome: Reconciliation) -> None:
    create_markdown_artifact(key=REPORT_KEY, markdown=outcome.report,
                             description="Reconciliation with the platforms: totals and differences (order ids only)")
    rows = [totals_row(sd) for sd in outcome.shop_days]
    if rows:
        create_table_artifact(key=TOTALS_KEY, table=rows,
                              description="Reconciliation totals per shop and day")
