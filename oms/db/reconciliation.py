"""Reconciliation records: our side of a day's comparison, and every run with its differences.

`reconciliation_runs` holds one row per shop and day of each run, with its totals;
`reconciliation_differences` every difference that run found and its resolution. Runs
are kept, never overwritten: the rows of successive runs over one day show how the
differences were settled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from oms.db.dialect import chunks
from oms.db.schema import (
    orders,
    reconciliation_differences,
    reconciliation_runs,
    review_queue,
)
from oms.domain.order import OrderStatus
from oms.domain.reconciliation import DifferenceKind, ShopDay, Sighting

_SIGHTING_COLUMNS = (orders.c.platform_order_id, orders.c.status, orders.c.platform_status,
                     orders.c.platform_updated_at)


def our_sightings(conn: Connection, shop_code: str, start: datetime, end: datetime,
                  also: Iterable[str] = ()) -> dict[str, Sighting]:
    """The shop's orders last updated (platform time) in [start, end), and those among
    `also` whenever they were updated, by platform order id."""
    in_window = select(*_SIGHTING_COLUMNS).where(orders.c.shop_code == shop_code,
                                                 orders.c.platform_updated_at >= start,
                                                 orders.c.platform_updated_at < end)
    found = {row.platform_order_id: _sighting(row) for row in conn.execute(in_window)}
    return found | sightings_of(conn, shop_code, also)


def sightings_of(conn: Connection, shop_code: str, platform_order_ids: Iterable[str]) -> dict[str, Sighting]:
    """These orders of the shop as we hold them now (those we hold), by platform order id."""
    found: dict[str, Sighting] = {}
    for part in chunks(sorted(set(platform_order_ids))):
        query = select(*_SIGHTING_COLUMNS).where(orders.c.shop_code == shop_code, orders.c.platform_order_id.in_(part))
        found.update((row.platform_order_id, _sighting(row)) for row in conn.execute(query))
    return found


def _sighting(row) -> Sighting:
    return Sighting(row.platform_order_id, OrderStatus(row.status), row.platform_status, row.platform_updated_at)


def waiting_for_review(conn: Connection, shop_code: str,
                       platform_order_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The open review-queue entries of these orders (a person was asked already), as
    fingerprint -> (platform order id, its reasons)."""
    waiting: dict[str, tuple[str, str]] = {}
    for part in chunks(sorted(set(platform_order_ids))):
        query = select(review_queue.c.fingerprint, review_queue.c.platform_order_id, review_queue.c.reasons).where(
            review_queue.c.shop_code == shop_code, review_queue.c.platform_order_id.in_(part),
            review_queue.c.resolved_at.is_(None))
        for row in conn.execute(query):
            waiting[row.fingerprint] = (row.platform_order_id, "; ".join(row.reasons))
    return waiting


def already_reported(conn: Connection, shop_code: str, day: str,
                     keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (platform order id, kind) pairs an earlier run of this shop and day recorded:
    a re-run over the same day tells nobody again about what they heard of."""
    wanted = set(keys)
    if not wanted:
        return set()
    query = (select(reconciliation_differences.c.platform_order_id, reconciliation_differences.c.kind)
             .select_from(reconciliation_differences.join(
                 reconciliation_runs, reconciliation_runs.c.id == reconciliation_differences.c.run_id))
             .where(and_(reconciliation_runs.c.shop_code == shop_code, reconciliation_runs.c.day == day)))
    seen: set[tuple[str, str]] = set()
    for part in chunks(sorted({pid for pid, _ in wanted})):
        seen.update((row.platform_order_id, row.kind)
                    for row in conn.execute(query.where(reconciliation_differences.c.platform_order_id.in_(part))))
    return seen & wanted


def record_run(conn: Connection, shop_day: ShopDay, ran_at: datetime, flow_run_id: str | None = None) -> int:
    """Store one shop and day of a run and every difference with its resolution; returns
    the run's id."""
    comparison = shop_day.comparison
    run_id = conn.execute(reconciliation_runs.insert().values(
        shop_code=shop_day.shop_code, platform=shop_day.platform, day=comparison.window.day.isoformat(),
        window_start=comparison.window.start, window_end=comparison.window.end,
        platform_orders=comparison.platform_orders, our_orders=comparison.our_orders,
        missing_here=comparison.count(DifferenceKind.MISSING_HERE), backfilled=shop_day.backfilled,
        missing_on_platform=comparison.count(DifferenceKind.MISSING_ON_PLATFORM),
        status_differences=comparison.count(DifferenceKind.STATUS), ran_at=ran_at, flow_run_id=flow_run_id,
    ).returning(reconciliation_runs.c.id)).scalar_one()
    rows = [{"run_id": run_id, "shop_code": shop_day.shop_code, "platform_order_id": s.difference.platform_order_id,
             "kind": s.difference.kind.value, "platform_status": s.difference.platform_status,
             "our_status": s.difference.our_status.value if s.difference.our_status else None,
             "resolution": s.resolution.text, "found_at": ran_at}
            for s in shop_day.settled]
    if rows:
        conn.execute(reconciliation_differences.insert(), rows)
    return run_id


@dataclass(frozen=True)
class RunRow:
    id: int
    shop_code: str
    platform: str
    day: str
    platform_orders: int
    our_orders: int
    missing_here: int
    backfilled: int
    missing_on_platform: int
    status_differences: int
    ran_at: datetime


def latest_runs(conn: Connection, shop_code: str | None = None, limit: int = 20) -> list[RunRow]:
    """The newest runs (one row per shop and day of a run), newest first."""
    query = select(*(reconciliation_runs.c[name] for name in RunRow.__dataclass_fields__))
    if shop_code:
        query = query.where(reconciliation_runs.c.shop_code == shop_code)
    query = query.order_by(reconciliation_runs.c.ran_at.desc(), reconciliation_runs.c.id.desc()).limit(limit)
    return [RunRow(**row._mapping) for row in conn.execute(query)]


def differences_of(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """The differences one run recorded, in the order it found them."""
    query = (select(reconciliation_differences).where(reconciliation_differences.c.run_id == run_id)
             .order_by(reconciliation_differences.c.id))
    return [dict(row._mapping) for row in conn.execute(query)]
