"""Customer linking outside ingest: orders stored before linking existed, batch by batch.

Ingest links every batch it stores in the same transaction (tasks.ingest.store_batch);
this is for `oms customers link`, after an upgrade or a run that stopped half-way.
"""

from __future__ import annotations

from oms.db.customers import LinkResult, link_orders, unlinked_order_ids
from tasks.ingest import now_utc
from tasks.resources import engine


def link_unlinked_orders(batch_size: int = 5000) -> LinkResult:
    """Link every order stored without a master customer id; returns the totals."""
    total = LinkResult()
    while True:
        with engine().begin() as conn:
            ids = unlinked_order_ids(conn, batch_size)
            if not ids:
                return total
            step = link_orders(conn, ids, now_utc())
        total.orders_linked += step.orders_linked
        total.customers_created += step.customers_created
        total.customers_merged += step.customers_merged
        total.neighbours_read += step.neighbours_read
