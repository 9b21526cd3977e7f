"""Master customer ids in the database: one buyer across shops keeps one id, masks never join."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from oms.db.customers import link_orders, order_ids_for_keys, orders_of_customer, unlinked_order_ids
from oms.db.orders import store_orders
from oms.db.schema import customers, orders
from oms.domain.order import Receiver
from tests.factories import make_order

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)


def _receiver(name: str, phone: str, address: str, masked: bool = False) -> Receiver:
    return Receiver(name=name, phone=phone, province="浙江省", city="杭州市", district="西湖区",
                    address=address, masked=masked)


def _store_and_link(db, *placed):
    with db.begin() as conn:
        store_orders(conn, list(placed), now=NOW)
        ids = order_ids_for_keys(conn, [order.global_key for order in placed])
        result = link_orders(conn, ids, NOW)
    return result


def _master_ids(db) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(select(orders.c.platform_order_id, orders.c.master_customer_id)).all()
    return {order_id: master for order_id, master in rows}


def test_one_buyer_on_two_platforms_in_two_batches_keeps_one_master_id(db):
    first = make_order(1, platform="taobao", shop_code="tb-1",
                       receiver=_receiver("周晓梅", "+8613912345678", "文三路 90 号 3 幢 201"))
    _store_and_link(db, first)
    later = make_order(2, platform="shopify", shop_code="sf-1",
                       receiver=_receiver("周晓梅", "139 1234 5678", "文三路90号3栋201室"))
    result = _store_and_link(db, later)
    masters = _master_ids(db)
    assert masters["ORDER-1"] == masters["ORDER-2"] is not None
    assert result.customers_created == 0 and result.neighbours_read == 1


def test_two_people_whose_phones_mask_alike_stay_two_customers(db):
    one = make_order(1, platform="pdd", shop_code="pdd-1",
                     receiver=_receiver("李*", "139****5678", "***", masked=True))
    other = make_order(2, platform="pdd", shop_code="pdd-1",
                       receiver=_receiver("王*", "139****5678", "***", masked=True))
    _store_and_link(db, one)
    _store_and_link(db, other)
    masters = _master_ids(db)
    assert masters["ORDER-1"] != masters["ORDER-2"]


def test_an_order_that_bridges_two_customers_merges_them_into_the_older(db):
    by_phone = make_order(1, platform="jd", shop_code="jd-1",
                          receiver=_receiver("陈立", "+8613700001111", "教工路 18 号 2 单元 502"))
    by_buyer = make_order(2, platform="jd", shop_code="jd-1", buyer_ref="jd-buyer-77",
                          receiver=_receiver("陈立", "+8613822223333", "古墩路 7 号"))
    _store_and_link(db, by_phone)
    _store_and_link(db, by_buyer)
    assert len(set(_master_ids(db).values())) == 2
    bridge = make_order(3, platform="jd", shop_code="jd-1", buyer_ref="jd-buyer-77",
                        receiver=_receiver("陈立", "+8613700001111", "教工路 18 号 2 单元 502"))
    result = _store_and_link(db, bridge)
    masters = _master_ids(db)
    assert len(set(masters.values())) == 1
    assert result.customers_merged == 1
    with db.connect() as conn:
        absorbed = conn.execute(select(customers.c.id, customers.c.merged_into)
                                .where(customers.c.merged_into.is_not(None))).all()
        assert [(old, new) for old, new in absorbed] == [(2, 1)]
        # The absorbed id still finds the buyer's orders.
        assert {o["platform_order_id"] for o in orders_of_customer(conn, 2)} == {"ORDER-1", "ORDER-2", "ORDER-3"}


def test_linking_a_batch_again_changes_nothing(db):
    placed = make_order(1, receiver=_receiver("高远", "+8613511112222", "龙井路 3 号"))
    _store_and_link(db, placed)
    before = _master_ids(db)
    with db.begin() as conn:
        again = link_orders(conn, order_ids_for_keys(conn, [placed.global_key]), NOW)
    assert again.orders_linked == 0 and again.customers_created == 0
    assert _master_ids(db) == before
    with db.connect() as conn:
        assert unlinked_order_ids(conn, 10) == []
