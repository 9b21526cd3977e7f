"""After-sales requests and their audit trail.

A request is stored once per (platform, shop, platform request id): fetching the same
window twice, or a platform serving a request on two pages, changes nothing; a newer
platform update refreshes what the platform owns (its status, amount, deadline, lines)
and never our own progress through the approval lifecycle. Each request is linked to
its order and each of its lines to our order line, by the platform's line id or, failing
that, by SKU; a request whose order we have never seen is kept all the same (the buyer
is waiting) with `order_id` NULL, and linked when the order arrives.

Every step of its handling is an `after_sales_audit` row, written by `record_audit`.

Requests come in as the connectors' `AfterSalesRequest` objects; this module reads their
attributes and imports nothing from the connectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.schema import after_sales_audit, after_sales_requests, order_lines, orders

# Our own progress: a platform update must not move a request back to "received".
OURS = ("status", "approved_amount", "node", "flow_run_id", "order_id", "received_at")


@dataclass
class StoredRequests:
    new: list[int]  # ids of requests seen for the first time
    updated: list[int]  # ids of requests the platform changed since we stored them
    unchanged: int
    unlinked: list[int]  # ids whose order we do not have (yet)


@dataclass(frozen=True)
class AuditEntry:
    request_id: int
    actor: str  # a person, "rule:<name>", or "pipeline"
    action: str  # received|planned|auto_approved|paused|decided|escalated|timed_out|executed|...
    reason: str
    node: str | None = None
    role: str | None = None
    input: dict[str, Any] | None = None
    at: datetime | None = None  # when it happened, if written later than that


def store_requests(conn: Connection, requests: list, now: datetime, *,
                   domestic_currencies: tuple[str, ...] = ("CNY",)) -> StoredRequests:
    """Insert new requests, refresh the ones the platform changed, link all to orders.

    A request in another currency than the domestic ones is cross-border (the customs
    node of the lifecycle applies to it)."""
    if not requests:
        return StoredRequests([], [], 0, [])
    latest = _latest_per_key(requests)
    known = _known(conn, list(latest))
    fresh = [r for key, r in latest.items() if key not in known]
    changed = [(known[key], r) for key, r in latest.items()
               if key in known and r.updated_at > known[key]["platform_updated_at"]]
    links = _order_links(conn, list(latest.values()))
    new_ids = _insert(conn, fresh, links, now, domestic_currencies)
    _refresh(conn, changed, links, now)
    unlinked = _ids_without_order(conn, new_ids + [row["id"] for row, _ in changed])
    return StoredRequests(new_ids, [row["id"] for row, _ in changed],
                          len(latest) - len(fresh) - len(changed), unlinked)


def record_audit(conn: Connection, entries: list[AuditEntry], now: datetime) -> None:
    if not entries:
        return
    conn.execute(after_sales_audit.insert(), [
        {"request_id": e.request_id, "at": e.at or now, "actor": e.actor, "role": e.role, "action": e.action,
         "node": e.node, "reason": e.reason, "input": e.input} for e in entries])


def audit_trail(conn: Connection, request_id: int) -> list[dict[str, Any]]:
    query = (select(after_sales_audit).where(after_sales_audit.c.request_id == request_id)
             .order_by(after_sales_audit.c.at, after_sales_audit.c.id))
    return [dict(row._mapping) for row in conn.execute(query)]


def refund_history(conn: Connection, buyer_ref: str, platform: str, since: datetime) -> list[dict[str, Any]]:
    """The buyer's earlier requests on the platform (for repeat-refunder rules and the
    approval form): amounts, kinds, reasons and outcomes, no personal data."""
    if not buyer_ref:
        return []
    query = (select(after_sales_requests.c.id, after_sales_requests.c.kind, after_sales_requests.c.amount,
                    after_sales_requests.c.currency, after_sales_requests.c.reason_code,
                    after_sales_requests.c.status, after_sales_requests.c.platform_created_at)
             .where(after_sales_requests.c.buyer_ref == buyer_ref, after_sales_requests.c.platform == platform,
                    after_sales_requests.c.platform_created_at >= since)
             .order_by(after_sales_requests.c.platform_created_at))
    return [dict(row._mapping) for row in conn.execute(query)]


# ----------------------------------------------------------------- storing


def _key(request) -> tuple[str, str, str]:
    return (request.platform, request.shop_code, request.platform_request_id)


def _latest_per_key(requests: list) -> dict[tuple[str, str, str], Any]:
    latest: dict[tuple[str, str, str], Any] = {}
    for request in requests:
        key = _key(request)
        if key not in latest or request.updated_at > latest[key].updated_at:
            latest[key] = request
    return latest


def _known(conn: Connection, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict]:
    found: dict[tuple[str, str, str], dict] = {}
    for part in chunks(sorted({k[2] for k in keys})):
        query = select(after_sales_requests.c.id, after_sales_requests.c.platform, after_sales_requests.c.shop_code,
                       after_sales_requests.c.platform_request_id, after_sales_requests.c.platform_updated_at
                       ).where(after_sales_requests.c.platform_request_id.in_(part))
        for row in conn.execute(query):
            found[(row.platform, row.shop_code, row.platform_request_id)] = dict(row._mapping)
    wanted = set(keys)
    return {key: row for key, row in found.items() if key in wanted}


def _order_links(conn: Connection, requests: list) -> dict[tuple[str, str], dict]:
    """(shop, platform order id) -> our order id and its lines by platform line id and SKU."""
    wanted = {(r.shop_code, r.platform_order_id) for r in requests}
    links: dict[tuple[str, str], dict] = {}
    for part in chunks(sorted({ref for _, ref in wanted})):
        query = (select(orders.c.id, orders.c.shop_code, orders.c.platform_order_id, orders.c.currency)
                 .where(orders.c.platform_order_id.in_(part)))
        for row in conn.execute(query):
            if (row.shop_code, row.platform_order_id) in wanted:
                links[(row.shop_code, row.platform_order_id)] = {"order_id": row.id, "currency": row.currency,
                                                                 "by_line_id": {}, "by_sku": {}}
    by_order = {link["order_id"]: link for link in links.values()}
    for part in chunks(sorted(by_order)):
        query = select(order_lines.c.id, order_lines.c.order_id, order_lines.c.platform_line_id,
                       order_lines.c.sku).where(order_lines.c.order_id.in_(part))
        for line in conn.execute(query):
            link = by_order[line.order_id]
            if line.platform_line_id:
                link["by_line_id"][str(line.platform_line_id)] = line.id
            link["by_sku"].setdefault(line.sku, line.id)
    return links


def _lines(request, link: dict | None) -> list[dict[str, Any]]:
    rows = []
    for line in request.lines:
        order_line_id = None
        if link is not None:
            order_line_id = link["by_line_id"].get(str(line.platform_line_id)) or link["by_sku"].get(line.sku)
        rows.append({"platform_line_id": line.platform_line_id, "sku": line.sku, "quantity": line.quantity,
                     "amount": None if line.amount is None else str(line.amount), "order_line_id": order_line_id})
    return rows


def _platform_columns(request, link: dict | None, now: datetime) -> dict[str, Any]:
    return {
        "platform_order_id": request.platform_order_id, "kind": request.kind,
        "platform_status": request.platform_status, "amount": request.amount, "currency": request.currency,
        "reason_code": request.reason_code or None, "reason_text": request.reason_text or None,
        "lines": _lines(request, link), "evidence": list(request.evidence_urls), "buyer_ref": request.buyer_ref,
        "respond_by": request.respond_by, "platform_created_at": request.created_at,
        "platform_updated_at": request.updated_at, "payload": _payload(request), "updated_at": now,
    }


def _payload(request) -> dict[str, Any]:
    # What the platform said, in plain JSON; the raw page is landed by the task.
    return {"platform_status": request.platform_status, "version": request.version,
            "return_carrier": request.return_carrier, "return_tracking": request.return_tracking}


def _insert(conn: Connection, fresh: list, links: dict, now: datetime, domestic_currencies) -> list[int]:
    if not fresh:
        return []
    rows = []
    for request in fresh:
        link = links.get((request.shop_code, request.platform_order_id))
        rows.append({"platform": request.platform, "shop_code": request.shop_code,
                     "platform_request_id": request.platform_request_id,
                     "order_id": link["order_id"] if link else None, "status": "received",
                     "cross_border": request.currency not in domestic_currencies,
                     "received_at": now, **_platform_columns(request, link, now)})
    statement = (upsert_insert(conn, after_sales_requests)
                 .on_conflict_do_nothing(index_elements=["platform", "shop_code", "platform_request_id"])
                 .returning(after_sales_requests.c.id))
    return sorted(conn.execute(statement, rows).scalars())


def _refresh(conn: Connection, changed: list[tuple[dict, Any]], links: dict, now: datetime) -> None:
    if not changed:
        return
    rows = []
    for stored, request in changed:
        link = links.get((request.shop_code, request.platform_order_id))
        columns = _platform_columns(request, link, now)
        rows.append({"request_pk": stored["id"], **columns})
    # Only the platform's columns: our progress (OURS) is never touched by a platform update.
    statement = update(after_sales_requests).where(after_sales_requests.c.id == bindparam("request_pk"))
    conn.execute(statement, rows)
    for stored, request in changed:
        link = links.get((request.shop_code, request.platform_order_id))
        if link:
            conn.execute(update(after_sales_requests)
                         .where(after_sales_requests.c.id == stored["id"], after_sales_requests.c.order_id.is_(None))
                         .values(order_id=link["order_id"]))


def _ids_without_order(conn: Connection, ids: list[int]) -> list[int]:
    missing: list[int] = []
    for part in chunks(sorted(ids)):
        missing.extend(conn.execute(select(after_sales_requests.c.id).where(
            after_sales_requests.c.id.in_(part), after_sales_requests.c.order_id.is_(None))).scalars())
    return missing


def count_by_status(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(after_sales_requests.c.status, func.count())
                             .group_by(after_sales_requests.c.status)).all())
