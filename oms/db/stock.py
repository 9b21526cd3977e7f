"""The stock ledger: reservations and the totals they add up to, changed only together.

Reservation rows are the truth; `stock.reserved` is the sum of the held and locked ones,
kept in the same transaction, so that one guarded UPDATE per SKU and warehouse both
checks and takes stock:

    UPDATE stock SET reserved = reserved + :units
     WHERE warehouse_id = :w AND sku_id = :s
       AND on_hand - reserved - safety_stock >= :units

A reservation is closed by an UPDATE ... RETURNING on its own state (held -> released,
held/locked -> consumed), and the totals move by exactly the rows that statement
changed: two processes releasing the same order can never both give its units back.
Statements that touch several stock rows visit them in (warehouse_id, sku_id) order, so
allocators, releases and the audit take row locks in one order and cannot deadlock.

`audit_stock` recomputes the totals from the rows under lock and repairs drift.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, func, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.schema import orders, reservations, skus, stock, stock_audits, warehouses
from oms.domain.order import OrderStatus

# Reservation states counted in `stock.reserved`.
HOLDING = ("held", "locked")


class StockMoved(Exception):
    """A guarded update matched no row: the plan was made on numbers now stale."""


@dataclass
class Release:
    units: int = 0
    # Orders whose stock stayed frozen: their tracking number already reached a platform.
    locked_orders: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Repair:
    warehouse: str
    sku: str
    recorded_reserved: int
    actual_reserved: int
    on_hand: int

    @property
    def drift(self) -> int:
        return self.recorded_reserved - self.actual_reserved


# ------------------------------------------------------------------ taking stock

_GUARDED_RESERVE = (
    update(stock)
    .where(
        stock.c.warehouse_id == bindparam("w"),
        stock.c.sku_id == bindparam("s"),
        stock.c.on_hand - stock.c.reserved - stock.c.safety_stock >= bindparam("units"),
    )
    .values(reserved=stock.c.reserved + bindparam("units"), updated_at=bindparam("now"))
)


def reserve(conn: Connection, taken: dict[tuple[int, int], int], now: datetime) -> None:
    """Take `units` of each (warehouse_id, sku_id), or raise StockMoved and take nothing
    (the caller's transaction rolls back)."""
    for (warehouse_id, sku_id), units in sorted(taken.items()):
        params = {"w": warehouse_id, "s": sku_id, "units": units, "now": now}
        if conn.execute(_GUARDED_RESERVE, params).rowcount != 1:
            raise StockMoved(f"stock of SKU #{sku_id} in warehouse #{warehouse_id} changed while allocating")


def lock_stock_rows(conn: Connection, sku_ids: list[int]) -> None:
    """PostgreSQL: lock these SKUs' stock rows, in the order every writer uses, until the
    transaction ends (a re-plan that must not be overtaken again)."""
    # One statement, not chunks: chunks would lock in sku order across warehouses.
    conn.execute(select(stock.c.id).where(stock.c.sku_id.in_(sorted(sku_ids)))
                 .order_by(stock.c.warehouse_id, stock.c.sku_id).with_for_update())


def available(conn: Connection, sku_ids: list[int]) -> dict[tuple[int, int], int]:
    """(warehouse_id, sku_id) -> on hand - reserved - safety stock, for planning only."""
    found: dict[tuple[int, int], int] = {}
    for part in chunks(sku_ids):
        query = select(stock.c.warehouse_id, stock.c.sku_id,
                       (stock.c.on_hand - stock.c.reserved - stock.c.safety_stock).label("free")
                       ).where(stock.c.sku_id.in_(part))
        found.update({(row.warehouse_id, row.sku_id): row.free for row in conn.execute(query)})
    return found


def sellable_by_sku(conn: Connection, sku_codes: list[str] | None = None) -> dict[str, int]:
    """What the platforms may still sell of each SKU: the free units of every warehouse
    (never below zero per warehouse: one short warehouse does not hide another's stock)."""
    free = stock.c.on_hand - stock.c.reserved - stock.c.safety_stock
    positive = func.sum(func.max(free, 0)) if conn.dialect.name == "sqlite" else func.sum(func.greatest(free, 0))
    query = (select(skus.c.code, func.coalesce(positive, 0).label("units"))
             .select_from(skus.outerjoin(stock, stock.c.sku_id == skus.c.id))
             .group_by(skus.c.code))
    if sku_codes is None:
        return {row.code: int(row.units) for row in conn.execute(query)}
    found: dict[str, int] = {}
    for part in chunks(sorted(set(sku_codes))):
        found.update({row.code: int(row.units) for row in conn.execute(query.where(skus.c.code.in_(part)))})
    return found


def receive_stock(conn: Connection, deliveries: list[tuple[int, int, int]], now: datetime) -> int:
    """Add delivered units (warehouse_id, sku_id, units) to on-hand stock; returns units."""
    totals: Counter = Counter()
    for warehouse_id, sku_id, units in deliveries:
        if units <= 0:
            raise ValueError(f"a delivery adds units; got {units} for SKU #{sku_id}")
        totals[(warehouse_id, sku_id)] += units
    if not totals:
        return 0
    statement = upsert_insert(conn, stock)
    statement = statement.on_conflict_do_update(
        index_elements=["warehouse_id", "sku_id"],
        set_={"on_hand": stock.c.on_hand + statement.excluded.on_hand, "updated_at": now},
    )
    conn.execute(statement, [
        {"warehouse_id": w, "sku_id": s, "on_hand": n, "reserved": 0, "safety_stock": 0, "updated_at": now}
        for (w, s), n in sorted(totals.items())
    ])
    return sum(totals.values())


# ------------------------------------------------------------------ closing reservations


def release_reservations(conn: Connection, order_ids: list[int], now: datetime,
                         reason: str = "cancelled") -> Release:
    """Give back the held units of these orders. Locked ones stay: a platform already has
    their tracking number, so the goods may be on their way until the carrier says."""
    outcome = Release()
    if not order_ids:
        return outcome
    for part in chunks(order_ids):
        outcome.units += _close(conn, and_(reservations.c.order_id.in_(part), reservations.c.state == "held"),
                                state="released", reason=reason, now=now, consume=False)
        locked = select(reservations.c.order_id).distinct().where(
            reservations.c.order_id.in_(part), reservations.c.state == "locked")
        outcome.locked_orders.extend(conn.execute(locked).scalars())
    return outcome


def release_parcels(conn: Connection, parcels: list[tuple[int, int]], now: datetime, reason: str) -> int:
    """Give back the held units of these (order_id, warehouse_id) parcels."""
    return sum(
        _close(conn, and_(reservations.c.order_id == order_id, reservations.c.warehouse_id == warehouse_id,
                          reservations.c.state == "held"),
               state="released", reason=reason, now=now, consume=False)
        for order_id, warehouse_id in parcels
    )


def lock_reservations(conn: Connection, order_ids: list[int], now: datetime) -> int:
    """Freeze these orders' held units: a platform has their tracking number now."""
    locked = 0
    for part in chunks(order_ids):
        locked += conn.execute(
            update(reservations)
            .where(reservations.c.order_id.in_(part), reservations.c.state == "held")
            .values(state="locked", locked_at=now)
        ).rowcount
    return locked


def consume_parcels(conn: Connection, parcels: list[tuple[int, int]], now: datetime) -> int:
    """The carrier collected these (order_id, warehouse_id) parcels: their units leave
    on-hand stock together with the reservation."""
    return sum(
        _close(conn, and_(reservations.c.order_id == order_id, reservations.c.warehouse_id == warehouse_id,
                          reservations.c.state.in_(HOLDING)),
               state="consumed", reason="shipped", now=now, consume=True)
        for order_id, warehouse_id in sorted(set(parcels))
    )


def consume_reservations(conn: Connection, order_ids: list[int], now: datetime) -> int:
    """All of these orders' goods left (shipped from a platform's back-office by hand)."""
    units = 0
    for part in chunks(order_ids):
        units += _close(conn, and_(reservations.c.order_id.in_(part), reservations.c.state.in_(HOLDING)),
                        state="consumed", reason="shipped", now=now, consume=True)
    return units


def release_lapsed_holds(conn: Connection, now: datetime) -> list[int]:
    """Give back the holds of unpaid orders whose time ran out; returns those orders."""
    still_unpaid = select(orders.c.id).where(orders.c.status == OrderStatus.PENDING_PAYMENT.value)
    lapsed = and_(reservations.c.state == "held", reservations.c.hold_until.is_not(None),
                  reservations.c.hold_until <= now, reservations.c.order_id.in_(still_unpaid))
    order_ids = list(conn.execute(select(reservations.c.order_id).distinct().where(lapsed)).scalars())
    for part in chunks(order_ids):
        _close(conn, and_(lapsed, reservations.c.order_id.in_(part)),
               state="released", reason="unpaid_timeout", now=now, consume=False)
    return order_ids


def _close(conn: Connection, which, *, state: str, reason: str, now: datetime, consume: bool) -> int:
    statement = (
        update(reservations).where(which)
        .values(state=state, closed_at=now, close_reason=reason)
        .returning(reservations.c.warehouse_id, reservations.c.sku_id, reservations.c.quantity)
    )
    totals: Counter = Counter()
    for row in conn.execute(statement):
        totals[(row.warehouse_id, row.sku_id)] += row.quantity
    if totals:
        values = {"reserved": stock.c.reserved - bindparam("units"), "updated_at": now}
        if consume:
            values["on_hand"] = stock.c.on_hand - bindparam("units")
        give_back = update(stock).where(
            stock.c.warehouse_id == bindparam("w"), stock.c.sku_id == bindparam("s")).values(values)
        for (w, s), units in sorted(totals.items()):
            conn.execute(give_back, {"w": w, "s": s, "units": units})
    return sum(totals.values())


# ------------------------------------------------------------------ the audit


def audit_stock(conn: Connection, now: datetime, sku_ids: list[int]) -> list[Repair]:
    """Recompute reserved totals of these SKUs from the rows, under lock, and repair them.

    The stock rows are locked first (SQLite: the whole database, by BEGIN IMMEDIATE), so
    no allocation or release can commit between the recount and the repair.
    """
    rows_query = (select(stock.c.id, stock.c.warehouse_id, stock.c.sku_id, stock.c.reserved, stock.c.on_hand)
                  .where(stock.c.sku_id.in_(sku_ids))
                  .order_by(stock.c.warehouse_id, stock.c.sku_id))
    if conn.dialect.name == "postgresql":
        rows_query = rows_query.with_for_update()
    recorded = list(conn.execute(rows_query))
    sums = select(reservations.c.warehouse_id, reservations.c.sku_id, func.sum(reservations.c.quantity)
                  ).where(reservations.c.sku_id.in_(sku_ids), reservations.c.state.in_(HOLDING)
                          ).group_by(reservations.c.warehouse_id, reservations.c.sku_id)
    actual = {(w, s): int(total) for w, s, total in conn.execute(sums)}
    drifted = [row for row in recorded if row.reserved != actual.get((row.warehouse_id, row.sku_id), 0)]
    if not drifted:
        return []
    names = _names(conn, {row.warehouse_id for row in drifted}, {row.sku_id for row in drifted})
    repairs = []
    for row in drifted:
        truth = actual.get((row.warehouse_id, row.sku_id), 0)
        conn.execute(update(stock).where(stock.c.id == row.id).values(reserved=truth, updated_at=now))
        repairs.append(Repair(names[0][row.warehouse_id], names[1][row.sku_id], row.reserved, truth, row.on_hand))
    conn.execute(stock_audits.insert(), [
        {"run_at": now, "warehouse_id": row.warehouse_id, "sku_id": row.sku_id,
         "recorded_reserved": row.reserved, "actual_reserved": actual.get((row.warehouse_id, row.sku_id), 0),
         "on_hand": row.on_hand}
        for row in drifted
    ])
    return repairs


def stocked_sku_ids(conn: Connection) -> list[int]:
    return list(conn.execute(select(stock.c.sku_id).distinct().order_by(stock.c.sku_id)).scalars())


def _names(conn: Connection, warehouse_ids: set[int], sku_ids: set[int]) -> tuple[dict, dict]:
    houses = dict(conn.execute(select(warehouses.c.id, warehouses.c.code).where(warehouses.c.id.in_(warehouse_ids))).all())
    codes: dict[int, str] = {}
    for part in chunks(sorted(sku_ids)):
        codes.update(conn.execute(select(skus.c.id, skus.c.code).where(skus.c.id.in_(part))).all())
    return houses, codes
