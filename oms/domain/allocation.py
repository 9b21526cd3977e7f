"""What an order asks of the warehouses: its lines, counted per SKU.

These are the demand types the routing rules (`oms.domain.routing`) and the stock layer
share. Which warehouse ships what is decided in `routing`; this module only says what is
wanted, so both sides count units the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from oms.domain.errors import ShortLine

__all__ = ["Demand", "DemandLine", "ShortLine", "units_by_sku"]


@dataclass(frozen=True)
class DemandLine:
    line_id: int
    sku: str
    quantity: int


def units_by_sku(lines: Iterable[DemandLine]) -> Counter:
    """SKU -> units wanted; two lines of one SKU add up, lines of no units count for nothing."""
    wanted: Counter = Counter()
    for line in lines:
        if line.quantity > 0:
            wanted[line.sku] += line.quantity
    return wanted


@dataclass(frozen=True)
class Demand:
    order_id: int
    lines: tuple[DemandLine, ...]

    def by_sku(self) -> Counter:
        return units_by_sku(self.lines)
