"""`fulfil-orders`: allocate stock, create shipments with waybills, then write tracking back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.write_back import write_back_tracking
from oms.config import get_settings
from tasks.allocate import allocate_stock
from tasks.ship import create_shipments


@dataclass
class FulfilReport:
    allocated: int = 0
    backordered: int = 0
    unknown_sku: int = 0
    shipped: int = 0
    carrier_refused: int = 0
    short_skus: dict[str, int] = field(default_factory=dict)


@flow(name="fulfil-orders")
def fulfil_orders(write_back: bool = True) -> FulfilReport:
    report = FulfilReport()
    size = get_settings().fulfil_batch_size
    cursor = 0
    while True:
        batch = allocate_stock(size, after_id=cursor)
        report.allocated += batch.allocated
        report.backordered += batch.backordered
        report.unknown_sku += batch.unknown_sku
        for sku, units in batch.short_skus.items():
            report.short_skus[sku] = report.short_skus.get(sku, 0) + units
        if batch.considered < size:
            break
        cursor = batch.last_id
    cursor = 0
    while True:
        shipping = create_shipments(size, after_id=cursor)
        report.shipped += shipping.shipped
        report.carrier_refused += shipping.refused
        if shipping.considered < size:
            break
        cursor = shipping.last_id
    create_table_artifact(
        key="fulfil-orders",
        table=[{k: v for k, v in asdict(report).items() if k != "short_skus"}],
        description="Allocation and shipping of this run",
    )
    if report.short_skus:
        create_table_artifact(
            key="stock-shortages",
            table=[{"sku": sku, "units missing": units}
                   for sku, units in sorted(report.short_skus.items(), key=lambda item: -item[1])],
            description="Units that waiting orders need beyond what any warehouse holds: restock these",
        )
    if write_back:
        write_back_tracking()
    return report
