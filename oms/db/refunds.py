"""A request's way through the after-sales lifecycle, as rows: what the approver is shown,
where it waits, the returned goods, the order's status after the refund, and the report.

The lifecycle decides (`oms.domain.refunds`); this module reads what it decides on and
writes what was decided. Nothing here calls a platform.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from oms.db.after_sales import refund_history
from oms.db.dialect import chunks
from oms.db.history import record_history
from oms.db.schema import (
    after_sales_audit,
    after_sales_requests,
    order_lines,
    orders,
    reservations,
    returned_goods,
    skus,
)
from oms.db.shipping import cancel_after_waybill
from oms.db.stock import receive_stock
from oms.domain.normalize import mask_phone
from oms.domain.order import OrderStatus, apply_transition
from oms.domain.refunds import Lifecycle, RequestFacts, allows_partial_refund

# Our statuses of a request, in the order it usually moves through them.
RECEIVED, IN_REVIEW, WAITING, ESCALATED, HELD = "received", "in_review", "waiting", "escalated", "held"
REFUNDED, PARTIALLY_REFUNDED, REFUSED, FAILED = "refunded", "partially_refunded", "refused", "failed"
OPEN_STATUSES = (RECEIVED, IN_REVIEW, WAITING, ESCALATED, HELD)
SHIPPED_ALREADY = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)


@dataclass
class ReturnedGoods:
    restocked: int = 0
    written_off: int = 0
    problems: list[str] = field(default_factory=list)


def load_request(conn: Connection, request_id: int) -> dict[str, Any]:
    row = conn.execute(select(after_sales_requests).where(after_sales_requests.c.id == request_id)).first()
    if row is None:
        raise LookupError(f"after-sales request #{request_id} does not exist")
    return dict(row._mapping)


def load_requests(conn: Connection, request_ids: list[int]) -> list[dict[str, Any]]:
    """Several requests in one read, in id order."""
    rows: list[dict[str, Any]] = []
    for part in chunks(sorted(request_ids)):
        rows += [dict(row._mapping) for row in conn.execute(
            select(after_sales_requests).where(after_sales_requests.c.id.in_(part)))]
    return sorted(rows, key=lambda row: row["id"])


def earlier_requests(conn: Connection, request: dict[str, Any], lifecycle: Lifecycle,
                     now: datetime) -> list[dict[str, Any]]:
    """The buyer's other requests on the platform within the repeat-refunder window."""
    since = now - timedelta(days=lifecycle.repeat_within_days)
    return [past for past in refund_history(conn, request["buyer_ref"] or "", request["platform"], since)
            if past["id"] != request["id"]]


def facts_of(request: dict[str, Any], earlier: list[dict[str, Any]]) -> RequestFacts:
    """What the lifecycle's conditions look at. The member level is read where the
    platform stated one in the request's payload."""
    return RequestFacts(
        kind=request["kind"], amount=Decimal(request["amount"]), currency=request["currency"],
        reason_code=request["reason_code"] or "", platform=request["platform"],
        cross_border=bool(request["cross_border"]),
        skus=tuple(line["sku"] for line in request["lines"] if line.get("sku")),
        member_level=str((request["payload"] or {}).get("member_level") or ""), earlier_refunds=len(earlier),
    )


def approver_view(conn: Connection, request: dict[str, Any], history: list[dict[str, Any]],
                  now: datetime) -> dict[str, Any]:
    """The request as the approval form shows it (the shape `refund_view_from_dict`
    reads): order, items, amounts, reason, evidence, the buyer's earlier requests."""
    order = None
    if request["order_id"] is not None:
        order = conn.execute(select(orders.c.platform_order_id, orders.c.total_amount, orders.c.receiver_phone)
                             .where(orders.c.id == request["order_id"])).first()
    titles = _line_titles(conn, [line.get("order_line_id") for line in request["lines"]])
    return {
        "request_ref": f"{request['platform']}-{request['platform_request_id']}",
        "order_ref": order.platform_order_id if order else request["platform_order_id"],
        "platform": request["platform"], "kind": request["kind"],
        "reason": _reason(request),
        "requested_amount": str(request["amount"]),
        "paid_amount": str(order.total_amount if order else request["amount"]),
        "currency": request["currency"],
        "platform_deadline": (request["respond_by"] or now + timedelta(days=7)).isoformat(),
        "buyer_masked_phone": mask_phone(order.receiver_phone) if order else "",
        "lines": [{"sku": line.get("sku") or "?", "title": titles.get(line.get("order_line_id"), ""),
                   "quantity": line["quantity"], "amount": line.get("amount") or "0"}
                  for line in request["lines"]],
        "evidence_links": list(request["evidence"] or ()),
        "partial_allowed": allows_partial_refund(request["platform"]),
        "buyer_history": [{"order_ref": f"request #{past['id']}", "amount": str(past["amount"]),
                           "reason": past["reason_code"] or "", "outcome": past["status"],
                           "requested_on": f"{past['platform_created_at']:%Y-%m-%d}"} for past in history],
    }


def _reason(request: dict[str, Any]) -> str:
    """The platform's words with our code beside them, so both sides can be read."""
    text, code = request["reason_text"], request["reason_code"]
    if text and code and text != code:
        return f"{text} ({code})"
    return text or code or "no reason given"


def _line_titles(conn: Connection, line_ids: list[int | None]) -> dict[int, str]:
    wanted = [line_id for line_id in line_ids if line_id]
    if not wanted:
        return {}
    return dict(conn.execute(select(order_lines.c.id, order_lines.c.title).where(order_lines.c.id.in_(wanted))).all())


def set_progress(conn: Connection, request_id: int, now: datetime, *, status: str, node: str | None = None,
                 flow_run_id: str | None = None, approved_amount: Decimal | None = None) -> None:
    values: dict[str, Any] = {"status": status, "node": node, "updated_at": now}
    if flow_run_id is not None:
        values["flow_run_id"] = flow_run_id
    if approved_amount is not None:
        values["approved_amount"] = approved_amount
    conn.execute(update(after_sales_requests).where(after_sales_requests.c.id == request_id).values(**values))


def claim_new_requests(conn: Connection, now: datetime, limit: int = 500,
                       stale_after: timedelta = timedelta(hours=1)) -> list[int]:
    """Take up to `limit` requests nobody handles yet; a second run finds none of them.

    A claim whose run died before it started the request (in review, no approval run, not
    touched for `stale_after`) is taken again, so no request is stranded by a crash."""
    unhandled = or_(after_sales_requests.c.status == RECEIVED,
                    and_(after_sales_requests.c.status == IN_REVIEW, after_sales_requests.c.flow_run_id.is_(None),
                         after_sales_requests.c.updated_at < now - stale_after))
    waiting = select(after_sales_requests.c.id).where(unhandled) \
        .order_by(after_sales_requests.c.respond_by, after_sales_requests.c.id).limit(limit)
    ids = list(conn.execute(waiting).scalars())
    if not ids:
        return []
    claimed = conn.execute(update(after_sales_requests)
                           .where(after_sales_requests.c.id.in_(ids), unhandled)
                           .values(status=IN_REVIEW, updated_at=now).returning(after_sales_requests.c.id))
    return sorted(claimed.scalars())


# ------------------------------------------------------------------- returned goods


def settle_returned_goods(conn: Connection, request: dict[str, Any], *, restock: bool, reason: str,
                          now: datetime) -> ReturnedGoods:
    """Put the returned units back into the warehouse that shipped them, or write them
    off; one `returned_goods` row per line either way. A line we cannot place (no order
    line, no known SKU or warehouse) is written off with that said, never lost."""
    outcome = ReturnedGoods()
    places = _shipping_warehouses(conn, [line.get("order_line_id") for line in request["lines"]])
    sku_ids = _sku_ids(conn, [line.get("sku") for line in request["lines"]])
    order_warehouse = None
    if request["order_id"] is not None:
        order_warehouse = conn.execute(select(orders.c.warehouse_id).where(orders.c.id == request["order_id"])
                                       ).scalar()
    rows, deliveries = [], []
    for line in request["lines"]:
        units, sku = int(line["quantity"]), line.get("sku") or "?"
        warehouse_id = places.get(line.get("order_line_id"), order_warehouse)
        sku_id = sku_ids.get(sku)
        line_restocks = restock and warehouse_id is not None and sku_id is not None
        line_reason = reason
        if restock and not line_restocks:
            missing = "no warehouse shipped it" if warehouse_id is None else "unknown SKU"
            line_reason = f"cannot restock {sku}: {missing}"
            outcome.problems.append(line_reason)
        if line_restocks:
            deliveries.append((warehouse_id, sku_id, units))
            outcome.restocked += units
        else:
            outcome.written_off += units
        rows.append({"request_id": request["id"], "order_line_id": line.get("order_line_id"), "sku": sku,
                     "warehouse_id": warehouse_id, "units": units,
                     "outcome": "restocked" if line_restocks else "written_off", "reason": line_reason, "at": now})
    if rows:
        conn.execute(returned_goods.insert(), rows)
    receive_stock(conn, deliveries, now)
    return outcome


def _shipping_warehouses(conn: Connection, line_ids: list[int | None]) -> dict[int, int]:
    wanted = [line_id for line_id in line_ids if line_id]
    if not wanted:
        return {}
    query = select(reservations.c.order_line_id, reservations.c.warehouse_id).where(
        reservations.c.order_line_id.in_(wanted), reservations.c.state.in_(("consumed", "locked")))
    return dict(conn.execute(query).all())


def _sku_ids(conn: Connection, codes: list[str | None]) -> dict[str, int]:
    wanted = sorted({code for code in codes if code})
    if not wanted:
        return {}
    return dict(conn.execute(select(skus.c.code, skus.c.id).where(skus.c.code.in_(wanted))).all())


# ------------------------------------------------------------------- the order


def settle_order(conn: Connection, request: dict[str, Any], refunded: Decimal, now: datetime) -> str:
    """Move the order through the state machine after a refund was paid; what happened,
    in words. A full refund of a parcel on its way or delivered makes the order refunded;
    before it ships, the order is cancelled (its parcel stopped in the warehouse). A
    partial refund leaves the order where it is."""
    if request["order_id"] is None:
        return "no order of ours to update"
    order = conn.execute(select(orders.c.status, orders.c.total_amount).where(orders.c.id == request["order_id"])
                         ).one()
    status = OrderStatus(order.status)
    if refunded < Decimal(order.total_amount):
        return f"partial refund of {refunded} of {order.total_amount}: order stays {status.value}"
    if status in SHIPPED_ALREADY:
        conn.execute(update(orders).where(orders.c.id == request["order_id"])
                     .values(status=OrderStatus.REFUNDED.value, modified_at=now))
        record_history(conn, [(request["order_id"], apply_transition(
            status, OrderStatus.REFUNDED, at=now, actor="after-sales",
            reason=f"refunded {refunded} in full (request {request['platform_request_id']})"))])
        return f"order {status.value} -> refunded"
    if status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        return f"order already {status.value}"
    why = f"refunded in full before it shipped (request {request['platform_request_id']})"
    outcome = cancel_after_waybill(conn, [request["order_id"]], now, actor="after-sales", reason=why)
    if outcome.intercepted:
        return f"order {status.value}: its parcel may have left; interception raised"
    return f"order {status.value} -> cancelled, its stock released"


# ------------------------------------------------------------------- the report


@dataclass
class AfterSalesReport:
    total: int
    reasons: list[tuple[str, int, float]]  # reason, requests, share
    node_hours: list[tuple[str, int, float, float]]  # node, decisions, mean hours, longest hours
    near_deadline: list[dict[str, Any]]
    by_status: dict[str, int]


def after_sales_report(conn: Connection, now: datetime, near: timedelta, since: datetime) -> AfterSalesReport:
    recent = and_(after_sales_requests.c.platform_created_at >= since)
    reasons = Counter(dict(conn.execute(
        select(func.coalesce(after_sales_requests.c.reason_code, "none"), func.count())
        .where(recent).group_by(func.coalesce(after_sales_requests.c.reason_code, "none"))).all()))
    total = sum(reasons.values())
    by_status = dict(conn.execute(select(after_sales_requests.c.status, func.count())
                                  .where(recent).group_by(after_sales_requests.c.status)).all())
    due = conn.execute(
        select(after_sales_requests.c.id, after_sales_requests.c.platform, after_sales_requests.c.platform_request_id,
               after_sales_requests.c.amount, after_sales_requests.c.currency, after_sales_requests.c.status,
               after_sales_requests.c.node, after_sales_requests.c.respond_by)
        .where(after_sales_requests.c.status.in_(OPEN_STATUSES), after_sales_requests.c.respond_by.is_not(None),
               after_sales_requests.c.respond_by <= now + near)
        .order_by(after_sales_requests.c.respond_by).limit(200))
    return AfterSalesReport(
        total=total,
        reasons=[(reason, count, count / total) for reason, count in reasons.most_common()],
        node_hours=_time_per_node(conn, since),
        near_deadline=[dict(row._mapping) for row in due],
        by_status=by_status,
    )


def _time_per_node(conn: Connection, since: datetime) -> list[tuple[str, int, float, float]]:
    """From a node's `entered` row to the answer that left it, per node."""
    query = (select(after_sales_audit.c.request_id, after_sales_audit.c.node, after_sales_audit.c.action,
                    after_sales_audit.c.at)
             .where(after_sales_audit.c.at >= since, after_sales_audit.c.node.is_not(None),
                    after_sales_audit.c.action.in_(("entered", "decided", "checked", "auto_approved", "timed_out")))
             .order_by(after_sales_audit.c.request_id, after_sales_audit.c.at, after_sales_audit.c.id))
    entered: dict[tuple[int, str], datetime] = {}
    spent: dict[str, list[float]] = defaultdict(list)
    for row in conn.execute(query):
        key = (row.request_id, row.node)
        if row.action == "entered":
            entered[key] = row.at
        elif key in entered:
            spent[row.node].append((row.at - entered.pop(key)).total_seconds() / 3600)
        elif row.action == "auto_approved":
            spent[row.node].append(0.0)
    return [(node, len(hours), sum(hours) / len(hours), max(hours)) for node, hours in sorted(spent.items())]
