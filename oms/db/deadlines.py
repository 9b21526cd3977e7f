"""Stored ship-by deadlines: computed for open orders, their stages moved, alerts claimed.

`watch_deadlines` is one pass of the `sla-watch` flow over the database:

1. orders that need a deadline (open, and none stored yet, or changed since it was
   computed: a payment, a platform ship-by, new lines) get one from `oms.domain.sla`;
2. every deadline still watched gets its stage at `now`: the tracking number the platform
   accepted (`shipments.tracking_pushed_at` of the order's `writes_back` parcel) makes it
   done or done_late, a cancelled order is settled silently;
3. a stage moves only by a conditional UPDATE (`... WHERE stage = <the stage read>`), and
   only the rows that UPDATE changed give alerts, so two runs that overlap cannot both
   announce the same warning or breach.

The caller commits, then emits the returned alerts: a run that fails before its commit
announces nothing and leaves the stages for the next run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.schema import order_lines, orders, ship_deadlines, shipments, warehouses
from oms.domain.order import OrderStatus
from oms.domain.sla import (
    AtRiskRow,
    Deadline,
    Escalation,
    OrderForSla,
    SlaRules,
    Stage,
    WatchedOrder,
    at_risk_by_warehouse,
    escalations,
    ship_by_deadline,
    sla_stage,
    stage_to_store,
)

# Orders whose parcel may still owe its platform a tracking number. Unpaid orders have no
# clock yet; SHIPPED stays watched because the carrier may collect before write-back.
WATCHED_STATUSES = tuple(s.value for s in (OrderStatus.PAID, OrderStatus.BACKORDERED, OrderStatus.ALLOCATED,
                                           OrderStatus.PACKING, OrderStatus.SHIPPED))
# Shipped outside the pipeline (from the platform's back-office): the platform has a number.
SHIPPED_BY_PLATFORM = (OrderStatus.SHIPPED.value, OrderStatus.DELIVERED.value)
CANCELLED = "cancelled"  # not a Stage: the watch ends with the stage last announced


@dataclass(frozen=True)
class SlaAlert:
    """One escalation to announce: who, where, by when, and how far it got."""

    escalation: Escalation
    order_id: int
    platform: str
    shop_code: str
    platform_order_id: str
    warehouse: str | None
    deadline: datetime
    rule: str | None
    step: str | None
    minutes_left: int  # negative once past the deadline


@dataclass
class WatchResult:
    stored: int = 0  # deadlines computed for the first time
    recomputed: int = 0  # deadlines computed again after the order changed
    settled: int = 0  # watches ended: tracking accepted, or the order cancelled
    alerts: list[SlaAlert] = field(default_factory=list)


@dataclass(frozen=True)
class _Facts:
    """What one order's stage depends on, read in one batch."""

    order_id: int
    platform: str
    shop_code: str
    platform_order_id: str
    status: str
    created_at: datetime
    paid_at: datetime | None
    ship_by: datetime | None
    platform_updated_at: datetime
    modified_at: datetime
    warehouse: str | None
    skus: tuple[str, ...]
    pushed_at: datetime | None
    has_parcel: bool
    step: str | None
    stored: dict[str, Any] | None  # the ship_deadlines row, if any

    @property
    def accepted_at(self) -> datetime | None:
        """When the platform had the tracking number, if it has: our accepted push, else
        the platform's own word that it shipped (its update time is the best we know)."""
        if self.pushed_at is not None:
            return self.pushed_at
        if not self.has_parcel and self.status in SHIPPED_BY_PLATFORM:
            return self.platform_updated_at
        return None

    @property
    def current_step(self) -> str:
        return self.step or self.status


def watch_deadlines(conn: Connection, rules: SlaRules, now: datetime) -> WatchResult:
    """One pass: store missing or stale deadlines, move stages, return the claimed alerts."""
    result = WatchResult()
    ids = sorted(set(_needing_deadline(conn)) | set(_still_watched(conn)))
    for part in chunks(ids):
        moves: list[_Move] = []
        recomputed: list[tuple[int, Deadline]] = []
        for facts in _facts(conn, part):
            fresh, move = _decide(facts, rules, now)
            if fresh is not None and facts.stored is not None:
                recomputed.append((facts.order_id, fresh))
            if move is not None:
                moves.append(move)
        result.recomputed += _store_recomputed(conn, recomputed, now)
        _claim(conn, moves, now, result)
    return result


def at_risk(conn: Connection, now: datetime, rules: SlaRules | None = None) -> dict[str, list[AtRiskRow]]:
    """Watched orders in warning or past their deadline at `now`, by warehouse (the CLI's
    and the artifact's view). Stages are worked out at `now`, not read from the last run."""
    warn_before = rules.warn_before if rules is not None else _default_rules().warn_before
    watched: list[WatchedOrder] = []
    for part in chunks(_still_watched(conn, due_before=now + warn_before)):
        for facts in _facts(conn, part):
            if facts.accepted_at is not None or facts.status == OrderStatus.CANCELLED.value:
                continue  # settles on the next run; nothing to do for it now
            deadline = facts.stored["deadline"]
            watched.append(WatchedOrder(facts.order_id, facts.platform, facts.platform_order_id, facts.warehouse,
                                        deadline, sla_stage(deadline, now, None, warn_before),
                                        shop_code=facts.shop_code, step=facts.current_step))
    return at_risk_by_warehouse(watched, now)


# ------------------------------------------------------------------ one order


@dataclass(frozen=True)
class _Move:
    """A stage change to claim: the rows it applies to must still be at `previous`."""

    order_id: int
    previous: Stage | None  # None: no row yet, insert it
    current: Stage | str  # a Stage, or CANCELLED
    deadline: datetime
    rule: str | None
    facts: _Facts
    computed: Deadline | None = None  # for an insert: the deadline and its source


def _decide(facts: _Facts, rules: SlaRules, now: datetime) -> tuple[Deadline | None, _Move | None]:
    """The order's deadline if it must be (re)computed, and the stage move it needs."""
    stored = facts.stored
    fresh = None
    if stored is None or (stored["settled_at"] is None and stored["computed_at"] < facts.modified_at):
        fresh = ship_by_deadline(OrderForSla(facts.order_id, facts.platform, facts.created_at, facts.skus,
                                             facts.paid_at, facts.ship_by), rules)
    deadline_at = fresh.at if fresh is not None else stored["deadline"]
    if facts.accepted_at is not None:
        current: Stage | str = sla_stage(deadline_at, now, facts.accepted_at, rules.warn_before)
    elif facts.status == OrderStatus.CANCELLED.value:
        current = CANCELLED
    else:
        current = sla_stage(deadline_at, now, None, rules.warn_before)
    if stored is None:
        if current == CANCELLED:
            return None, None  # cancelled before it was ever watched: nothing to keep
        return fresh, _Move(facts.order_id, None, current, deadline_at, fresh.rule, facts, fresh)
    previous = Stage(stored["stage"])
    settles = current == CANCELLED or current in (Stage.DONE, Stage.DONE_LATE)
    if not settles and stage_to_store(previous, current) == previous:
        return fresh, None
    rule = fresh.rule if fresh is not None else stored["rule"]
    return fresh, _Move(facts.order_id, previous, current, deadline_at, rule, facts)


# ------------------------------------------------------------------ claiming


def _claim(conn: Connection, moves: list[_Move], now: datetime, result: WatchResult) -> None:
    """Write the moves; alerts only for the rows this run changed."""
    inserts = [move for move in moves if move.previous is None]
    if inserts:
        won = _insert_watches(conn, inserts, now)
        for move in inserts:
            if move.order_id in won:
                result.stored += 1
                result.settled += move.current in (Stage.DONE, Stage.DONE_LATE)
                result.alerts += _alerts(move, now)
    groups: dict[tuple, list[_Move]] = defaultdict(list)
    for move in moves:
        if move.previous is not None:
            groups[(move.previous, move.current)].append(move)
    for (previous, current), group in groups.items():
        won = _move_stage(conn, [move.order_id for move in group], previous, current, now)
        for move in group:
            if move.order_id in won:
                result.settled += current == CANCELLED or current in (Stage.DONE, Stage.DONE_LATE)
                if current != CANCELLED:
                    result.alerts += _alerts(move, now)


def _insert_watches(conn: Connection, moves: list[_Move], now: datetime) -> set[int]:
    rows = []
    for move in moves:
        stage = stage_to_store(None, move.current)
        emitted = escalations(None, move.current)
        rows.append({
            "order_id": move.order_id, "deadline": move.computed.at, "source": move.computed.source,
            "rule": move.computed.rule[:64], "stage": stage.value,
            "warned_at": now if Escalation.WARNING in emitted else None,
            "breached_at": now if Escalation.BREACH in emitted else None,
            "settled_at": now if stage in (Stage.DONE, Stage.DONE_LATE) else None,
            "computed_at": now,
        })
    statement = (upsert_insert(conn, ship_deadlines).on_conflict_do_nothing(index_elements=["order_id"])
                 .returning(ship_deadlines.c.order_id))
    return set(conn.execute(statement, rows).scalars())


def _move_stage(conn: Connection, order_ids: list[int], previous: Stage, current: Stage | str,
                now: datetime) -> set[int]:
    """The conditional UPDATE: only rows still at `previous` and unsettled move."""
    if current == CANCELLED:
        values: dict[str, Any] = {"settled_at": now}
    else:
        emitted = escalations(previous, current)
        values = {"stage": stage_to_store(previous, current).value}
        if Escalation.WARNING in emitted:
            values["warned_at"] = now
        if Escalation.BREACH in emitted:
            values["breached_at"] = now
        if current in (Stage.DONE, Stage.DONE_LATE):
            values["settled_at"] = now
    won: set[int] = set()
    for part in chunks(order_ids):
        statement = (update(ship_deadlines)
                     .where(ship_deadlines.c.order_id.in_(part), ship_deadlines.c.stage == previous.value,
                            ship_deadlines.c.settled_at.is_(None))
                     .values(**values).returning(ship_deadlines.c.order_id))
        won.update(conn.execute(statement).scalars())
    return won


def _store_recomputed(conn: Connection, recomputed: list[tuple[int, Deadline]], now: datetime) -> int:
    """New deadlines of changed orders, in one executemany. The stage is left alone:
    `stage_to_store` keeps an announced warning even if the platform moved the deadline
    later, so it cannot be announced twice."""
    if not recomputed:
        return 0
    conn.execute(update(ship_deadlines)
                 .where(ship_deadlines.c.order_id == bindparam("watched_id"), ship_deadlines.c.settled_at.is_(None))
                 .values(deadline=bindparam("new_deadline"), source=bindparam("new_source"),
                         rule=bindparam("new_rule"), computed_at=now),
                 [{"watched_id": order_id, "new_deadline": deadline.at, "new_source": deadline.source,
                   "new_rule": deadline.rule[:64]} for order_id, deadline in recomputed])
    return len(recomputed)


def _alerts(move: _Move, now: datetime) -> list[SlaAlert]:
    facts = move.facts
    minutes_left = int(((move.deadline - now).total_seconds() / 60) // 1)
    return [SlaAlert(escalation, facts.order_id, facts.platform, facts.shop_code, facts.platform_order_id,
                     facts.warehouse, move.deadline, move.rule, facts.current_step, minutes_left)
            for escalation in escalations(move.previous, move.current)]


# ------------------------------------------------------------------ reading


def _needing_deadline(conn: Connection) -> list[int]:
    """Open orders without a deadline, or changed since theirs was computed."""
    query = (select(orders.c.id)
             .select_from(orders.outerjoin(ship_deadlines, ship_deadlines.c.order_id == orders.c.id))
             .where(orders.c.status.in_(WATCHED_STATUSES),
                    or_(ship_deadlines.c.order_id.is_(None),
                        and_(ship_deadlines.c.settled_at.is_(None),
                             ship_deadlines.c.computed_at < orders.c.modified_at))))
    return list(conn.execute(query).scalars())


def _still_watched(conn: Connection, due_before: datetime | None = None) -> list[int]:
    query = select(ship_deadlines.c.order_id).where(ship_deadlines.c.settled_at.is_(None))
    if due_before is not None:
        query = query.where(ship_deadlines.c.deadline <= due_before)
    return list(conn.execute(query.order_by(ship_deadlines.c.order_id)).scalars())


def _facts(conn: Connection, order_ids: list[int]) -> list[_Facts]:
    """Everything the stages of these orders depend on, in four queries."""
    if not order_ids:
        return []
    home = warehouses.alias("home")
    order_rows = conn.execute(
        select(orders.c.id, orders.c.platform, orders.c.shop_code, orders.c.platform_order_id, orders.c.status,
               orders.c.created_at, orders.c.paid_at, orders.c.ship_by, orders.c.platform_updated_at,
               orders.c.modified_at, home.c.code.label("warehouse"))
        .select_from(orders.outerjoin(home, home.c.id == orders.c.warehouse_id))
        .where(orders.c.id.in_(order_ids))).all()
    skus: dict[int, list[str]] = defaultdict(list)
    for order_id, sku in conn.execute(select(order_lines.c.order_id, order_lines.c.sku)
                                      .where(order_lines.c.order_id.in_(order_ids))
                                      .order_by(order_lines.c.order_id, order_lines.c.line_no)):
        skus[order_id].append(sku)
    parcels: dict[int, Any] = {}
    parcel_house = warehouses.alias("parcel_house")
    for row in conn.execute(
            select(shipments.c.order_id, shipments.c.tracking_pushed_at, shipments.c.warehouse_step,
                   parcel_house.c.code.label("warehouse"))
            .select_from(shipments.join(parcel_house, parcel_house.c.id == shipments.c.warehouse_id))
            .where(shipments.c.order_id.in_(order_ids), shipments.c.writes_back.is_(True),
                   shipments.c.voided_at.is_(None))
            .order_by(shipments.c.id)):
        parcels.setdefault(row.order_id, row)  # one writes_back parcel per order; the first if more
    stored = {row.order_id: dict(row._mapping) for row in conn.execute(
        select(ship_deadlines).where(ship_deadlines.c.order_id.in_(order_ids)))}
    found = []
    for row in order_rows:
        parcel = parcels.get(row.id)
        watch = stored.get(row.id)
        found.append(_Facts(
            order_id=row.id, platform=row.platform, shop_code=row.shop_code,
            platform_order_id=row.platform_order_id, status=row.status, created_at=row.created_at,
            paid_at=row.paid_at, ship_by=row.ship_by, platform_updated_at=row.platform_updated_at,
            modified_at=row.modified_at, warehouse=row.warehouse or (parcel.warehouse if parcel is not None else None),
            skus=tuple(skus.get(row.id, ())),
            pushed_at=parcel.tracking_pushed_at if parcel is not None else None,
            has_parcel=parcel is not None, step=parcel.warehouse_step if parcel is not None else None,
            stored=watch))
    return sorted(found, key=lambda facts: facts.order_id)


def _default_rules() -> SlaRules:
    # Imported here: callers that pass their rules never read the file.
    from oms.sla_rules import load_sla_rules

    return load_sla_rules()

