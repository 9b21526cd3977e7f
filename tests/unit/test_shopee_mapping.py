"""Shopee signing, status table, error translation and payload mapping, without any I/O.

Payloads come from the simulator's renderer, so these tests also pin the two sides of
the wire to the same reading of reference §3.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors.shopee import (
    ERROR_TRANSLATION,
    RATE_LIMIT_WAIT_SECONDS,
    _ship_method,
    _unwrap,
    sign,
    window_slices,
)
from connectors.shopee_mapping import STATUS_TABLE, map_order, parse_unix_seconds, raw_order
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import shopee as sim
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc
S = OrderStatus

# Reference Appendix A (computed there with dummy inputs, which it names).
VECTOR = dict(partner_key="testkey", partner_id="2001887", timestamp="1700000000")
SHOP_LEVEL = "881759331e428ac10326f84bf7d3b06f187ea9bac476a8fe962686e6cb39620e"
PUBLIC = "a77b96e601333f8e804334dd8ed4ca826eab7eed224d6dd959b8fe87a0434e8d"


def sim_order(status: str = "paid", **changes) -> SimOrder:
    values = dict(
        order_id=100_321, shop="shopee-shop", status=status, currency="THB",
        created_at=datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC),
        lines=[SimLine("SKU-TEA-1", "Jasmine tea 250 g", 2, Decimal("88.80"), 1),
               SimLine(None, "Gift cup", 1, Decimal("0"), 2)],
        shipping_fee=Decimal("40"), receiver_name="Somchai Example", phone="+66 81 234 5678",
        province="Chiang Mai", city="Mueang", district=None, address="99 Example Road",
        postal_code="50200", country_code="TH", buyer_id="buyer-00000007", note="please wrap",
    )
    values.update(changes)
    return SimOrder(**values)


def detail(order: SimOrder) -> dict:
    return sim.render_order(order)


# ---- signing -------------------------------------------------------------------------


def test_the_connector_reproduces_the_shop_level_vector_of_appendix_a():
    path = "/api/v2/order/get_order_list"
    signed = sign(**VECTOR, path=path, access_token="tok123", shop_id="600000")
    assert signed == SHOP_LEVEL


def test_the_connector_reproduces_the_public_vector_of_appendix_a():
    assert sign(**VECTOR, path="/api/v2/auth/token/get") == PUBLIC


def test_the_simulator_signs_both_vectors_with_its_own_code():
    shop_level = sim.sign("testkey", "2001887", "/api/v2/order/get_order_list", "1700000000",
                          "tok123", "600000")
    assert (shop_level, sim.sign("testkey", "2001887", "/api/v2/auth/token/get", "1700000000")) == (
        SHOP_LEVEL, PUBLIC)


# ---- status table, both ways ---------------------------------------------------------


@pytest.mark.parametrize("neutral, expected", [
    ("unpaid", S.PENDING_PAYMENT), ("paid", S.PAID), ("shipped", S.SHIPPED),
    ("delivered", S.DELIVERED), ("cancelled", S.CANCELLED),
])
def test_each_simulated_status_maps_to_the_matching_order_status(neutral, expected):
    assert STATUS_TABLE[sim.ORDER_STATUS[neutral]] == expected
    assert map_order(detail(sim_order(neutral)), "shop").status == expected


def test_every_documented_shopee_status_is_in_the_table():
    documented = {"UNPAID", "READY_TO_SHIP", "PROCESSED", "SHIPPED", "COMPLETED", "IN_CANCEL",
                  "CANCELLED", "INVOICE_PENDING", "PENDING", "RETRY_SHIP", "TO_CONFIRM_RECEIVE",
                  "TO_RETURN"}
    assert set(STATUS_TABLE) == documented


def test_the_table_reaches_every_status_a_platform_can_express_and_no_other():
    assert set(STATUS_TABLE.values()) == {S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.DELIVERED,
                                          S.CANCELLED}


@pytest.mark.parametrize("value, expected", [
    ("PROCESSED", S.SHIPPED), ("RETRY_SHIP", S.PAID), ("IN_CANCEL", S.PAID),
    ("TO_CONFIRM_RECEIVE", S.DELIVERED), ("TO_RETURN", S.DELIVERED),
])
def test_in_between_statuses_read_as_the_step_the_pipeline_must_take(value, expected):
    assert STATUS_TABLE[value] == expected


@pytest.mark.parametrize("value", ["SHIPPING", "ready_to_ship", 3, None])
def test_an_unknown_status_is_a_mapping_error(value):
    with pytest.raises(MappingError, match="unknown order_status"):
        map_order(detail(sim_order()) | {"order_status": value}, "shop")


# ---- mapping a rendered payload ------------------------------------------------------


def test_a_typical_order_maps_amounts_currency_times_lines_and_receiver():
    order = map_order(detail(sim_order()), "shopee-shop")

    assert (order.platform, order.shop_code) == ("shopee", "shopee-shop")
    assert order.platform_order_id == sim.order_sn(sim_order())
    assert (order.platform_status, order.status) == ("READY_TO_SHIP", S.PAID)
    assert order.created_at == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert order.updated_at == datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC)
    assert order.paid_at == order.created_at
    assert order.ship_by == order.created_at + timedelta(days=2)
    assert (order.currency, order.total_amount, order.shipping_fee) == (
        "THB", Decimal("217.6"), Decimal("40.0"))
    assert [(l.sku, l.quantity, l.unit_price) for l in order.lines] == [
        ("SKU-TEA-1", 2, Decimal("88.8")), (None, 1, Decimal("0.0"))]
    assert all(":" in line.platform_line_id for line in order.lines)
    assert order.buyer_note == "please wrap" and order.buyer_ref
    receiver = order.receiver
    shown = (receiver.name, receiver.phone, receiver.address)
    assert shown == ("S*************e", "******78", "99******")
    where = (receiver.province, receiver.city, receiver.postal_code)
    assert where == ("Chiang Mai", "Mueang", "50200")
    assert receiver.country_code == "TH" and receiver.masked and receiver.encrypted == {}


def test_the_seller_sku_is_the_models_and_else_the_items():
    payload = detail(sim_order())
    payload["item_list"][0] |= {"model_sku": "MODEL-1", "item_sku": "PARENT-1"}
    payload["item_list"][1] |= {"model_sku": "", "item_sku": "PARENT-2"}
    assert [line.sku for line in map_order(payload, "shop").lines] == ["MODEL-1", "PARENT-2"]


def test_an_unpaid_order_without_total_amount_is_worth_its_lines_and_shipping():
    payload = detail(sim_order("unpaid"))
    assert "total_amount" not in payload
    assert map_order(payload, "shop").total_amount == Decimal("217.6")


def test_plaintext_that_shopee_did_not_mask_is_not_called_masked():
    payload = detail(sim_order())
    payload["recipient_address"] |= {"name": "Somchai Example", "phone": "0812345678",
                                     "full_address": "99 Example Road"}
    assert map_order(payload, "shop").receiver.masked is False


def test_the_rendered_payload_never_carries_the_receiver_in_plain_text():
    text = json.dumps(detail(sim_order()), ensure_ascii=False)
    for plaintext in ("Somchai", "234 5678", "2345678", "Example Road"):
        assert plaintext not in text


def test_a_payload_too_broken_to_key_still_becomes_a_raw_order():
    raw = raw_order({"update_time": "yesterday"})
    assert (raw.platform_order_id, raw.platform_updated_at) == (None, None)
    assert raw_order(["junk"]).payload == {"unreadable_item": ["junk"]}


def test_unix_seconds_are_read_as_utc_and_nonsense_is_not():
    assert parse_unix_seconds(1700000000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    for nonsense in (0, -5, "1700000000", True, None, 10**20):
        assert parse_unix_seconds(nonsense) is None


def test_a_mapping_error_lists_every_reason_at_once():
    payload = detail(sim_order()) | {
        "order_sn": "", "order_status": "LOST", "create_time": "2024-03-01", "currency": "baht",
        "total_amount": "lots", "estimated_shipping_fee": -1, "region": None,
        "recipient_address": None,
        "item_list": [{"model_quantity_purchased": 0, "model_discounted_price": "free"}, "junk"],
    }
    payload.pop("update_time")

    with pytest.raises(MappingError) as caught:
        map_order(payload, "shop")

    reasons = "\n".join(caught.value.reasons)
    fragments = ("order_sn", "unknown order_status", "create_time", "update_time", "currency",
                 "total_amount", "estimated_shipping_fee", "model_quantity_purchased",
                 "model_discounted_price", "item_list[1]", "recipient_address", "region")
    assert len(caught.value.reasons) == len(fragments), reasons
    for fragment in fragments:
        assert fragment in reasons


def test_an_empty_item_list_is_a_reason():
    with pytest.raises(MappingError, match="item_list is empty"):
        map_order(detail(sim_order()) | {"item_list": []}, "shop")


# ---- windows, errors and ship methods ------------------------------------------------


def test_a_window_is_cut_into_spans_of_15_days_that_share_their_ends():
    start = datetime(2024, 3, 1, tzinfo=UTC)
    t = int(start.timestamp())
    slices = list(window_slices(start, start + timedelta(days=31), timedelta(days=15)))
    assert slices == [(t, t + 15 * 86400), (t + 15 * 86400, t + 30 * 86400),
                      (t + 30 * 86400, t + 31 * 86400)]
    with pytest.raises(ValueError):
        list(window_slices(datetime(2024, 3, 1), datetime(2024, 3, 2), timedelta(days=1)))


def answer(status: int, body: object, **headers) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(status, content=content, headers=headers)


@pytest.mark.parametrize("error, message, expected", [
    ("invalid_acceess_token", "Invalid access_token, please have a check.", TokenExpired),
    ("error_auth", "Invalid access_token.", TokenExpired),
    ("common.error_auth", "Invalid access_token.", TokenExpired),
    ("error_auth", "Invalid partner_id or shopid.", Rejected),
    ("error_rate_limit", "Too many requests.", RateLimited),
    ("error_server", "System error. Please try again later.", Unavailable),
    ("error_sign", "Wrong sign.", Rejected),
    ("order.order_list_invalid_time", "Start time must be earlier...", Rejected),
    ("logistics.error_limit", "Order status not support update logistics.", Rejected),
])
def test_shopee_errors_translate_to_our_error_tree(error, message, expected):
    with pytest.raises(expected) as caught:
        _unwrap("/api/v2/x", answer(403, {"error": error, "message": message, "request_id": "r"}))
    assert caught.value.code == error and type(caught.value) is expected


def test_throttling_waits_the_default_or_what_retry_after_says():
    body = {"error": "error_rate_limit", "message": "Too many requests."}
    with pytest.raises(RateLimited) as plain:
        _unwrap("/p", answer(429, body))
    with pytest.raises(RateLimited) as told:
        _unwrap("/p", answer(429, body, **{"Retry-After": "7"}))
    assert (plain.value.retry_after, told.value.retry_after) == (RATE_LIMIT_WAIT_SECONDS, 7.0)


def test_the_daily_limit_waits_until_midnight_in_singapore():
    with pytest.raises(RateLimited) as caught:
        _unwrap("/p", answer(403, {"error": "error_limit", "message": "daily API call limit"}))
    assert 0 < caught.value.retry_after <= 86400
    assert "error_limit" in ERROR_TRANSLATION


@pytest.mark.parametrize("status, content", [(502, "Bad Gateway"), (200, "<html>"), (200, "[1]")])
def test_server_errors_and_bodies_that_are_not_json_objects_are_unavailable(status, content):
    with pytest.raises(Unavailable):
        _unwrap("/p", answer(status, content))


def test_the_ship_method_is_the_one_that_takes_our_tracking_number():
    assert _ship_method({"info_needed": {"dropoff": ["tracking_no"]}}, "T1", "Ninja Van") == {
        "dropoff": {"tracking_number": "T1"}}
    assert _ship_method({"info_needed": {"non_integrated": []}}, "T1", "DHL") == {
        "non_integrated": {"tracking_number": "T1"}}
    with pytest.raises(Rejected, match="integrated"):
        _ship_method({"info_needed": {"pickup": ["address_id", "pickup_time_id"]}}, "T1", "SPX")
