"""A spreadsheet shop through the real ingest flow: a dropped export becomes stored orders,
and its unreadable rows wait in the review queue with their sheet row numbers."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from flows.ingest import ingest_orders
from oms.db.schema import order_lines, orders, review_queue
from sandbox.generator import populate
from sandbox.model import SandboxState, SimOrder
from sandbox.spreadsheets import dirty_rows, write_export
from tasks.tokens import register_shop


def with_clean_receiver(order: SimOrder) -> SimOrder:
    """Take the generator's buyer dirt away, so only the sheet's own dirt decides."""
    order.receiver_name, order.phone = "测试", "13800138000"
    order.province, order.city, order.district, order.address = "广东", "深圳市", "南山区", "南山区科技园路1号"
    for line in order.lines:
        line.sku, line.quantity = line.sku or "SKU-0001", max(line.quantity, 1)
    return order


def test_a_dropped_workbook_is_stored_and_its_unreadable_rows_are_parked_with_row_numbers(db, tmp_path, shop_name):
    code = f"{shop_name}-xls"
    now = datetime.now(timezone.utc)
    sims = [with_clean_receiver(o) for o in populate(SandboxState(), code, count=25, seed=9, now=now)]
    path = write_export(tmp_path, "taobao-export-zh", sims, "xlsx", seed=5)
    with db.begin() as conn:
        register_shop(conn, code=code, platform="spreadsheet", name=code, base_url=tmp_path.as_uri(),
                  credentials={"source": "taobao-export-zh"}, now=now)

    report = ingest_orders(code)

    dirty = dirty_rows(path)
    held = {d.order_id for d in dirty}
    with db.connect() as conn:
        stored = set(conn.execute(select(orders.c.platform_order_id).where(orders.c.shop_code == code)).scalars())
        lines = conn.execute(select(order_lines.c.order_id)).all()
        parked = conn.execute(select(review_queue).where(review_queue.c.shop_code == code)).all()
    assert stored == {str(o.order_id) for o in sims if o.order_id not in held}
    assert len(lines) == sum(len(o.lines) for o in sims if o.order_id not in held)
    held_rows = sum(len(o.lines) for o in sims if o.order_id in held)
    assert len(parked) == held_rows == report.quarantined
    assert {e.stage for e in parked} == {"land"} and {e.platform for e in parked} == {"spreadsheet"}
    reasons = {e.payload["row"]: e.reasons[0] for e in parked}
    for row in dirty:
        assert reasons[row.row].startswith(f"{path.name} row {row.row}: ")
    assert "is not a whole number" in " ".join(reasons.values())

    again = ingest_orders(code)  # the overlap reads the same file again: nothing changes
    with db.connect() as conn:
        assert set(conn.execute(select(orders.c.platform_order_id).where(orders.c.shop_code == code)).scalars()) == stored
        assert len(conn.execute(select(review_queue).where(review_queue.c.shop_code == code)).all()) == len(parked)
    assert again.fetched > 0 and again.stored_new == 0 and again.newly_quarantined == 0
