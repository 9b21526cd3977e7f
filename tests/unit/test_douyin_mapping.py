"""Douyin (抖店) signing, status table and payload mapping, without any I/O.

Payloads come from the simulator's renderer, so these tests also pin the two sides of
the wire to the same reading of reference §8.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.base import RawOrder
from connectors.douyin import canonical_param_json, second_slices, sign_request
from connectors.douyin_mapping import (
    STATUS_TABLE,
    from_unix_seconds,
    map_order,
    raw_order,
    yuan_from_fen,
)
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus
from sandbox import douyin as sim
from sandbox import douyin_render as render
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc

# Appendix A of the reference: its doudian param_json and signature. The inputs it leaves
# out were found among the dummy values of the other vectors: app_key 7000000000000000000,
# app_secret "secret", method order.searchList, timestamp 1700000000.
VECTOR_PARAM_JSON = (
    '{"page":0,"size":20,"update_time_end":1700000000,"update_time_start":1699998200}')
VECTOR_SIGN = "7efe31dd1cd0d7cc5b8319e6e55b8eeda15e78ff9b582304d1c5875e9b0c60ec"
VECTOR_INPUTS = ("7000000000000000000", "secret", "order.searchList", "1700000000")


def sim_order(status: str = "paid", **changes) -> SimOrder:
    values = dict(
        order_id=100_123, shop="douyin-shop", status=status, currency="CNY",
        created_at=datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC),
        lines=[SimLine("SKU-TEA-1", "明前龙井 250g", 2, Decimal("88.80"), 10_012_301),
               SimLine(None, "赠品 茶杯", 1, Decimal("0"), 10_012_302)],
        shipping_fee=Decimal("6"), receiver_name="林小坤", phone="13800138000",
        province="广西", city="南宁市", district="青秀区", address="民族大道100号",
        note="请尽快发货", buyer_id="buyer-00000001",
    )
    values.update(changes)
    return SimOrder(**values)


def mapped(order: SimOrder):
    return map_order(raw_order(render.render_order(order)).payload, "douyin-shop")


# ---- signing ---------------------------------------------------------------------------------


def test_the_connector_reproduces_the_reference_vector():
    params = {"update_time_start": 1699998200, "size": 20, "page": 0, "update_time_end": 1700000000}
    assert canonical_param_json(params) == VECTOR_PARAM_JSON
    assert sign_request(*VECTOR_INPUTS, VECTOR_PARAM_JSON) == VECTOR_SIGN


def test_the_simulator_signs_the_same_vector_with_its_own_code():
    app_key, secret, method, timestamp = VECTOR_INPUTS
    assert sim.sign(app_key, secret, method, timestamp, VECTOR_PARAM_JSON) == VECTOR_SIGN
    assert sim.canonical_param_json(json.loads(VECTOR_PARAM_JSON)) == VECTOR_PARAM_JSON


def test_any_change_of_an_input_changes_the_signature():
    app_key, secret, method, timestamp = VECTOR_INPUTS
    changed = [
        (app_key, secret, "order.logisticsAdd", timestamp), (app_key, secret, method, "1700000001"),
        (app_key, "secret2", method, timestamp), ("7000000000000000001", secret, method, timestamp),
    ]
    for inputs in changed:
        assert sign_request(*inputs, VECTOR_PARAM_JSON) != VECTOR_SIGN


def test_param_json_is_sorted_at_every_level_compact_and_keeps_chinese_text():
    params = {"b": [{"z": 1, "a": "顺丰"}], "a": True}
    assert canonical_param_json(params) == '{"a":true,"b":[{"a":"顺丰","z":1}]}'


# ---- status table, both ways -----------------------------------------------------------------


def test_every_doudian_order_status_has_an_internal_status():
    assert set(STATUS_TABLE) == {1, 105, 2, 101, 3, 4, 5} == set(render.STATUS_DESCRIPTIONS)


@pytest.mark.parametrize(
    "sim_status, expected",
    [
        ("unpaid", OrderStatus.PENDING_PAYMENT),
        ("paid", OrderStatus.PAID),
        ("shipped", OrderStatus.SHIPPED),
        ("delivered", OrderStatus.DELIVERED),
        ("cancelled", OrderStatus.CANCELLED),
    ],
)
def test_each_simulated_status_comes_back_as_the_matching_order_status(sim_status, expected):
    assert STATUS_TABLE[render.STATUS_CODES[sim_status]] == expected
    assert mapped(sim_order(sim_status)).status == expected


def test_every_status_doudian_can_express_is_reached_and_no_pipeline_one_is():
    platform_side = {OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.SHIPPED,
                     OrderStatus.DELIVERED, OrderStatus.CANCELLED}
    assert set(STATUS_TABLE.values()) == platform_side


@pytest.mark.parametrize("code, expected", [(105, OrderStatus.PAID), (101, OrderStatus.SHIPPED)])
def test_paid_and_partly_shipped_orders_read_as_paid_and_shipped(code, expected):
    payload = render.render_order(sim_order()) | {"order_status": code}
    assert map_order(payload, "douyin-shop").status == expected


@pytest.mark.parametrize("order_status", [9, "2", True, None])
def test_an_unknown_or_unreadable_status_is_a_mapping_error(order_status):
    payload = render.render_order(sim_order()) | {"order_status": order_status}
    with pytest.raises(MappingError, match="unknown order_status"):
        map_order(payload, "douyin-shop")


# ---- mapping a rendered payload -----------------------------------------------------------------


def test_a_typical_order_maps_amounts_in_yuan_times_in_utc_and_its_lines():
    order = mapped(sim_order("paid"))

    assert order.platform == "douyin" and order.shop_code == "douyin-shop"
    assert order.platform_order_id == render.shop_order_id(sim_order())
    assert len(order.platform_order_id) == 19
    assert order.created_at == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert order.updated_at == datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC)
    assert order.paid_at == order.created_at
    assert order.ship_by == order.created_at + timedelta(hours=48)
    assert (order.total_amount, order.shipping_fee) == (Decimal("183.60"), Decimal("6.00"))
    assert order.currency == "CNY" and order.buyer_note == "请尽快发货" and order.buyer_ref
    assert [(l.sku, l.quantity, l.unit_price, l.title) for l in order.lines] == [
        ("SKU-TEA-1", 2, Decimal("88.80"), "明前龙井 250g"), (None, 1, Decimal("0.00"), "赠品 茶杯")]
    assert [l.platform_line_id for l in order.lines] == [
        render.sku_order_id(line) for line in sim_order().lines]


def test_the_receiver_is_masked_with_the_three_ciphertexts_kept():
    receiver = mapped(sim_order("shipped")).receiver
    shown = (receiver.name, receiver.phone, receiver.address)
    assert shown == ("林**", "138****8000", "民族大****")
    assert (receiver.province, receiver.city, receiver.district) == ("广西", "南宁市", "青秀区")
    assert receiver.country_code == "CN" and receiver.masked is True
    assert set(receiver.encrypted) == {"name", "phone", "address"}
    assert receiver.encrypted["phone"].startswith("$")
    assert receiver.encrypted["name"].startswith("#")


def test_the_payload_never_carries_the_receiver_in_plain_text():
    text = json.dumps(render.render_order(sim_order("paid")), ensure_ascii=False)
    for secret in ("林小坤", "13800138000", "民族大道100号"):
        assert secret not in text


def test_the_ciphertexts_open_only_with_their_order_id():
    payload = render.render_order(sim_order("paid"))
    assert render.decrypt(payload["encrypt_post_tel"]) == (
        render.PHONE, payload["order_id"], "13800138000")
    assert render.decrypt(payload["post_addr"]["encrypt_detail"])[2] == "民族大道100号"
    assert render.decrypt("#abc#bm90IG91cnM=##") is None


def test_full_width_and_international_phones_are_masked_by_their_digits():
    assert render.mask_phone("１３８００１３８０００") == "138****8000"
    assert render.mask_phone("+86 138 0013 8000") == "138****8000"


def test_amounts_are_whole_fen_and_nothing_else():
    assert yuan_from_fen(599) == Decimal("5.99") and yuan_from_fen("100") == Decimal("1.00")
    for not_fen in (5.99, True, None, "5.99", [1]):
        assert yuan_from_fen(not_fen) is None


def test_unix_seconds_become_utc_and_zero_means_not_yet():
    assert from_unix_seconds(1_700_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert from_unix_seconds(0) is None and from_unix_seconds("1700000000") is None


def test_a_payload_too_broken_to_key_still_becomes_a_raw_order():
    raw = raw_order({"update_time": "yesterday"})
    assert (raw.platform_order_id, raw.platform_updated_at) == (None, None)
    assert raw_order(["junk"]).payload == {"unreadable_item": ["junk"]}


def test_a_mapping_error_lists_every_reason_at_once():
    payload = render.render_order(sim_order()) | {
        "order_id": "",
        "order_status": 42,
        "create_time": "2024-03-02",
        "pay_amount": 12.5,
        "sku_order_list": [{"item_num": 0, "origin_amount": "free", "code": "X"}, "junk"],
    }
    payload.pop("update_time")

    with pytest.raises(MappingError) as caught:
        map_order(RawOrder(None, None, payload).payload, "douyin-shop")

    reasons = "\n".join(caught.value.reasons)
    assert len(caught.value.reasons) == 8, reasons
    for fragment in ("order_id is missing", "unknown order_status", "create_time",
                     "update_time is missing", "pay_amount", "item_num", "origin_amount",
                     "sku_order_list[1]"):
        assert fragment in reasons


def test_sub_orders_that_are_not_a_list_are_a_reason():
    payload = render.render_order(sim_order()) | {"sku_order_list": "[]"}
    with pytest.raises(MappingError, match="sku_order_list is not a list"):
        map_order(payload, "douyin-shop")


# ---- windows ---------------------------------------------------------------------------------


def test_a_window_is_cut_into_inclusive_slices_that_meet_without_overlap():
    start = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    slices = list(second_slices(start, start + timedelta(hours=50), timedelta(hours=24)))
    t = int(start.timestamp())
    assert slices == [(t, t + 86399), (t + 86400, t + 172799), (t + 172800, t + 179999)]


def test_a_window_without_timezone_is_refused():
    with pytest.raises(ValueError):
        list(second_slices(datetime(2024, 3, 1), datetime(2024, 3, 2), timedelta(hours=1)))
