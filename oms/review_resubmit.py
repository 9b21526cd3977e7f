"""Resubmitting a review-queue entry: the pipeline tries its order once more, now.

For the ingest stages (land, clean, validate) the entry's payload, fixed or not, goes
through what ingest does to a page: the platform's mapping, cleaning, the `orders`
quality suite, and storing. An order that passes is stored and its entry closed; one
that fails again keeps its entry open with the new reasons. Both are audited.

Later stages park our own references, not a payload, and the pipeline takes the order
up again by itself once the cause is gone; resubmitting checks the cause:

- allocate: the order's SKUs must now be in the catalogue; every fulfil run then
  allocates it (or backorders it, which is no matter for review).
- write_back: the push is made due again (`oms writeback retry` for one entry).
- ship: every fulfil run already retries a parcel without a waybill, so resubmitting
  only closes entries whose order has shipped or moved on, and otherwise says what to do.

Nothing here needs a Prefect run: the CLI calls it directly. The validation runs outside
any transaction (it takes a while, and SQLite must not hold its write lock meanwhile);
the entry is then locked and must still hold the payload that was checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, exists, select, update

from expectations.runner import validate_records
from oms.db.allocation import ALLOCATABLE
from oms.db.customers import link_orders
from oms.db.orders import store_orders
from oms.db.review import (
    FIXABLE_STAGES,
    ReviewRefused,
    close_entry,
    get_open_entry,
    record_action,
    resolve_superseded,
    update_problem,
)
from oms.db.schema import order_lines, orders, review_queue, shipments, skus
from oms.db.tracking import STAGE as WRITE_BACK
from oms.db.tracking import retry_parked
from oms.domain.cleaning import batch_facts, clean_order
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderStatus

Mapper = Callable[[Any, str], Order]


@dataclass
class Resubmitted:
    """What became of a resubmitted entry, in words for the operator."""

    entry_id: int
    closed: bool
    message: str
    order_id: int | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Check:
    order: Order | None = None
    stage: str = ""  # where it failed
    reasons: list[str] = field(default_factory=list)


def resubmit(engine: Engine, entry_id: int, *, actor: str, now: datetime,
             mappers: Mapping[str, Mapper]) -> Resubmitted:
    """`mappers`: platform -> payload mapping (tasks.resources.MAPPERS), passed in so
    this module stays below the Prefect layer."""
    with engine.connect() as conn:
        entry = get_open_entry(conn, entry_id, for_update=False)
    if entry["stage"] in FIXABLE_STAGES:
        return _ingest_again(engine, entry, actor, now, mappers)
    with engine.begin() as conn:
        entry = get_open_entry(conn, entry_id)
        if entry["stage"] == "allocate":
            return _allocate_again(conn, entry, actor, now)
        if entry["stage"] == "ship":
            return _ship_again(conn, entry, actor, now)
        if entry["stage"] == WRITE_BACK:
            return _push_again(conn, entry, actor, now)
    raise ReviewRefused(
        f"review entry {entry_id} is at stage {entry['stage']}, which the pipeline does not redo on request: "
        f"do what its reasons say, then close it with `oms review discard {entry_id} --reason \"what was done\"`")


# ------------------------------------------------------------------ land, clean, validate


def _ingest_again(engine: Engine, entry: dict, actor: str, now: datetime,
                  mappers: Mapping[str, Mapper]) -> Resubmitted:
    check = _check_payload(entry, mappers, now)
    with engine.begin() as conn:
        current = get_open_entry(conn, entry["id"])
        if current["payload"] != entry["payload"]:
            raise ReviewRefused(f"review entry {entry['id']} was changed while it was being checked; resubmit again")
        if check.order is None:
            return _still_failing(conn, entry, check, actor, now)
        return _store(conn, entry, check.order, actor, now)


def _check_payload(entry: dict, mappers: Mapping[str, Mapper], now: datetime) -> _Check:
    mapper = mappers.get(entry["platform"])
    if mapper is None:
        raise ReviewRefused(f"no mapping is known for platform {entry['platform']!r}")
    try:
        order = mapper(entry["payload"], entry["shop_code"])
    except MappingError as error:
        return _Check(stage="clean", reasons=list(error.reasons))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        # A hand-edited payload can break a mapping's assumptions about types; the
        # exception's text may quote the payload, so only its kind is kept.
        return _Check(stage="clean", reasons=[
            f"the {entry['platform']} mapping cannot read this payload ({type(error).__name__}); "
            "check the types of the fields that were fixed"])
    expected = entry["platform_order_id"]
    if entry["stage"] != "land" and expected and order.platform_order_id != expected:
        raise ReviewRefused(
            f"the payload of review entry {entry['id']} now maps to order {order.platform_order_id}, but the "
            f"entry is about order {expected}: fix the order id back, or discard the entry")
    cleaned = clean_order(order, now=now)
    outcome = validate_records("orders", batch_facts([cleaned], [entry["payload"]]))
    if outcome.reasons_by_row:
        return _Check(stage="validate", reasons=outcome.reasons_by_row[0])
    return _Check(order=cleaned.order)


def _still_failing(conn: Connection, entry: dict, check: _Check, actor: str, now: datetime) -> Resubmitted:
    update_problem(conn, entry["id"], stage=check.stage, reasons=check.reasons)
    record_action(conn, entry["id"], actor=actor, action="resubmit_failed", now=now,
                  reason="; ".join(check.reasons), detail={"stage": check.stage, "reasons": check.reasons})
    return Resubmitted(entry["id"], closed=False, reasons=check.reasons,
                       message=f"review entry {entry['id']} still fails at {check.stage} and stays open")


def _store(conn: Connection, entry: dict, order: Order, actor: str, now: datetime) -> Resubmitted:
    result = store_orders(conn, [order], now=now, actor=actor)
    order_id = conn.execute(select(orders.c.id).where(
        orders.c.platform == order.platform, orders.c.shop_code == order.shop_code,
        orders.c.platform_order_id == order.platform_order_id)).scalar_one()
    if result.unchanged:
        # The platform's own later version (or this very one) got there first; it wins.
        resolution = f"resubmitted; order {order_id} already held this or a newer platform version, kept as it was"
    else:
        resolution = f"resubmitted, stored as order {order_id}"
    close_entry(conn, entry["id"], resolution=resolution, actor=actor, now=now)
    # As ingest does after storing: the order joins its buyer's other orders.
    link_orders(conn, [order_id], now)
    # Other open entries of the same order describe versions now out of date.
    resolve_superseded(conn, [order.global_key], now)
    stored = "inserted" if result.inserted else "updated" if result.updated else "unchanged"
    record_action(conn, entry["id"], actor=actor, action="resubmitted", now=now, reason=resolution,
                  detail={"outcome": "stored", "order_id": order_id, "stored": stored})
    return Resubmitted(entry["id"], closed=True, order_id=order_id, message=f"review entry {entry['id']}: {resolution}")


# ------------------------------------------------------------------ allocate, ship, write back


def _order_of(conn: Connection, entry: dict) -> dict | None:
    order_id = (entry["payload"] or {}).get("order_id")
    row = conn.execute(select(orders.c.id, orders.c.status).where(orders.c.id == order_id)).first()
    return dict(row._mapping) if row else None


def _close_moved_on(conn: Connection, entry: dict, resolution: str, actor: str, now: datetime) -> Resubmitted:
    close_entry(conn, entry["id"], resolution=resolution, actor=actor, now=now)
    record_action(conn, entry["id"], actor=actor, action="resubmitted", now=now, reason=resolution,
                  detail={"outcome": "nothing left to do"})
    return Resubmitted(entry["id"], closed=True, message=f"review entry {entry['id']}: {resolution}")


def _allocate_again(conn: Connection, entry: dict, actor: str, now: datetime) -> Resubmitted:
    order = _order_of(conn, entry)
    if order is None:
        return _close_moved_on(conn, entry, "resubmitted; the order is no longer stored", actor, now)
    if order["status"] not in ALLOCATABLE:
        return _close_moved_on(conn, entry, f"resubmitted; order {order['id']} is {order['status']} now, "
                                            "nothing to allocate", actor, now)
    # The order's current lines, not the parked list: a platform update may have changed them.
    missing = sorted(conn.execute(
        select(order_lines.c.sku).distinct()
        .where(order_lines.c.order_id == order["id"], ~exists().where(skus.c.code == order_lines.c.sku))).scalars())
    if missing:
        raise ReviewRefused(
            f"order {order['id']} still has SKUs that are not in the catalogue: {', '.join(missing)}. "
            "Add them to the catalogue (or correct the SKU on the platform, which brings a new version), "
            f"then resubmit; or discard review entry {entry['id']} with a reason")
    resolution = f"resubmitted; its SKUs are in the catalogue now, the next fulfil run allocates order {order['id']}"
    close_entry(conn, entry["id"], resolution=resolution, actor=actor, now=now)
    record_action(conn, entry["id"], actor=actor, action="resubmitted", now=now, reason=resolution,
                  detail={"outcome": "allocatable", "order_id": order["id"]})
    return Resubmitted(entry["id"], closed=True, order_id=order["id"],
                       message=f"review entry {entry['id']}: {resolution}")


def _ship_again(conn: Connection, entry: dict, actor: str, now: datetime) -> Resubmitted:
    order = _order_of(conn, entry)
    if order is None:
        return _close_moved_on(conn, entry, "resubmitted; the order is no longer stored", actor, now)
    has_waybill = conn.execute(select(exists().where(shipments.c.order_id == order["id"]))).scalar()
    if has_waybill:
        return _close_moved_on(conn, entry, f"resubmitted; order {order['id']} has a waybill now", actor, now)
    if order["status"] != OrderStatus.ALLOCATED.value:
        return _close_moved_on(conn, entry, f"resubmitted; order {order['id']} is {order['status']} now, "
                                            "nothing to ship", actor, now)
    raise ReviewRefused(
        f"every fulfil run already tries order {order['id']} again while it waits for a waybill, so resubmitting "
        "adds nothing. Remove the cause its reasons name (the rate cards in config/carriers.yaml, the address "
        "on the platform, the platform's own e-waybill for masked receivers); once it has shipped, resubmit "
        f"closes the entry, or discard review entry {entry['id']} with a reason if it was shipped by hand")


def _push_again(conn: Connection, entry: dict, actor: str, now: datetime) -> Resubmitted:
    due = retry_parked(conn, now, review_id=entry["id"])
    # retry_parked resolves the entry itself; it only does not know who asked.
    conn.execute(update(review_queue).where(review_queue.c.id == entry["id"]).values(resolved_by=actor))
    if due:
        resolution = "resubmitted; the push is due again, the next write-back-tracking run sends it"
    else:
        resolution = "resubmitted; the shipment was already pushed or voided, nothing to send"
    record_action(conn, entry["id"], actor=actor, action="resubmitted", now=now, reason=resolution,
                  detail={"outcome": "requeued" if due else "nothing left to do"})
    return Resubmitted(entry["id"], closed=True, message=f"review entry {entry['id']}: {resolution}")
