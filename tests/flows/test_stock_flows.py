"""Stock through the real Prefect engine, the sandbox and the database: merged parcels,
pickups settling locked stock, the audit, deliveries that free backorders, replenishment
alerts, and stock sync to a platform that fails and recovers."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select, update

from flows.fulfil import fulfil_orders
from flows.ingest import ingest_orders
from flows.stock import audit_stock_totals, confirm_collected_parcels, receive_stock_delivery, sync_stock
from oms.config import reset_settings
from oms.db.schema import alert_incidents, listings, orders, reservations, shipments, skus, stock, stock_audits
from sandbox.carrier import collect
from sandbox.model import SimLine, SimOrder

_ids = itertools.count(960_000_001)


def sim_order(shop: str, lines: dict[str, int], *, receiver: str = "测试", address: str = "测试路 8 号",
              hours_ago: float = 2) -> SimOrder:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    order_id = next(_ids)
    return SimOrder(
        order_id=order_id, shop=shop, created_at=now - timedelta(hours=hours_ago),
        updated_at=now - timedelta(hours=1), status="paid", currency="CNY",
        lines=[SimLine(sku, sku, n, Decimal("10.00"), line_id=order_id * 100 + i)
               for i, (sku, n) in enumerate(lines.items(), start=1)],
        shipping_fee=Decimal("0"), receiver_name=receiver, phone="13800138000", province="上海",
        city="上海市", district="浦东新区", address=address)


def rows(db, query):
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def test_orders_of_one_buyer_to_one_address_ship_as_one_parcel(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("shopify", orders=0)  # receivers in plaintext: masked ones never merge
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-M1": 1}),
                                   sim_order(shop, {"SKU-M2": 2}, address="测试路８号 "),  # same, typed differently
                                   sim_order(shop, {"SKU-M1": 1}, receiver="别人")]
    stock_levels({"SKU-M1": 5, "SKU-M2": 5})
    ingest_orders(shop)
    report = fulfil_orders(write_back=False, sync_platform_stock=False)
    numbers = [row["tracking_number"] for row in rows(db, select(shipments).order_by(shipments.c.order_id))]
    assert report.merged == 2 and len(numbers) == 3
    assert numbers[0] == numbers[1] != numbers[2]
    parcel = sandbox.state.waybills[numbers[0]]
    assert "+1" in str(parcel)  # one waybill ordered for the two orders
    refs = [row["parcel_ref"] for row in rows(db, select(shipments).order_by(shipments.c.order_id))]
    assert refs[0] == refs[1] and refs[0].endswith("+1") and refs[2] != refs[0]


def test_merging_switched_off_in_the_configuration_gives_each_order_its_parcel(
        db, add_shop, sandbox, carrier, stock_levels, tmp_path, monkeypatch):
    rules = tmp_path / "routing.yaml"
    rules.write_text("merge_enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("OMS_ROUTING_RULES_PATH", str(rules))
    reset_settings()
    shop = add_shop("shopify", orders=0)
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-M1": 1}), sim_order(shop, {"SKU-M2": 1})]
    stock_levels({"SKU-M1": 5, "SKU-M2": 5})
    ingest_orders(shop)
    fulfil_orders(write_back=False, sync_platform_stock=False)
    assert len({row["tracking_number"] for row in rows(db, select(shipments))}) == 2


def test_pushed_parcels_keep_their_stock_until_the_carrier_collects_them(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-P": 2})]
    stock_levels({"SKU-P": 5})
    ingest_orders(shop)
    fulfil_orders(sync_platform_stock=False)  # allocates, ships, writes back, asks the carrier
    assert [r["state"] for r in rows(db, select(reservations))] == ["locked"]
    assert [(r["on_hand"], r["reserved"]) for r in rows(db, select(stock))] == [(5, 2)]
    collect(sandbox.state, None, datetime.now(timezone.utc))
    summary = confirm_collected_parcels()
    assert summary.collected == 1
    assert [r["state"] for r in rows(db, select(reservations))] == ["consumed"]
    assert [(r["on_hand"], r["reserved"]) for r in rows(db, select(stock))] == [(3, 0)]
    assert [r["status"] for r in rows(db, select(shipments))] == ["picked_up"]


def test_the_audit_flow_repairs_injected_drift_and_reports_each_repair(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-D": 2})]
    stock_levels({"SKU-D": 5, "SKU-E": 4})
    ingest_orders(shop)
    fulfil_orders(write_back=False, sync_platform_stock=False)
    with db.begin() as conn:
        conn.execute(update(stock).values(reserved=stock.c.reserved + 3))  # drift on both rows
    repairs = audit_stock_totals()
    assert sorted((r.sku, r.recorded_reserved, r.actual_reserved) for r in repairs) == [
        ("SKU-D", 5, 2), ("SKU-E", 3, 0)]
    assert len(rows(db, select(stock_audits))) == 2
    assert sorted(r["reserved"] for r in rows(db, select(stock))) == [0, 2]
    assert audit_stock_totals() == []


def test_a_delivery_allocates_the_backorders_waiting_for_it(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-B": 3}), sim_order(shop, {"SKU-B": 1}, receiver="乙")]
    stock_levels({"SKU-B": 1})
    ingest_orders(shop)
    first = fulfil_orders(write_back=False, sync_platform_stock=False)
    assert (first.allocated, first.backordered) == (1, 1)
    waiting = rows(db, select(orders.c.status).where(orders.c.status == "backordered"))
    assert len(waiting) == 1
    result = receive_stock_delivery([{"warehouse": "WH-SH", "sku": "SKU-B", "units": 5}])
    assert result["backorders_allocated"] == 1
    assert sorted(r["status"] for r in rows(db, select(orders.c.status))) == ["allocated", "packing"]
    assert [(r["on_hand"], r["reserved"]) for r in rows(db, select(stock))] == [(6, 4)]


def test_stock_under_its_reorder_point_opens_one_replenishment_incident(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-R": 2}), sim_order(shop, {"SKU-R": 1}, receiver="丙")]
    stock_levels({"SKU-R": 6})
    with db.begin() as conn:
        conn.execute(update(skus).where(skus.c.code == "SKU-R").values(reorder_point=4))
    ingest_orders(shop)
    fulfil_orders(write_back=False, sync_platform_stock=False)
    incidents = rows(db, select(alert_incidents).where(alert_incidents.c.kind == "stock-low"))
    assert [(i["subject"], i["detail"]["sellable"], i["resolved_at"]) for i in incidents] == [("SKU-R", 3, None)]
    receive_stock_delivery([{"warehouse": "WH-SH", "sku": "SKU-R", "units": 10}])
    incidents = rows(db, select(alert_incidents).where(alert_incidents.c.kind == "stock-low"))
    assert len(incidents) == 1 and incidents[0]["resolved_at"] is not None


def test_fulfil_tells_the_platform_what_is_left_after_allocating(db, add_shop, sandbox, carrier, stock_levels):
    shop = add_shop("shopify", orders=0)
    sandbox.state.orders[shop] += [sim_order(shop, {"SKU-0001": 2})]
    stock_levels({"SKU-0001": 7, "SKU-0002": 4})
    ingest_orders(shop)
    fulfil_orders(write_back=False)
    levels = sandbox.state.stock_levels[shop]
    assert levels["SKU-0001"] == 5  # 7 on hand, 2 just reserved
    pushed = {r["sku"]: r["pushed_quantity"] for r in rows(db, select(listings).where(listings.c.shop_code == shop))}
    assert pushed["SKU-0001"] == 5 and pushed["SKU-0002"] is None  # only what the batch touched
    sync_stock()  # the scheduled sync sends every listing not yet told
    assert sandbox.state.stock_levels[shop]["SKU-0002"] == 4
    before = len(sandbox.state.stock_pushes[shop])
    sync_stock()  # nothing changed since: nothing is sent again
    assert len(sandbox.state.stock_pushes[shop]) == before
    sync_stock(full=True)
    assert len(sandbox.state.stock_pushes[shop]) > before


def test_a_stock_push_that_keeps_failing_is_kept_alerted_and_sent_once_the_platform_is_back(
        db, add_shop, sandbox, stock_levels):
    shop = add_shop("shopify", orders=0)
    stock_levels({"SKU-0001": 7})
    sync_stock(full=True)  # lists the shop's items once
    with db.begin() as conn:
        conn.execute(update(stock).values(on_hand=3))
    sandbox.state.faults.arm("shopify", "server_error", times=-1)
    state = sync_stock(return_state=True)
    assert state.is_failed() and shop in state.message
    incident = rows(db, select(alert_incidents).where(alert_incidents.c.kind == "stock-sync"))
    assert [(i["subject"], i["resolved_at"]) for i in incident] == [(shop, None)]
    sandbox.state.faults.clear()
    sync_stock()
    assert sandbox.state.stock_levels[shop]["SKU-0001"] == 3
    incident = rows(db, select(alert_incidents).where(alert_incidents.c.kind == "stock-sync"))
    assert incident[0]["resolved_at"] is not None


def test_amazon_stock_is_patched_with_the_product_type_its_listing_was_read_with(db, add_shop, sandbox, stock_levels):
    shop = add_shop("amazon", orders=0)
    stock_levels({"SKU-0003": 9})
    results = sync_stock(full=True)
    assert results[shop].refused == 0 and results[shop].pushed > 0
    assert sandbox.state.stock_levels[shop]["SKU-0003"] == 9
    stored = rows(db, select(listings.c.product_type).where(listings.c.shop_code == shop))
    assert stored and all(row["product_type"] for row in stored)
