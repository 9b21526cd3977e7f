"""Customer linking: the master customer id of every stored order, one batch per task run."""

from __future__ import annotations

from prefect import get_run_logger, task

from oms.db.customers import LinkResult, link_orders, order_ids_for_keys, unlinked_order_ids
from tasks.ingest import now_utc
from tasks.policy import BATCH_TASK
from tasks.resources import engine


@task(name="link-customers", **BATCH_TASK)
def link_customers(keys: list[tuple[str, str, str]]) -> LinkResult:
    """Resolve the orders of one stored batch (by global key) against the customers we know."""
    with engine().begin() as conn:
        result = link_orders(conn, order_ids_for_keys(conn, keys), now_utc())
    get_run_logger().info(
        "customers: %d orders linked, %d new customers, %d merged, %d stored neighbours read",
        result.orders_linked, result.customers_created, result.customers_merged, result.neighbours_read,
    )
    return result


def link_unlinked_orders(batch_size: int = 5000) -> LinkResult:
    """Link every order stored without a master customer id, batch by batch (the CLI's
    `oms customers link`, for orders stored before linking existed)."""
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
