"""Warehouse scans: each accepted step a `shipment_steps` row, the parcel's state on `shipments`.

A scanner sends a list of scans; they are judged one after the other by the rules of
oms.domain.warehouse_steps, so "packed" then "weighed" of one parcel in one batch both
count. A tracking number shared by merged orders is one parcel: one scan moves every
shipment in it. Rows are unique per (shipment, step), so a scan repeated by a jittery
scanner, or a batch sent twice after a timeout, changes nothing.

What a person must look at is parked in the review queue: weights far from what the
SKUs add up to, and tracking numbers that are not ours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.review import ReviewEntry, park
from oms.db.schema import (
    order_lines,
    orders,
    reservations,
    shipment_steps,
    shipments,
    skus,
)
from oms.domain.order import OrderStatus
from oms.domain.warehouse_steps import (
    DEFAULT_POLICY,
    HANDED_OVER,
    STEPS,
    WEIGHED,
    Parcel,
    ParcelShipment,
    Scan,
    ScanPolicy,
    StepRecord,
    Verdict,
    judge_scan,
    last_step,
    with_step,
)

REVIEW_STAGE = "warehouse"
# Reservation states whose units are (or were) in the parcel: the expected weight.
_IN_PARCEL = ("held", "locked", "consumed")


@dataclass
class ScanOutcome:
    """What one scan came to, as the packer sees it."""

    tracking_number: str
    step: str
    verdict: str  # accepted | repeated | refused
    message: str
    orders: list[str] = field(default_factory=list)  # the platform order ids in the parcel
    weight_flag: str | None = None  # set when the weight went to the review queue

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Loaded:
    parcel: Parcel
    carriers: set[str]
    refs: dict[int, tuple[str, str, str]]  # shipment id -> (platform, shop, platform order id)


def record_scans(conn: Connection, scans: list[Scan], now: datetime,
                 policy: ScanPolicy = DEFAULT_POLICY) -> list[ScanOutcome]:
    """Judge and store a batch of scans, all at `now`; one outcome per scan, in order."""
    if not scans:
        return []
    # Keyboard-wedge scanners end a read with a CR or a tab: not part of the number.
    scans = [replace(scan, tracking_number=scan.tracking_number.strip()) for scan in scans]
    loaded = _load_parcels(conn, sorted({scan.tracking_number for scan in scans}))
    outcomes: list[ScanOutcome] = []
    rows: list[dict[str, Any]] = []
    accepted: list[tuple[ScanOutcome, set[tuple[int, str]]]] = []
    to_review: list[ReviewEntry] = []
    flagged: list[tuple[ScanOutcome, ReviewEntry]] = []
    for scan in scans:
        found = loaded.get(scan.tracking_number)
        if found is None:
            outcomes.append(_unknown(scan))
            to_review.append(_unknown_entry(scan))
            continue
        order_refs = sorted({ref[2] for ref in found.refs.values()})
        if len(found.carriers) > 1:
            outcomes.append(_ambiguous(scan, found, order_refs))
            continue
        decision = judge_scan(scan, found.parcel, policy)
        outcome = ScanOutcome(scan.tracking_number, scan.step, decision.verdict.value, decision.message,
                              order_refs, decision.weight_flag)
        outcomes.append(outcome)
        if decision.verdict is not Verdict.ACCEPTED:
            continue
        accepted.append((outcome, {(shipment_id, scan.step) for shipment_id in decision.shipment_ids}))
        weight = scan.weight_grams if scan.step == WEIGHED else None
        record = StepRecord(scan.step, now, scan.station, scan.operator, weight)
        found.parcel = with_step(found.parcel, decision.shipment_ids, record)
        rows.extend({"shipment_id": shipment_id, "step": scan.step, "at": now, "source": scan.source,
                     "station": scan.station, "operator": scan.operator, "weight_grams": weight}
                    for shipment_id in decision.shipment_ids)
        if decision.weight_flag:
            flagged.append((outcome, _weight_entry(scan, found, decision.weight_flag)))
    stored = _insert_steps(conn, rows)
    _demote_lost_races(accepted, stored)
    to_review.extend(entry for outcome, entry in flagged if outcome.weight_flag)
    _update_shipments(conn, [row for row in rows if (row["shipment_id"], row["step"]) in stored])
    park(conn, to_review, now)
    return outcomes


def parcel_history(conn: Connection, tracking_number: str) -> dict[str, Any] | None:
    """A parcel's timeline for the packer's screen: its orders and SKU lines, the steps
    with who scanned them where, and the carrier's pickup. No receiver data."""
    query = (select(shipments.c.id, shipments.c.order_id, shipments.c.warehouse_id, shipments.c.carrier,
                    shipments.c.status, shipments.c.warehouse_step, shipments.c.weighed_grams,
                    shipments.c.handed_over_at, shipments.c.picked_up_at, shipments.c.cancel_requested_at,
                    orders.c.platform_order_id, orders.c.shop_code, orders.c.platform, orders.c.status.label("order_status"))
             .join(orders, orders.c.id == shipments.c.order_id)
             .where(shipments.c.tracking_number == tracking_number)
             .order_by(shipments.c.id))
    found = conn.execute(query).all()
    if not found:
        return None
    lines = _parcel_lines(conn, [(row.order_id, row.warehouse_id) for row in found])
    steps = conn.execute(
        select(shipment_steps.c.step, func.min(shipment_steps.c.at).label("at"), func.min(shipment_steps.c.source),
               func.min(shipment_steps.c.station), func.min(shipment_steps.c.operator),
               func.max(shipment_steps.c.weight_grams))
        .where(shipment_steps.c.shipment_id.in_([row.id for row in found]))
        .group_by(shipment_steps.c.step)).all()
    timeline = sorted(({"step": step, "at": at, "source": source, "station": station, "operator": operator,
                        "weight_grams": grams} for step, at, source, station, operator, grams in steps),
                      key=lambda entry: (entry["at"], STEPS.index(entry["step"])))
    picked = [row.picked_up_at for row in found if row.picked_up_at]
    return {
        "tracking_number": tracking_number,
        "carrier": found[0].carrier,
        "status": _parcel_status(found),
        "warehouse_step": last_step([row.warehouse_step for row in found if row.warehouse_step]),
        "weighed_grams": next((row.weighed_grams for row in found if row.weighed_grams), None),
        "expected_grams": _expected_grams(lines),
        "handed_over_at": min((row.handed_over_at for row in found if row.handed_over_at), default=None),
        "picked_up_at": min(picked) if picked else None,
        "orders": [{"order_ref": row.platform_order_id, "shop_code": row.shop_code, "platform": row.platform,
                    "status": row.order_status, "cancelled": _is_cancelled(row),
                    "lines": [{"sku": sku, "title": title, "quantity": quantity}
                              for sku, title, quantity, _ in lines.get((row.order_id, row.warehouse_id), [])]}
                   for row in found],
        "steps": timeline,
    }


# ------------------------------------------------------------------ loading


def _load_parcels(conn: Connection, tracking_numbers: list[str]) -> dict[str, _Loaded]:
    found: list = []
    for part in chunks(tracking_numbers):
        query = (select(shipments.c.id, shipments.c.order_id, shipments.c.warehouse_id, shipments.c.carrier,
                        shipments.c.tracking_number, shipments.c.status, shipments.c.picked_up_at,
                        shipments.c.cancel_requested_at, orders.c.platform, orders.c.shop_code,
                        orders.c.platform_order_id, orders.c.status.label("order_status"))
                 .join(orders, orders.c.id == shipments.c.order_id)
                 .where(shipments.c.tracking_number.in_(part))
                 .order_by(shipments.c.id))
        if conn.dialect.name == "postgresql":
            # A cancellation deciding "stop it in the warehouse" (it reads the handover
            # under the same lock) and a handover scan must not both win. SQLite's
            # BEGIN IMMEDIATE already serialises the two.
            query = query.with_for_update(of=shipments)
        found.extend(conn.execute(query))
    if not found:
        return {}
    steps = _recorded_steps(conn, [row.id for row in found])
    lines = _parcel_lines(conn, [(row.order_id, row.warehouse_id) for row in found])
    grouped: dict[str, list] = {}
    for row in found:
        grouped.setdefault(row.tracking_number, []).append(row)
    loaded = {}
    for number, members in grouped.items():
        parcel = Parcel(
            tracking_number=number,
            shipments=tuple(ParcelShipment(row.id, row.platform_order_id, row.status, _is_cancelled(row),
                                           row.picked_up_at, steps.get(row.id, {})) for row in members),
            expected_grams=_expected_grams({key: lines.get(key, []) for key in
                                            {(row.order_id, row.warehouse_id) for row in members}}),
        )
        loaded[number] = _Loaded(parcel, {row.carrier for row in members},
                                 {row.id: (row.platform, row.shop_code, row.platform_order_id) for row in members})
    return loaded


def _is_cancelled(row) -> bool:
    # cancel_requested_at: the platform cancelled after it had the tracking number, so
    # the stock is locked until we know whether the parcel left; it must not leave now.
    return row.order_status == OrderStatus.CANCELLED.value or row.cancel_requested_at is not None


def _parcel_status(rows) -> str:
    if any(row.status == "voided" or _is_cancelled(row) for row in rows):
        return "cancelled"
    if all(row.status == "picked_up" for row in rows):
        return "picked_up"
    return "in_warehouse"


def _recorded_steps(conn: Connection, shipment_ids: list[int]) -> dict[int, dict[str, StepRecord]]:
    steps: dict[int, dict[str, StepRecord]] = {}
    for part in chunks(shipment_ids):
        query = (select(shipment_steps.c.shipment_id, shipment_steps.c.step, shipment_steps.c.at,
                        shipment_steps.c.station, shipment_steps.c.operator, shipment_steps.c.weight_grams)
                 .where(shipment_steps.c.shipment_id.in_(part)))
        for row in conn.execute(query):
            steps.setdefault(row.shipment_id, {})[row.step] = StepRecord(row.step, row.at, row.station,
                                                                         row.operator, row.weight_grams)
    return steps


def _parcel_lines(conn: Connection, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], list[tuple]]:
    """(order, warehouse) -> [(sku, title, quantity, grams per unit or None)]."""
    wanted = set(pairs)
    lines: dict[tuple[int, int], list[tuple]] = {}
    for part in chunks(sorted({order_id for order_id, _ in wanted})):
        query = (select(reservations.c.order_id, reservations.c.warehouse_id, order_lines.c.sku, order_lines.c.title,
                        func.sum(reservations.c.quantity).label("quantity"), skus.c.weight_grams)
                 .select_from(reservations.join(order_lines, order_lines.c.id == reservations.c.order_line_id)
                              .outerjoin(skus, skus.c.id == reservations.c.sku_id))
                 .where(reservations.c.order_id.in_(part), reservations.c.state.in_(_IN_PARCEL))
                 .group_by(reservations.c.order_id, reservations.c.warehouse_id, order_lines.c.line_no,
                           order_lines.c.sku, order_lines.c.title, skus.c.weight_grams)
                 .order_by(reservations.c.order_id, order_lines.c.line_no))
        for row in conn.execute(query):
            key = (row.order_id, row.warehouse_id)
            if key in wanted:
                lines.setdefault(key, []).append((row.sku, row.title, int(row.quantity), row.weight_grams))
    return lines


def _expected_grams(lines: dict[tuple[int, int], list[tuple]]) -> int | None:
    """What the parcel's SKUs weigh together; None when a SKU's weight is unknown, since a
    guess would flag good parcels."""
    every = [line for parcel_lines in lines.values() for line in parcel_lines]
    if not every or any(grams is None for *_, grams in every):
        return None
    return sum(quantity * grams for _, _, quantity, grams in every)


# ------------------------------------------------------------------ storing


def _insert_steps(conn: Connection, rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    if not rows:
        return set()
    statement = (upsert_insert(conn, shipment_steps)
                 .on_conflict_do_nothing(index_elements=["shipment_id", "step"])
                 .returning(shipment_steps.c.shipment_id, shipment_steps.c.step))
    return {(row.shipment_id, row.step) for row in conn.execute(statement, rows)}


def _demote_lost_races(accepted: list[tuple[ScanOutcome, set[tuple[int, str]]]],
                       stored: set[tuple[int, str]]) -> None:
    """Another station stored the same step between our read and our write: ours is a
    repeat, not a second first scan."""
    for outcome, keys in accepted:
        if not keys & stored:
            outcome.verdict = Verdict.REPEATED.value
            outcome.message = f"already scanned {outcome.step} at another station a moment ago; nothing changed"
            outcome.weight_flag = None


def _update_shipments(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The furthest step, the scale's figure and the handover time, on the shipment row.
    The CASE keeps a further step written meanwhile by another station."""
    if not rows:
        return
    rank_of = {step: position for position, step in enumerate(STEPS)}
    current_rank = case(rank_of, value=shipments.c.warehouse_step, else_=-1)
    conn.execute(
        update(shipments).where(shipments.c.id == bindparam("sid"))
        .values(warehouse_step=case((current_rank > bindparam("rank"), shipments.c.warehouse_step),
                                    else_=bindparam("new_step"))),
        [{"sid": row["shipment_id"], "rank": rank_of[row["step"]], "new_step": row["step"]} for row in rows])
    weighed = [row for row in rows if row["step"] == WEIGHED]
    if weighed:
        conn.execute(update(shipments).where(and_(shipments.c.id == bindparam("sid"), shipments.c.weighed_grams.is_(None)))
                     .values(weighed_grams=bindparam("grams")),
                     [{"sid": row["shipment_id"], "grams": row["weight_grams"]} for row in weighed])
    handed = [row for row in rows if row["step"] == HANDED_OVER]
    if handed:
        conn.execute(update(shipments).where(and_(shipments.c.id == bindparam("sid"), shipments.c.handed_over_at.is_(None)))
                     .values(handed_over_at=bindparam("at")),
                     [{"sid": row["shipment_id"], "at": row["at"]} for row in handed])


# ------------------------------------------------------------------ for a person


def _unknown(scan: Scan) -> ScanOutcome:
    return ScanOutcome(scan.tracking_number, scan.step, Verdict.REFUSED.value,
                       f"unknown tracking number {scan.tracking_number}: no waybill of ours has it; "
                       "put the parcel aside, it is in the review queue")


def _ambiguous(scan: Scan, found: _Loaded, order_refs: list[str]) -> ScanOutcome:
    # Two carriers' number ranges can overlap; the scan alone cannot say whose label it is.
    return ScanOutcome(scan.tracking_number, scan.step, Verdict.REFUSED.value,
                       f"tracking number {scan.tracking_number} is on waybills of "
                       f"{', '.join(sorted(found.carriers))}: ask a supervisor which parcel this is", order_refs)


def _unknown_entry(scan: Scan) -> ReviewEntry:
    where = f" at station {scan.station}" if scan.station else ""
    return ReviewEntry(REVIEW_STAGE, "-", "-", None,
                       [(f"tracking number {scan.tracking_number} was scanned ({scan.step}){where} but no shipment "
                         "has it: check the label (another system's waybill, a typo at a keyboard desk) and "
                         "find the order the parcel belongs to")],
                       {"tracking_number": scan.tracking_number, "step": scan.step, "station": scan.station,
                        "operator": scan.operator, "source": scan.source})


def _weight_entry(scan: Scan, found: _Loaded, flag: str) -> ReviewEntry:
    platform, shop_code, order_ref = found.refs[min(found.refs)]
    return ReviewEntry(REVIEW_STAGE, platform, shop_code, order_ref,
                       [(f"parcel {scan.tracking_number} {flag}: open it and check the items against the packing "
                         "slip (or correct the SKU weights)")],
                       {"tracking_number": scan.tracking_number, "weighed_grams": scan.weight_grams,
                        "expected_grams": found.parcel.expected_grams, "station": scan.station,
                        "operator": scan.operator, "orders": sorted({ref[2] for ref in found.refs.values()})})
