"""Every new marketplace through the real flows: ingest, fulfil and tracking write-back.

Platforms that mask receivers either open them for labels (Taobao's oaid decrypt,
Amazon's restricted-data token), hand the carrier ciphertexts it can open (Douyin), or
do neither (JD, Shopee, Lazada): those parcels wait in the review queue for the platform's own
e-waybill instead of going to the carrier with masks on the label.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from flows.fulfil import fulfil_orders
from flows.ingest import ingest_orders
from oms.db.schema import orders, review_queue, shipments, tracking_pushes

SHIPPED_BY_OUR_CARRIER = ["taobao", "douyin", "amazon"]
LABELLED_BY_THE_PLATFORM = ["jd", "shopee", "lazada"]


def counts_by(db, column, shop: str) -> dict:
    table = column.table
    with db.connect() as conn:
        rows = conn.execute(select(column, func.count()).where(table.c.shop_code == shop).group_by(column)).all()
    return {key: n for key, n in rows}


# Amazon paces getOrderItems at 0.5 a second after a burst of 30 and reads items again to
# confirm a shipment: ten orders stay inside the bursts, so the test waits on no bucket.
ORDERS = {"amazon": 10}


def ingest_and_fulfil(add_shop, stock_levels, platform: str) -> str:
    shop = add_shop(platform, orders=ORDERS.get(platform, 25), seed=31)
    stock_levels({f"SKU-{n:04d}": 100 for n in range(1, 41)})
    report = ingest_orders(shop)
    assert report.fetched > 0 and report.stored_new > 0
    fulfil_orders()
    return shop


@pytest.mark.parametrize("platform", SHIPPED_BY_OUR_CARRIER)
def test_paid_orders_ship_and_every_tracking_number_reaches_the_platform(
    db, add_shop, sandbox, carrier, stock_levels, platform
):
    shop = ingest_and_fulfil(add_shop, stock_levels, platform)
    statuses = counts_by(db, orders.c.status, shop)
    pushes = counts_by(db, tracking_pushes.c.outcome, shop)
    assert statuses.get("packing", 0) > 0 and "allocated" not in statuses
    with db.connect() as conn:
        ours = conn.execute(select(shipments.c.tracking_number).join(orders, orders.c.id == shipments.c.order_id)
                            .where(orders.c.shop_code == shop)).scalars().all()
    assert pushes == {"success": len(ours)}
    on_platform = {t["tracking_number"] for o in sandbox.state.orders[shop] for t in o.tracking}
    assert set(ours) <= on_platform


@pytest.mark.parametrize("platform", ["taobao", "amazon"])
def test_labels_get_the_opened_receiver_and_the_database_keeps_only_the_masked_one(
    db, add_shop, sandbox, carrier, stock_levels, platform
):
    shop = ingest_and_fulfil(add_shop, stock_levels, platform)
    names = {o.receiver_name for o in sandbox.state.orders[shop] if o.receiver_name}
    with db.connect() as conn:
        stored = set(conn.execute(select(orders.c.receiver_name).where(orders.c.shop_code == shop)).scalars())
        stored_addresses = set(conn.execute(select(orders.c.receiver_address).where(orders.c.shop_code == shop)).scalars())
    waybill_requests = str(list(sandbox.state.waybills.values()))
    assert any(name in waybill_requests for name in names)  # the carrier printed real names
    assert not (stored & names)  # ...that the database never held
    assert not any(o.address and o.address in stored_addresses for o in sandbox.state.orders[shop])


@pytest.mark.parametrize("platform", LABELLED_BY_THE_PLATFORM)
def test_masked_receivers_the_platform_will_not_open_wait_for_its_own_waybill_and_reach_no_carrier(
    db, add_shop, sandbox, carrier, stock_levels, platform
):
    waybills_before = len(sandbox.state.waybills)
    shop = ingest_and_fulfil(add_shop, stock_levels, platform)
    statuses = counts_by(db, orders.c.status, shop)
    with db.connect() as conn:
        reasons = conn.execute(select(review_queue.c.reasons).where(
            review_queue.c.shop_code == shop, review_queue.c.stage == "ship")).scalars().all()
    assert statuses.get("allocated", 0) > 0 and "shipped" not in statuses
    assert len(reasons) == statuses["allocated"]
    assert all("platform's own e-waybill" in r[0] for r in reasons)
    assert len(sandbox.state.waybills) == waybills_before
