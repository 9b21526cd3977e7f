"""Warehouse routing: which warehouse ships which order, planned in memory for a batch.

The plan is pure: it takes what each order wants and what each warehouse has, and
decides. The database layer then applies it with guarded updates that fail rather than
oversell if the stock moved since it was read.

Rules: orders are served in the order given (oldest payment first); an order ships whole
from one warehouse, the first in priority order that can fill every line; an order no
warehouse can fill waits (backordered) and takes nothing, so it never blocks a later,
smaller order that fits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from oms.domain.errors import ShortLine


@dataclass(frozen=True)
class DemandLine:
    line_id: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class Demand:
    order_id: int
    lines: tuple[DemandLine, ...]

    def by_sku(self) -> Counter:
        wanted: Counter = Counter()
        for line in self.lines:
            wanted[line.sku] += line.quantity
        return wanted


@dataclass
class AllocationPlan:
    warehouse_of: dict[int, str] = field(default_factory=dict)  # order id -> warehouse
    short: dict[int, list[ShortLine]] = field(default_factory=dict)  # order id -> what lacked
    taken: Counter = field(default_factory=Counter)  # (warehouse, sku) -> units reserved

    def reservations(self, demands: list[Demand]):
        """(order_id, line_id, warehouse, sku, quantity) for every allocated line."""
        for demand in demands:
            warehouse = self.warehouse_of.get(demand.order_id)
            if warehouse is None:
                continue
            for line in demand.lines:
                yield demand.order_id, line.line_id, warehouse, line.sku, line.quantity


def plan_allocation(
    demands: list[Demand],
    available: dict[tuple[str, str], int],
    warehouses: list[str],
) -> AllocationPlan:
    """`available[(warehouse, sku)]` is on hand minus reserved minus safety stock."""
    left = Counter({key: max(units, 0) for key, units in available.items()})
    plan = AllocationPlan()
    for demand in demands:
        wanted = demand.by_sku()
        chosen = next(
            (w for w in warehouses if all(left[(w, sku)] >= n for sku, n in wanted.items())),
            None,
        )
        if chosen is None:
            plan.short[demand.order_id] = _shortfall(wanted, left, warehouses)
            continue
        plan.warehouse_of[demand.order_id] = chosen
        for sku, units in wanted.items():
            left[(chosen, sku)] -= units
            plan.taken[(chosen, sku)] += units
    return plan


def _shortfall(wanted: Counter, left: Counter, warehouses: list[str]) -> list[ShortLine]:
    """What is missing, measured against the warehouse that has the most of each SKU."""
    short = []
    for sku, units in sorted(wanted.items()):
        best = max((left[(w, sku)] for w in warehouses), default=0)
        if best < units:
            short.append(ShortLine(sku=sku, wanted=units, available=best))
    return short
