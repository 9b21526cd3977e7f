"""Ingest gives every stored order its master customer: one buyer in two shops is one customer."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from flows.ingest import ingest_orders
from oms.db.schema import orders
from tests.flows.test_pipeline import make_clean, paid_order

# The sandbox lives for the whole session, so each run takes shop codes of its own.
_runs = itertools.count(1)


def _masters(db) -> dict[tuple[str, str], int | None]:
    with db.connect() as conn:
        rows = conn.execute(select(orders.c.shop_code, orders.c.platform_order_id, orders.c.master_customer_id)).all()
    return {(shop, order_id): master for shop, order_id, master in rows}


def test_a_buyer_of_two_shops_gets_one_master_customer(db, add_shop, sandbox):
    # Two storefronts that show receivers in plain text; the Chinese platforms mask them,
    # and their orders join by the platform's buyer id (see the resolver's unit tests).
    run = next(_runs)
    first = add_shop("shopify", orders=15, seed=21, code=f"store-cn-{run}")
    second = add_shop("shopify", orders=15, seed=22, code=f"store-intl-{run}")
    for shop in (first, second):
        buyer = make_clean(paid_order(shop, "SKU-0001"))
        buyer.receiver_name, buyer.phone, buyer.address = "欧阳明月", "13912340077", "张江路 88 弄 6 号 1201"
        sandbox.state.orders[shop].append(buyer)
    ingest_orders(first)
    ingest_orders(second)
    masters = _masters(db)
    assert masters and all(master is not None for master in masters.values())
    with db.connect() as conn:
        shared = conn.execute(select(orders.c.shop_code, orders.c.master_customer_id)
                              .where(orders.c.receiver_name == "欧阳明月")).all()
    assert {shop for shop, _ in shared} == {first, second}
    assert len({master for _, master in shared}) == 1
    # Nobody else shares that customer, and the seeded buyers are not lumped together.
    assert sum(1 for master in masters.values() if master == shared[0][1]) == len(shared)
    assert len(set(masters.values())) > len(masters) / 2


def test_ingesting_the_same_window_again_keeps_every_master_customer(db, add_shop):
    shop = add_shop("pdd", orders=20, seed=23)
    ingest_orders(shop)
    before = _masters(db)
    ingest_orders(shop)
    assert _masters(db) == before
