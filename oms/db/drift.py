"""Status drifts in the database: which orders to compare, what each comparison found,
the repairs, and the report.

A drift is one row of `status_drifts` per order and kind while it lasts (its `open_key`
"order_id/kind" is unique, so a re-run sees the same drift, never a copy). A repaired
drift is recorded already closed: the statuses agree again. One that needs a person
stays open, with `last_seen_at` moving on every run, until the two agree or the kind
changes; then it is closed. Cancellations are repaired by the shipping records' own
`cancel_after_waybill`, the code ingest uses too, so the two can never disagree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.history import record_history
from oms.db.review import ReviewEntry, park
from oms.db.schema import interceptions, orders, shipments, status_drifts
from oms.db.shipping import cancel_after_waybill
from oms.domain.drift import Drift, OrderFacts, Parcel, Repair, classify
from oms.domain.order import TERMINAL, OrderStatus, apply_transition

ACTOR = "drift-check"


@dataclass(frozen=True)
class StoredOrder:
    id: int
    platform: str
    shop_code: str
    platform_order_id: str
    facts: OrderFacts


@dataclass(frozen=True)
class Observation:
    """The platform's view of one of our orders, mapped to our statuses."""

    platform_order_id: str
    status: OrderStatus
    platform_status: str  # the platform's own word, as it sent it
    updated_at: datetime


@dataclass
class Found:
    """One drift seen in this run, and what was done about it."""

    order_id: int
    platform_order_id: str
    kind: str
    our_status: str
    platform_status: str
    since: datetime
    action: str  # repaired|interception|review|none
    new: bool  # first seen in this run: the run that tells a person


@dataclass
class Comparison:
    checked: int = 0
    not_ours: int = 0  # the platform has orders we never stored: ingest's to fetch
    found: list[Found] = field(default_factory=list)
    interceptions_raised: int = 0
    closed: int = 0  # drifts seen before that are gone now


# ------------------------------------------------------------------ what to compare


def oldest_platform_update(conn: Connection, shop_code: str, cutoff: datetime) -> datetime | None:
    """Where the platform window must start: the oldest platform update time among the
    shop's orders we changed since `cutoff` or whose drift is still open (a change on the
    platform is newer than what we stored), never before `cutoff`. None: nothing to check."""
    open_drift = select(status_drifts.c.order_id).where(status_drifts.c.open_key.is_not(None))
    oldest = conn.execute(
        select(func.min(orders.c.platform_updated_at)).where(
            orders.c.shop_code == shop_code,
            or_(orders.c.modified_at >= cutoff, orders.c.id.in_(open_drift)))
    ).scalar_one()
    if oldest is None:
        return None
    return max(_aware(oldest), cutoff)


def stored_orders(conn: Connection, shop_code: str, platform_order_ids: list[str],
                  cutoff: datetime) -> dict[str, StoredOrder]:
    """Our orders among these ids with their parcels, by platform order id. Orders that
    ended (cancelled, delivered) before `cutoff` and have no open drift are left out: a
    platform touching them later is after-sales, not drift."""
    found: dict[str, StoredOrder] = {}
    rows: list = []
    for part in chunks(sorted(set(platform_order_ids))):
        rows.extend(conn.execute(
            select(orders.c.id, orders.c.platform, orders.c.shop_code, orders.c.platform_order_id,
                   orders.c.status, orders.c.modified_at)
            .where(orders.c.shop_code == shop_code, orders.c.platform_order_id.in_(part))))
    ids = [row.id for row in rows]
    drifting = _orders_with_open_drifts(conn, ids)
    parcels = _parcels(conn, ids)
    for row in rows:
        status = OrderStatus(row.status)
        if status in TERMINAL and _aware(row.modified_at) < cutoff and row.id not in drifting:
            continue
        found[row.platform_order_id] = StoredOrder(row.id, row.platform, row.shop_code, row.platform_order_id,
                                                   OrderFacts(status, tuple(parcels.get(row.id, ()))))
    return found


def _orders_with_open_drifts(conn: Connection, order_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for part in chunks(order_ids):
        found.update(conn.execute(select(status_drifts.c.order_id).where(
            status_drifts.c.order_id.in_(part), status_drifts.c.open_key.is_not(None))).scalars())
    return found


def _parcels(conn: Connection, order_ids: list[int]) -> dict[int, list[Parcel]]:
    found: dict[int, list[Parcel]] = {}
    for part in chunks(order_ids):
        query = select(shipments.c.order_id, shipments.c.tracking_pushed_at, shipments.c.warehouse_step,
                       shipments.c.handed_over_at, shipments.c.picked_up_at, shipments.c.voided_at
                       ).where(shipments.c.order_id.in_(part)).order_by(shipments.c.id)
        for row in conn.execute(query):
            found.setdefault(row.order_id, []).append(Parcel(
                tracking_pushed=row.tracking_pushed_at is not None,
                scanned=row.warehouse_step is not None or row.handed_over_at is not None,
                handed_over=row.handed_over_at is not None or row.warehouse_step == "handed_over",
                picked_up=row.picked_up_at is not None,
                pushed_at=_aware(row.tracking_pushed_at) if row.tracking_pushed_at else None,
                voided=row.voided_at is not None))
    return found


# ------------------------------------------------------------------ compare, record, repair


def compare_and_repair(conn: Connection, shop_code: str, seen: list[Observation], now: datetime,
                       cutoff: datetime) -> Comparison:
    """Classify each order the platform showed, record the drifts, repair the safe ones,
    and close the drifts that are over. Idempotent: a second run over the same views
    records nothing new and repairs nothing again."""
    outcome = Comparison()
    latest: dict[str, Observation] = {}
    for view in seen:
        if view.platform_order_id not in latest or view.updated_at > latest[view.platform_order_id].updated_at:
            latest[view.platform_order_id] = view
    ours = stored_orders(conn, shop_code, list(latest), cutoff)
    outcome.not_ours = len(set(latest) - set(ours))
    current: dict[int, str | None] = {}
    for platform_order_id, order in sorted(ours.items()):
        view = latest[platform_order_id]
        drift = classify(order.facts, view.status, now)
        outcome.checked += 1
        current[order.id] = drift.kind if drift else None
        if drift is not None:
            outcome.found.append(_record_and_repair(conn, order, view, drift, now, outcome))
    outcome.closed = _close_finished(conn, current, now)
    return outcome


def _record_and_repair(conn: Connection, order: StoredOrder, view: Observation, drift: Drift,
                       now: datetime, outcome: Comparison) -> Found:
    action, detail = _repair(conn, order, view, drift, now, outcome)
    new = _record(conn, order, view, drift, action, detail, now)
    return Found(order.id, order.platform_order_id, drift.kind, order.facts.status.value, view.platform_status,
                 view.updated_at, action, new)


def _repair(conn: Connection, order: StoredOrder, view: Observation, drift: Drift, now: datetime,
            outcome: Comparison) -> tuple[str, dict[str, Any]]:
    reason = f"the platform reports {view.platform_status}"
    if drift.repair in (Repair.RELEASE_AND_STOP, Repair.INTERCEPTION):
        late = cancel_after_waybill(conn, [order.id], now, ACTOR, reason=f"cancelled on the platform ({reason})")
        outcome.interceptions_raised += len(late.raised)
        if late.voided:
            return "repaired", {"repair": "cancelled here: stock released, waybills voided"}
        if late.intercepted:
            return "interception", {"repair": "interception open for the parcel on its way"}
        return "review", {"repair": "parcel shares a box with another order: a person unpacks it"}
    if drift.repair == Repair.ADOPT_STATUS and drift.adopt is not None:
        if _adopt(conn, order, drift.adopt, now, reason):
            return "repaired", {"repair": f"moved to {drift.adopt.value}"}
        return "review", {"repair": f"could not move to {drift.adopt.value}: the order changed meanwhile"}
    if drift.repair == Repair.REVIEW:
        _park_for_review(conn, order, view, drift, now)
        return "review", {}
    return "none", {}


def _adopt(conn: Connection, order: StoredOrder, target: OrderStatus, now: datetime, reason: str) -> bool:
    change = apply_transition(order.facts.status, target, at=now, actor=ACTOR, reason=reason)
    moved = conn.execute(update(orders).where(orders.c.id == order.id, orders.c.status == order.facts.status.value)
                         .values(status=target.value, modified_at=now)).rowcount
    if moved:
        record_history(conn, [(order.id, change)])
    return bool(moved)


_WHAT_TO_DO = {
    "platform_cancelled_after_delivery": "the buyer cancelled after delivery: handle it as a return or refund",
    "platform_delivered_we_packing": ("the platform says delivered while our parcel waits for the carrier's "
                                      "pickup: check the carrier's tracking, then confirm the pickup"),
    "platform_delivered_not_by_us": "the platform says delivered but we never shipped it: find who did",
    "platform_shipped_we_cancelled": "the platform says shipped but we cancelled it: check whether goods left",
    "platform_shipped_not_by_us": ("the platform says shipped but not with a tracking number of ours: check "
                                   "whether it was shipped by hand from the platform's back-office"),
    "tracking_not_on_platform": ("we pushed the tracking number but the platform still shows the order unshipped: "
                                 "check the push in tracking_pushes and push it again by hand if needed"),
    "cancelled_here_paid_on_platform": "we cancelled an order the platform still expects to be shipped",
    "platform_unpaid_we_paid": "the platform shows the order unpaid while we took it as paid",
}


def _park_for_review(conn: Connection, order: StoredOrder, view: Observation, drift: Drift, now: datetime) -> None:
    advice = _WHAT_TO_DO.get(drift.kind, "our status and the platform's disagree: decide which is right")
    park(conn, [ReviewEntry("drift", order.platform, order.shop_code, order.platform_order_id,
                            [f"status drift {drift.kind}: ours {order.facts.status.value}, platform "
                             f"{view.platform_status}; {advice}"],
                            {"order_id": order.id, "kind": drift.kind, "our_status": order.facts.status.value,
                             "platform_status": view.platform_status})], now)


def _record(conn: Connection, order: StoredOrder, view: Observation, drift: Drift, action: str,
            detail: dict[str, Any], now: datetime) -> bool:
    """Open the drift (or note it seen again); a repaired one is stored closed. Returns
    whether this run is the first to see it."""
    key = f"{order.id}/{drift.kind}"
    repaired = action == "repaired"
    inserted = conn.execute(
        upsert_insert(conn, status_drifts).values(
            order_id=order.id, kind=drift.kind, open_key=None if repaired else key,
            our_status=order.facts.status.value, platform_status=view.platform_status, since=view.updated_at,
            detected_at=now, last_seen_at=now, action=action, detail=detail or None,
            resolved_at=now if repaired else None,
        ).on_conflict_do_nothing(index_elements=["open_key"]).returning(status_drifts.c.id)
    ).first()
    if inserted is not None:
        return True
    conn.execute(update(status_drifts).where(status_drifts.c.open_key == key)
                 .values(last_seen_at=now, our_status=order.facts.status.value,
                         platform_status=view.platform_status, action=action))
    if repaired:
        conn.execute(update(status_drifts).where(status_drifts.c.open_key == key)
                     .values(open_key=None, resolved_at=now))
    return False


def _close_finished(conn: Connection, current: dict[int, str | None], now: datetime) -> int:
    """Close the open drifts of the compared orders whose kind no longer applies."""
    closed = 0
    for part in chunks(sorted(current)):
        rows = conn.execute(select(status_drifts.c.id, status_drifts.c.order_id, status_drifts.c.kind).where(
            status_drifts.c.order_id.in_(part), status_drifts.c.open_key.is_not(None))).all()
        over = [row.id for row in rows if current[row.order_id] != row.kind]
        if over:
            closed += conn.execute(update(status_drifts).where(status_drifts.c.id.in_(over))
                                   .values(open_key=None, resolved_at=now)).rowcount
    return closed


# ------------------------------------------------------------------ the report


@dataclass
class DriftReport:
    top_kinds: list[tuple[str, int]] = field(default_factory=list)  # open drifts by kind
    open_by_shop: dict[str, int] = field(default_factory=dict)
    oldest_since: dict[str, datetime] = field(default_factory=dict)  # per kind, open drifts
    interceptions_open: list[dict[str, Any]] = field(default_factory=list)


def drift_report(conn: Connection, limit: int = 20) -> DriftReport:
    """Open drifts by kind and shop, and the interceptions still waiting for a person
    (order references and tracking numbers only: no personal data)."""
    report = DriftReport()
    open_rows = conn.execute(
        select(status_drifts.c.kind, orders.c.shop_code, func.count().label("n"),
               func.min(status_drifts.c.since).label("oldest"))
        .select_from(status_drifts.join(orders, orders.c.id == status_drifts.c.order_id))
        .where(status_drifts.c.open_key.is_not(None))
        .group_by(status_drifts.c.kind, orders.c.shop_code)).all()
    by_kind: Counter = Counter()
    for row in open_rows:
        by_kind[row.kind] += row.n
        report.open_by_shop[row.shop_code] = report.open_by_shop.get(row.shop_code, 0) + row.n
        oldest = _aware(row.oldest)
        if row.kind not in report.oldest_since or oldest < report.oldest_since[row.kind]:
            report.oldest_since[row.kind] = oldest
    report.top_kinds = by_kind.most_common()
    report.interceptions_open = [dict(row._mapping) for row in conn.execute(
        select(orders.c.shop_code, orders.c.platform_order_id, interceptions.c.carrier,
               interceptions.c.tracking_number, interceptions.c.state, interceptions.c.created_at)
        .select_from(interceptions.join(orders, orders.c.id == interceptions.c.order_id))
        .where(interceptions.c.state.in_(("open", "requested")))
        .order_by(interceptions.c.created_at, interceptions.c.id).limit(limit))]
    return report


def _aware(moment: datetime) -> datetime:
    # UTCDateTime gives aware datetimes; a naive one (an aggregate on SQLite) is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
