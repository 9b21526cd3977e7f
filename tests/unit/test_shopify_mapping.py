"""Shopify order payload -> internal Order: pure mapping, no HTTP.

Payloads follow the official REST order sample (api-fields/shopify/order_sample_2025_01.json)
with the fields the connector reads, filled with a Chinese buyer.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from connectors.base import RawOrder, ShopAccess
from connectors.shopify import TRACKING_COMPANY_BY_CARRIER, ShopifyConnector
from connectors.shopify_mapping import STATUS_BY_SHOPIFY_STATE, map_order, raw_order
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus
from sandbox.model import SimLine, SimOrder
from sandbox.shopify_render import render_order

OUR_CARRIERS = ("SF", "ZTO", "YTO", "STO", "YUNDA", "JD", "EMS", "JT")


def _money_set(amount: str) -> dict:
    money = {"amount": amount, "currency_code": "CNY"}
    return {"shop_money": money, "presentment_money": dict(money)}


def _line(line_id: int, sku: str | None, quantity: int, price: str) -> dict:
    return {
        "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "variant_id": 39072856, "product_id": 632910392, "sku": sku, "title": "保温杯 白色",
        "name": "保温杯 白色", "quantity": quantity, "current_quantity": quantity,
        "fulfillable_quantity": quantity, "fulfillment_status": None, "price": price,
        "price_set": _money_set(price), "grams": 200, "requires_shipping": True,
    }


BASE_PAYLOAD: dict = {
    "id": 450789469,
    "admin_graphql_api_id": "gid://shopify/Order/450789469",
    "name": "#1001",
    "order_number": 1001,
    "created_at": "2025-01-10T11:00:00+08:00",
    "updated_at": "2025-01-10T12:30:00+08:00",
    "processed_at": "2025-01-10T11:00:05+08:00",
    "cancelled_at": None,
    "closed_at": None,
    "currency": "CNY",
    "financial_status": "paid",
    "fulfillment_status": None,
    "note": "不要放快递柜",
    "phone": None,
    "subtotal_price": "119.70",
    "total_price": "127.70",
    "total_price_set": _money_set("127.70"),
    "total_shipping_price_set": _money_set("8.00"),
    "customer": {"id": 207119551, "admin_graphql_api_id": "gid://shopify/Customer/207119551"},
    "shipping_address": {
        "first_name": "伟", "last_name": "王", "name": "王伟", "company": None,
        "address1": "海淀区中关村大街1号3栋201室", "address2": "海淀区", "city": "北京市",
        "province": "北京", "province_code": None, "zip": "100080", "country": "China",
        "country_code": "CN", "phone": "+86 138 0013 8000", "latitude": None, "longitude": None,
    },
    "line_items": [_line(466157049, "SKU-0001", 2, "39.90"), _line(518995019, "", 1, "39.90")],
    "fulfillments": [],
    "refunds": [],
}


def payload(**overrides) -> dict:
    order = copy.deepcopy(BASE_PAYLOAD)
    order.update(overrides)
    return order


def payload_in_state(state: tuple) -> dict:
    financial, fulfillment, cancelled, delivered = state
    fulfillments = []
    if fulfillment is not None:
        fulfillments = [{
            "id": 255858046, "order_id": 450789469, "status": "success",
            "shipment_status": "delivered" if delivered else None,
            "tracking_company": "SF Express", "tracking_number": "SF1234567890",
            "tracking_numbers": ["SF1234567890"],
        }]
    return payload(
        financial_status=financial,
        fulfillment_status=fulfillment,
        cancelled_at="2025-01-10T13:00:00+08:00" if cancelled else None,
        fulfillments=fulfillments,
    )


def sim_order(order_id: int, status: str) -> SimOrder:
    moment = datetime(2025, 1, 10, 3, 0, tzinfo=timezone.utc)
    return SimOrder(
        order_id=order_id, shop="s", created_at=moment, updated_at=moment, status=status,
        currency="CNY", lines=[SimLine("SKU-0002", "帆布包 黑色", 1, Decimal("59.00"), 1)],
        shipping_fee=Decimal("0"), receiver_name="李娜", phone="13800138000",
        province="广东省", city="深圳市", district="南山区", address="南山区科技园1号",
    )


# ---------------------------------------------------------------- a good order


def test_a_paid_order_becomes_an_order_with_decimal_money_and_utc_times():
    order = map_order(payload(), shop_code="cn-shop")

    assert (order.platform, order.shop_code, order.platform_order_id) == (
        "shopify", "cn-shop", "450789469")
    assert order.status is OrderStatus.PAID
    assert order.total_amount == Decimal("127.70") and isinstance(order.total_amount, Decimal)
    assert order.shipping_fee == Decimal("8.00")
    assert order.currency == "CNY"
    assert order.created_at == datetime(2025, 1, 10, 3, 0, tzinfo=timezone.utc)
    assert order.updated_at == datetime(2025, 1, 10, 4, 30, tzinfo=timezone.utc)
    assert order.paid_at == datetime(2025, 1, 10, 3, 0, 5, tzinfo=timezone.utc)
    assert order.buyer_ref == "207119551"
    assert order.buyer_note == "不要放快递柜"


def test_lines_keep_sku_quantity_and_unit_price_as_given():
    order = map_order(payload(), shop_code="cn-shop")

    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("SKU-0001", 2, Decimal("39.90")),
        ("", 1, Decimal("39.90")),  # an empty SKU is the clean step's business
    ]
    assert order.lines[0].platform_line_id == "466157049"


def test_the_receiver_is_kept_raw_with_the_district_from_address2():
    receiver = map_order(payload(), shop_code="cn-shop").receiver

    assert receiver.name == "王伟"
    assert receiver.phone == "+86 138 0013 8000"  # not normalised here
    assert (receiver.province, receiver.city, receiver.district) == ("北京", "北京市", "海淀区")
    assert receiver.address == "海淀区中关村大街1号3栋201室"
    assert receiver.postal_code == "100080"
    assert receiver.country_code == "CN"
    assert receiver.masked is False


def test_missing_address_values_stay_missing():
    address = dict(BASE_PAYLOAD["shipping_address"], phone=None, zip=None, province=None)

    receiver = map_order(payload(shipping_address=address), shop_code="s").receiver

    assert (receiver.phone, receiver.postal_code, receiver.province) == (None, None, None)


def test_the_connector_maps_a_landed_raw_order_for_its_own_shop():
    access = ShopAccess("cn-shop", "shopify", "https://cn-shop.myshopify.com",
                        {"access_token": "shpat_unused"})
    with ShopifyConnector(access) as connector:
        order = connector.to_order(raw_order(payload()))

    assert order.shop_code == "cn-shop"


# ---------------------------------------------------------------- statuses


@pytest.mark.parametrize("state, expected", list(STATUS_BY_SHOPIFY_STATE.items()), ids=str)
def test_every_shopify_state_in_the_table_maps_to_its_status(state, expected):
    assert map_order(payload_in_state(state), shop_code="s").status is expected


def test_every_status_shopify_can_report_has_a_shopify_state():
    reachable = set(STATUS_BY_SHOPIFY_STATE.values())

    assert reachable == {
        OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.SHIPPED,
        OrderStatus.DELIVERED, OrderStatus.CANCELLED,
    }
    # Allocation and backorder are our own progress: no Shopify state may claim them.
    # Refunded is set by after-sales, not read from the order feed.
    assert set(OrderStatus) - reachable == {OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.PACKING,
                                            OrderStatus.REFUNDED}


@pytest.mark.parametrize(
    "sim_status, order_id, expected",
    [
        ("unpaid", 100001, OrderStatus.PENDING_PAYMENT),
        ("paid", 100002, OrderStatus.PAID),
        ("shipped", 100003, OrderStatus.SHIPPED),
        ("delivered", 100004, OrderStatus.DELIVERED),
        ("cancelled", 100005, OrderStatus.CANCELLED),  # paid, then refunded
        ("cancelled", 100006, OrderStatus.CANCELLED),  # voided before payment
    ],
)
def test_every_state_the_simulator_renders_maps_to_the_right_status(sim_status, order_id, expected):
    rendered = render_order(sim_order(order_id, sim_status))

    assert map_order(rendered, shop_code="s").status is expected


def test_the_simulator_renders_both_kinds_of_cancellation():
    refunded = render_order(sim_order(100005, "cancelled"))
    voided = render_order(sim_order(100006, "cancelled"))

    assert (refunded["financial_status"], voided["financial_status"]) == ("refunded", "voided")
    assert refunded["cancelled_at"] is not None and voided["cancelled_at"] is not None


def test_a_failed_fulfillment_beside_a_delivered_one_is_ignored():
    order = payload_in_state(("paid", "fulfilled", False, True))
    order["fulfillments"].append({"id": 2, "status": "failure", "shipment_status": None})

    assert map_order(order, shop_code="s").status is OrderStatus.DELIVERED


def test_an_unknown_shopify_state_is_a_mapping_error_naming_it():
    with pytest.raises(MappingError) as caught:
        map_order(payload(financial_status="expired"), shop_code="s")

    assert any("expired" in reason for reason in caught.value.reasons)


# ---------------------------------------------------------------- broken payloads


def test_a_broken_order_lists_every_problem_at_once():
    broken = payload(total_price="12,50", updated_at="yesterday", line_items=[])
    del broken["id"]

    with pytest.raises(MappingError) as caught:
        map_order(broken, shop_code="s")

    reasons = caught.value.reasons
    assert len(reasons) == 4
    for word in ("id", "updated_at", "total_price", "line items"):
        assert any(word in reason for reason in reasons), word


def test_line_items_that_are_not_a_list_are_rejected():
    with pytest.raises(MappingError) as caught:
        map_order(payload(line_items="[line items unavailable]"), shop_code="s")

    assert caught.value.reasons == ["line_items is missing or not a list"]


def test_bad_lines_are_named_by_their_position():
    lines = [_line(1, "SKU-0001", 0, "39.90"), _line(2, "SKU-0002", 1, 39.9)]

    with pytest.raises(MappingError) as caught:
        map_order(payload(line_items=lines), shop_code="s")

    assert caught.value.reasons == [
        "line_items[0].quantity is not a positive integer",
        "line_items[1].price is not a non-negative decimal string",
    ]


def test_a_time_without_offset_and_a_missing_currency_are_rejected():
    with pytest.raises(MappingError) as caught:
        map_order(payload(created_at="2025-01-10T11:00:00", currency=None), shop_code="s")

    assert len(caught.value.reasons) == 2


def test_a_missing_shipping_price_is_a_reason_not_a_zero():
    with pytest.raises(MappingError) as caught:
        map_order(payload(total_shipping_price_set=None), shop_code="s")

    assert caught.value.reasons == [
        "total_shipping_price_set.shop_money.amount is not a non-negative decimal string"]


# ---------------------------------------------------------------- landing keys


def test_a_landed_order_has_its_id_as_text_and_its_update_time_in_utc():
    raw = raw_order(payload(updated_at="2008-01-10T11:00:00-05:00"))

    assert raw.platform_order_id == "450789469"
    assert raw.platform_updated_at == datetime(2008, 1, 10, 16, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("broken_id", [None, "abc", -5, True, 3.5])
def test_an_unreadable_id_or_update_time_lands_as_none_without_raising(broken_id):
    raw = raw_order(payload(id=broken_id, updated_at="not a time"))

    assert isinstance(raw, RawOrder)
    assert (raw.platform_order_id, raw.platform_updated_at) == (None, None)


def test_a_payload_that_is_not_an_object_still_lands():
    raw = raw_order(["garbage"])

    assert raw.platform_order_id is None and raw.payload == {"unreadable": ["garbage"]}


# ---------------------------------------------------------------- carriers


def test_every_carrier_we_use_has_a_shopify_tracking_company():
    assert set(TRACKING_COMPANY_BY_CARRIER) == set(OUR_CARRIERS)
    assert TRACKING_COMPANY_BY_CARRIER["SF"] == "SF Express"
    assert TRACKING_COMPANY_BY_CARRIER["EMS"] == "China Post"  # on Shopify's supported list
