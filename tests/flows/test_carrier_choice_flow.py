"""Carrier choice in the shipping step: each parcel's waybill from the carrier the rate
cards chose, over the carriers' sandbox APIs, with the reason kept; what no carrier takes
waits in the review queue with the reason."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import select

from flows.fulfil import fulfil_orders
from flows.ingest import ingest_orders
from flows.stock import confirm_collected_parcels
from oms.config import reset_settings
from oms.db.schema import orders, review_queue, shipments
from sandbox.carrier import collect
from sandbox.model import SimLine, SimOrder

_order_ids = itertools.count(9_400_001)  # far above the generator's ids
PLACES = {"上海": ("上海市", "浦东新区"), "四川": ("成都市", "武侯区"), "西藏": ("拉萨市", "城关区"),
          "广东": ("广州市", "天河区")}


def an_order(shop: str, province: str, sku: str = "SKU-SHIP") -> SimOrder:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    order_id = next(_order_ids)
    city, district = PLACES[province]
    return SimOrder(
        order_id=order_id, shop=shop, created_at=now - timedelta(hours=2), updated_at=now - timedelta(hours=1),
        status="paid", currency="CNY", lines=[SimLine(sku, sku, 1, Decimal("10.00"), line_id=order_id * 100 + 1)],
        shipping_fee=Decimal("0"), receiver_name="测试", phone="13800138000", province=province,
        city=city, district=district, address="测试路 8 号")


def a_card(first: float) -> dict:
    zones = ("local", "near", "far", "remote")
    return {"first_kg": dict.fromkeys(zones, first), "extra_kg": dict.fromkeys(zones, 1)}


@pytest.fixture
def rate_cards(tmp_path, monkeypatch):
    """ZTO is cheapest but serves Shanghai only, YTO goes everywhere but Tibet, SF is not
    accepted by Pinduoduo; so a Tibet parcel from Pinduoduo has no carrier at all."""
    rules = {
        "carriers": {
            "ZTO": {"service": "standard", "max_weight_kg": 30, "provinces": {"only": ["上海"]},
                    "rate_card": a_card(3)},
            "YTO": {"service": "standard", "max_weight_kg": 30, "provinces": {"except": ["西藏"]},
                    "rate_card": a_card(5)},
            "SF": {"service": "express", "max_weight_kg": 30, "rate_card": a_card(15)},
        },
        "platforms": {"pdd": {"accepts": ["ZTO", "YTO"]}, "taobao": {"masked": "cainiao"}},
        "cainiao": {"sells": ["ZTO", "SF"]},
    }
    path = tmp_path / "carriers.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("OMS_CARRIER_RULES_PATH", str(path))
    reset_settings()
    yield path
    reset_settings()


def shipments_of(db, shop: str) -> dict[str, dict]:
    """The shop's shipments by the receiver's province (one order per province here)."""
    query = (select(orders.c.receiver_province, orders.c.status, shipments.c.carrier, shipments.c.tracking_number,
                    shipments.c.carrier_reason)
             .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
             .where(orders.c.shop_code == shop))
    with db.connect() as conn:
        return {row.receiver_province: dict(row._mapping) for row in conn.execute(query)}


def order_ref_in(db, shop: str, province: str) -> str:
    with db.connect() as conn:
        return conn.execute(select(orders.c.platform_order_id).where(
            orders.c.shop_code == shop, orders.c.receiver_province == province)).scalar_one()


def test_a_batch_ships_through_two_carriers_apis_and_what_nobody_takes_waits_for_a_person(
        db, add_shop, sandbox, all_carriers, stock_levels, rate_cards):
    shop = add_shop("pdd", orders=0)
    sandbox.state.orders[shop].extend(an_order(shop, province) for province in ("上海", "四川", "西藏"))
    stock_levels({"SKU-SHIP": 10})
    ingest_orders(shop)

    fulfil_orders(write_back=False, sync_platform_stock=False)

    shipped = shipments_of(db, shop)
    local, far = shipped["上海市"], shipped["四川省"]
    assert (local["carrier"], far["carrier"]) == ("ZTO", "YTO")
    # Each number was issued by that carrier's own simulator, through its own API.
    assert sandbox.state.waybills[local["tracking_number"]]["carrier"] == "ZTO"
    assert sandbox.state.waybills[far["tracking_number"]]["carrier"] == "YTO"
    assert local["carrier_reason"].startswith("ZTO: cheapest of 2 carriers that take 0.3 kg from WH-SH to 上海市 "
                                              "and that Pinduoduo accepts (¥3.00; YTO ¥5.00)")
    assert far["carrier_reason"].startswith("YTO: the only carrier that takes 0.3 kg from WH-SH to 四川省")
    assert "not serving 四川省 (ZTO)" in far["carrier_reason"]

    assert "西藏自治区" not in shipped
    tibet = order_ref_in(db, shop, "西藏自治区")
    with db.connect() as conn:
        parked = conn.execute(select(review_queue).where(review_queue.c.shop_code == shop)).all()
    assert [row.platform_order_id for row in parked] == [tibet]
    reason = " ".join(parked[0].reasons)
    assert "no carrier can take 0.3 kg from WH-SH to 西藏自治区" in reason
    assert "not accepted by Pinduoduo (SF)" in reason and "not serving 西藏自治区 (ZTO, YTO)" in reason

    # Running it again issues no waybill twice and queues the Tibet parcel once.
    waybills_before = len(sandbox.state.waybills)
    fulfil_orders(write_back=False, sync_platform_stock=False)
    with db.connect() as conn:
        assert len(conn.execute(select(review_queue).where(review_queue.c.shop_code == shop)).all()) == 1
    assert len(sandbox.state.waybills) == waybills_before

    # The couriers come; each carrier is asked about its own parcels and the orders ship.
    collect(sandbox.state, [local["tracking_number"], far["tracking_number"]], datetime.now(timezone.utc))
    confirm_collected_parcels()
    assert {s["status"] for s in shipments_of(db, shop).values()} == {"shipped"}


def test_a_taobao_receiver_taobao_would_not_open_is_printed_by_cainiao(
        db, add_shop, sandbox, carrier, stock_levels, rate_cards):
    shop = add_shop("taobao", orders=0)
    sandbox.state.orders[shop].append(an_order(shop, "上海"))
    stock_levels({"SKU-SHIP": 10})
    ingest_orders(shop)
    sandbox.state.faults.arm("taobao", "server_error", times=1)  # the label decrypt fails

    fulfil_orders(write_back=False, sync_platform_stock=False)

    shipped = shipments_of(db, shop)["上海市"]
    record = sandbox.state.waybills[shipped["tracking_number"]]
    assert (shipped["carrier"], record["via"], record["carrier"]) == ("ZTO", "cainiao", "ZTO")
    assert "oaid" in record["recipient"] and "测试" not in str(record["recipient"])  # masks never sent
    assert shipped["carrier_reason"].startswith("ZTO via Cainiao: Taobao masks this receiver")
    # Its pickup is asked of Cainiao, not of a ZTO account the seller does not have.
    collect(sandbox.state, [shipped["tracking_number"]], datetime.now(timezone.utc))
    confirm_collected_parcels()
    assert shipments_of(db, shop)["上海市"]["status"] == "shipped"
