"""`fulfil-orders`: tag paid orders and hold the suspicious ones, allocate stock, tell the
platforms what is left, create shipments with waybills, write tracking back, and settle
the stock of parcels the carrier collected."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.stock import confirm_collected_parcels, release_unpaid_holds, sync_stock
from flows.write_back import write_back_tracking
from oms.config import get_settings
from tasks.allocate import AllocationSummary, allocate_stock
from tasks.ship import create_shipments
from tasks.tagging import tag_waiting_orders

EXPLANATIONS_SHOWN = 10


@dataclass
class FulfilReport:
    allocated: int = 0
    backordered: int = 0
    unknown_sku: int = 0
    split: int = 0
    held_unpaid: int = 0
    unpaid_holds_released: int = 0
    tagged: int = 0
    risk_held: int = 0  # orders held for review by this run; allocation skips them
    shipped: int = 0
    merged: int = 0
    carrier_refused: int = 0
    collected: int = 0
    short_skus: dict[str, int] = field(default_factory=dict)
    explanations: list[tuple[int, str, list[str]]] = field(default_factory=list)


@flow(name="fulfil-orders")
def fulfil_orders(write_back: bool = True, sync_platform_stock: bool = True) -> FulfilReport:
    report = FulfilReport(unpaid_holds_released=release_unpaid_holds())
    size = get_settings().fulfil_batch_size
    tagging = tag_waiting_orders(size)
    report.tagged, report.risk_held = tagging.tagged, tagging.held
    started = datetime.now(timezone.utc)
    cursor = 0
    while True:
        batch = allocate_stock(size, after_id=cursor, decided_before=started)
        _add_allocation(report, batch)
        if sync_platform_stock and batch.touched_skus:
            # Right after the batch: the platforms stop selling what it just took.
            sync_stock(only_skus=batch.touched_skus)
        if batch.considered < size:
            break
        cursor = batch.last_id
    cursor = 0
    while True:
        shipping = create_shipments(size, after_id=cursor)
        report.shipped += shipping.shipped
        report.merged += shipping.merged
        report.carrier_refused += shipping.refused
        if shipping.considered < size:
            break
        cursor = shipping.last_id
    if write_back:
        write_back_tracking()
    report.collected = confirm_collected_parcels().collected
    _publish(report)
    return report


def _add_allocation(report: FulfilReport, batch: AllocationSummary) -> None:
    report.allocated += batch.allocated
    report.backordered += batch.backordered
    report.unknown_sku += batch.unknown_sku
    report.split += batch.split
    report.held_unpaid += batch.held_unpaid
    for sku, units in batch.short_skus.items():
        report.short_skus[sku] = report.short_skus.get(sku, 0) + units
    room = EXPLANATIONS_SHOWN - len(report.explanations)
    if room > 0:
        report.explanations.extend(batch.explanations[:room])


def _publish(report: FulfilReport) -> None:
    create_table_artifact(
        key="fulfil-orders",
        table=[{k: v for k, v in asdict(report).items() if k not in ("short_skus", "explanations")}],
        description="Allocation and shipping of this run",
    )
    if report.short_skus:
        create_table_artifact(
            key="stock-shortages",
            table=[{"sku": sku, "units missing": units}
                   for sku, units in sorted(report.short_skus.items(), key=lambda item: -item[1])],
            description="Units that waiting orders need beyond what any warehouse holds: restock these",
        )
    if report.explanations:
        create_markdown_artifact(
            key="routing-decisions",
            markdown="\n\n".join(f"**Order #{order_id} → {where}**\n" + "\n".join(f"- {step}" for step in steps)
                                 for order_id, where, steps in report.explanations),
            description="Why orders went to their warehouses (the first of this run; all are in order_routing)",
        )
