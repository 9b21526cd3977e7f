"""Replenishment alerts: a SKU under its reorder point opens an incident and tells on-call
(and purchasing) once; the incident closes, with a "replenished" alert, when stock is back.

Checked for the SKUs an allocation batch or a delivery touched, and for every SKU with a
reorder point by the stock audit, so a threshold set by hand is noticed within a day.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from oms.db.dialect import chunks
from oms.db.incidents import report_recovery, report_trouble
from oms.db.schema import skus
from oms.db.stock import sellable_by_sku
from tasks.alerts import STOCK_LOW, STOCK_REPLENISHED, announce_stock
from tasks.resources import engine

KIND = "stock-low"


def watch_reorder_points(sku_codes: list[str] | None) -> list[str]:
    """Alert for SKUs under their reorder point; returns the SKUs that are low now.

    `None` checks every SKU that has a reorder point.
    """
    now = datetime.now(timezone.utc)
    low_now: list[str] = []
    with engine().begin() as conn:
        thresholds = _reorder_points(conn, sku_codes)
        if not thresholds:
            return []
        sellable = sellable_by_sku(conn, list(thresholds))
        for code, threshold in sorted(thresholds.items()):
            units = sellable.get(code, 0)
            if units < threshold:
                low_now.append(code)
                trouble = report_trouble(conn, KIND, code, now, detail={"sellable": units, "reorder_point": threshold})
                if trouble.notify:
                    announce_stock(STOCK_LOW, subject=code,
                                   headline=f"Replenish {code}: {units} sellable, reorder point {threshold}",
                                   message=(f"SKU {code} has {units} units left to sell across all warehouses, "
                                            f"under its reorder point of {threshold}. Order more, or move stock "
                                            "between warehouses, before the platforms sell out."),
                                   sku=code, sellable=units, reorder_point=threshold)
            elif report_recovery(conn, KIND, code, now) is not None:
                announce_stock(STOCK_REPLENISHED, subject=code,
                               headline=f"{code} replenished: {units} sellable",
                               message=f"SKU {code} is back at {units} sellable units (reorder point {threshold}).",
                               sku=code, sellable=units, reorder_point=threshold)
    return low_now


def _reorder_points(conn, sku_codes: list[str] | None) -> dict[str, int]:
    query = select(skus.c.code, skus.c.reorder_point).where(skus.c.reorder_point.is_not(None))
    if sku_codes is None:
        return dict(conn.execute(query).all())
    found: dict[str, int] = {}
    for part in chunks(sorted(set(sku_codes))):
        found.update(conn.execute(query.where(skus.c.code.in_(part))).all())
    return found
