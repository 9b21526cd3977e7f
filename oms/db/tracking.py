"""Tracking write-back in the database: which pushes are due, every attempt, the schedule.

The schedule lives here, not in a sleeping task: a retryable failure sets the shipment's
`next_push_at`, and the next scheduled run pushes what is due by then. An outage of an
hour holds no worker, and a restarted worker forgets nothing.

A shipment is due while the platform does not hold its number (`tracking_pushed_at` is
NULL), it is not voided, its last attempt did not park it (rejected or gave_up, see
`oms.domain.write_back`), and its `next_push_at` is empty or past. Every attempt is a
`tracking_pushes` row; an accepted number also locks the order's stock (the pre-ship
lock, `oms.db.stock.lock_reservations`), in the same transaction as the row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, func, or_, select, update

from oms.db.dialect import chunks
from oms.db.review import ReviewEntry, park
from oms.db.schema import orders, review_queue, shipments, tracking_pushes
from oms.db.stock import lock_reservations
from oms.domain.write_back import PARKED, REQUEUED, SUCCESS, Attempt

STAGE = "write_back"


def _last_outcome():
    return (select(tracking_pushes.c.outcome)
            .where(tracking_pushes.c.shipment_id == shipments.c.id)
            .order_by(tracking_pushes.c.id.desc()).limit(1)
            .correlate(shipments).scalar_subquery())


def _unsettled():
    """Shipments whose number some platform still has to get, parked ones excluded."""
    return and_(shipments.c.tracking_pushed_at.is_(None), shipments.c.writes_back.is_(True),
                shipments.c.voided_at.is_(None),
                # A shipment never pushed has no last outcome: coalesce, or NOT IN drops it.
                func.coalesce(_last_outcome(), "").not_in(sorted(PARKED)))


def _due(now: datetime):
    return and_(_unsettled(), or_(shipments.c.next_push_at.is_(None), shipments.c.next_push_at <= now))


def due_pushes(conn: Connection, now: datetime, limit: int, shop_code: str | None = None,
               after_id: int = 0) -> list[dict[str, Any]]:
    """Shipments due for a push at `now`, oldest first, from `after_id` on."""
    query = (
        select(shipments.c.id.label("shipment_id"), shipments.c.carrier, shipments.c.tracking_number,
               orders.c.id.label("order_id"), orders.c.platform, orders.c.shop_code,
               orders.c.platform_order_id)
        .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
        .where(_due(now), shipments.c.id > after_id,
               *([orders.c.shop_code == shop_code] if shop_code else []))
        .order_by(shipments.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def shops_with_due_pushes(conn: Connection, now: datetime) -> list[str]:
    query = (select(distinct(orders.c.shop_code))
             .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
             .where(_due(now)).order_by(orders.c.shop_code))
    return list(conn.execute(query).scalars())


@dataclass
class Backlog:
    """One shop's write-back after a run, for the run's artifact."""

    due: int = 0  # could be pushed now (a run stopped early by a rate limit leaves some)
    retrying: int = 0  # failed retryably, next attempt scheduled
    parked: int = 0  # waiting in the review queue for a person


def backlog(conn: Connection, now: datetime) -> dict[str, Backlog]:
    found: dict[str, Backlog] = defaultdict(Backlog)
    # Grouped over a subquery: PostgreSQL will not match `next_push_at > $1` in the select
    # list with the same comparison bound again in GROUP BY.
    unsettled = (select(orders.c.shop_code, (func.coalesce(shipments.c.next_push_at > now, False)).label("later"))
                 .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
                 .where(_unsettled()).subquery())
    waiting = (select(unsettled.c.shop_code, unsettled.c.later, func.count())
               .group_by(unsettled.c.shop_code, unsettled.c.later))
    for shop, later, count in conn.execute(waiting):
        if later:
            found[shop].retrying += count
        else:
            found[shop].due += count
    # Open entries, not parked shipments: an operator who settled one in the platform's
    # back office resolves the entry, and it leaves the count.
    parked = (select(review_queue.c.shop_code, func.count())
              .where(review_queue.c.stage == STAGE, review_queue.c.resolved_at.is_(None))
              .group_by(review_queue.c.shop_code))
    for shop, count in conn.execute(parked):
        found[shop].parked += count
    return dict(found)


def attempts_so_far(conn: Connection, shipment_id: int) -> list[Attempt]:
    query = (select(tracking_pushes.c.outcome, tracking_pushes.c.at)
             .where(tracking_pushes.c.shipment_id == shipment_id).order_by(tracking_pushes.c.id))
    return [Attempt(outcome, at) for outcome, at in conn.execute(query)]


def record_attempt(conn: Connection, shipment: dict[str, Any], *, outcome: str, now: datetime,
                   request: Any = None, response: Any = None, error: str | None = None,
                   retry_at: datetime | None = None) -> None:
    """Keep the attempt and move the shipment's schedule with it.

    `retry_at` is when the next attempt is due (a retryable failure); without it the
    shipment is due again at once (a deferral) unless the outcome settles it.
    """
    conn.execute(tracking_pushes.insert().values(
        shipment_id=shipment["shipment_id"], platform=shipment["platform"], shop_code=shipment["shop_code"],
        attempt=attempt_count(conn, shipment["shipment_id"]) + 1, outcome=outcome,
        request=request, response=response, error=error, at=now,
    ))
    values: dict[str, Any] = {"next_push_at": retry_at}
    if outcome == SUCCESS:
        values["tracking_pushed_at"] = now
    conn.execute(update(shipments).where(shipments.c.id == shipment["shipment_id"]).values(**values))
    if outcome == SUCCESS:
        lock_reservations(conn, [shipment["order_id"]], now)


def park_push(conn: Connection, shipment: dict[str, Any], reason: str, now: datetime,
              attempt: int, error: str | None = None) -> None:
    """Put a push that will not go through by itself in front of a person."""
    payload = {"shipment_id": shipment["shipment_id"], "carrier": shipment["carrier"],
               "tracking_number": shipment["tracking_number"],
               # The attempt number keeps a second parking after a requeue a new entry.
               "attempt": attempt, "error": error}
    park(conn, [ReviewEntry(STAGE, shipment["platform"], shipment["shop_code"],
                            shipment["platform_order_id"], [reason], payload)], now)


def attempt_count(conn: Connection, shipment_id: int) -> int:
    return conn.execute(select(func.count()).where(tracking_pushes.c.shipment_id == shipment_id)).scalar_one()


def retry_parked(conn: Connection, now: datetime, *, shop_code: str | None = None,
                 review_id: int | None = None) -> int:
    """Make parked pushes due again (the operator fixed the cause, or the platform is back).

    Each gets a `requeued` row, which starts a fresh round of retries, and its review
    entry is resolved. Entries of shipments already pushed or voided are only resolved.
    Returns how many pushes are due again.
    """
    query = select(review_queue.c.id, review_queue.c.payload).where(
        review_queue.c.stage == STAGE, review_queue.c.resolved_at.is_(None))
    if shop_code:
        query = query.where(review_queue.c.shop_code == shop_code)
    if review_id is not None:
        query = query.where(review_queue.c.id == review_id)
    entries = conn.execute(query).all()
    wanted = sorted({entry.payload["shipment_id"] for entry in entries})
    parked: list[dict[str, Any]] = []
    for part in chunks(wanted):
        parked.extend(dict(row._mapping) for row in conn.execute(
            select(shipments.c.id.label("shipment_id"), orders.c.platform, orders.c.shop_code)
            .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
            .where(shipments.c.id.in_(part), shipments.c.tracking_pushed_at.is_(None),
                   shipments.c.voided_at.is_(None), func.coalesce(_last_outcome(), "").in_(sorted(PARKED)))))
    for shipment in parked:
        record_attempt(conn, shipment, outcome=REQUEUED, now=now,
                       error="an operator asked for this push to be tried again")
    for part in chunks([entry.id for entry in entries]):
        conn.execute(update(review_queue).where(review_queue.c.id.in_(part))
                     .values(resolved_at=now, resolution="pushed again by an operator"))
    return len(parked)

