"""Pinduoduo signing, status table and payload mapping, without any I/O.

Payloads come from the simulator's renderer, so these tests also pin the two sides of
the wire to the same reading of reference §6.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.base import RawOrder, ShopAccess
from connectors.pinduoduo import (
    STATUS_TABLE,
    PinduoduoConnector,
    parse_china_time,
    raw_order,
    second_slices,
    sign_params,
)
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus
from sandbox import pinduoduo as sim
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc

# Computed by hand: printf '%s' 'testsecret' + 'access_tokentok123client_idclient123
# data_typeJSONend_confirm_at1700000000order_status5page1page_size100refund_status5
# start_confirm_at1699913600timestamp1700000000typepdd.order.list.getversionV1' +
# 'testsecret' | md5sum  (the reference's own 'pdd md5' vector lacks its inputs)
SIGN_VECTOR_PARAMS = {
    "type": "pdd.order.list.get", "client_id": "client123", "access_token": "tok123",
    "timestamp": "1700000000", "data_type": "JSON", "version": "V1",
    "start_confirm_at": "1699913600", "end_confirm_at": "1700000000",
    "order_status": "5", "refund_status": "5", "page": "1", "page_size": "100",
}
SIGN_VECTOR = "B250A4F6CCC9B2A46BB7BCB681F27B83"


def connector() -> PinduoduoConnector:
    credentials = {"client_id": "c", "client_secret": "s"}
    return PinduoduoConnector(ShopAccess("pdd-shop", "pdd", "http://unused.invalid", credentials))


def sim_order(status: str = "paid", **changes) -> SimOrder:
    values = dict(
        order_id=100_123, shop="pdd-shop", status=status, currency="CNY",
        created_at=datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC),
        lines=[SimLine("SKU-TEA-1", "明前龙井 250g", 2, Decimal("88.80"), 1),
               SimLine(None, "赠品 茶杯", 1, Decimal("0"), 2)],
        shipping_fee=Decimal("6"), receiver_name="林小坤", phone="13800138000",
        province="广西", city="南宁市", district="青秀区", address="民族大道100号",
        note="请尽快发货",
    )
    values.update(changes)
    return SimOrder(**values)


def mapped(order: SimOrder):
    return connector().to_order(raw_order(sim.render_order(order)))


# ---- signing ---------------------------------------------------------------------


def test_the_connector_signs_the_hand_computed_vector():
    assert sign_params(SIGN_VECTOR_PARAMS, "testsecret") == SIGN_VECTOR


def test_the_simulator_signs_the_same_vector_with_its_own_code():
    assert sim.sign(SIGN_VECTOR_PARAMS, "testsecret") == SIGN_VECTOR


def test_the_sign_parameter_itself_and_key_order_do_not_change_the_signature():
    shuffled = dict(reversed(list(SIGN_VECTOR_PARAMS.items())), sign="ANYTHING")
    assert sign_params(shuffled, "testsecret") == SIGN_VECTOR


def test_numbers_booleans_and_lists_are_signed_as_the_text_that_is_sent():
    typed = {"page": 1, "use_has_next": True, "data_list": [{"data_tag": "a"}]}
    as_sent = {"page": "1", "use_has_next": "true", "data_list": '[{"data_tag":"a"}]'}
    assert sign_params(typed, "k") == sim.sign(as_sent, "k")


# ---- status table, both ways -------------------------------------------------------


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
    assert STATUS_TABLE[sim.STATUS_CODES[sim_status]] == expected
    assert mapped(sim_order(sim_status)).status == expected


@pytest.mark.parametrize(
    "codes, expected",
    [
        ((1, 1, 1), OrderStatus.PAID),
        ((1, 1, 3), OrderStatus.PAID),  # refund asked for but not granted: still to ship
        ((1, 1, 4), OrderStatus.CANCELLED),  # refunded before shipping
        ((2, 1, 4), OrderStatus.SHIPPED),  # a refund after shipping is after-sales business
        ((3, 1, 1), OrderStatus.DELIVERED),
        ((1, 2, 4), OrderStatus.CANCELLED),
        ((1, 0, 1), OrderStatus.PENDING_PAYMENT),
    ],
)
def test_pdd_status_triples_read_as_our_statuses(codes, expected):
    assert STATUS_TABLE[codes] == expected


def test_the_table_never_claims_states_only_our_pipeline_can_reach():
    assert not set(STATUS_TABLE.values()) & {OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.PACKING}


@pytest.mark.parametrize("order_status", [9, "1", [1], None])
def test_an_unknown_or_unreadable_status_is_a_mapping_error(order_status):
    payload = sim.render_order(sim_order()) | {"order_status": order_status}
    with pytest.raises(MappingError, match="unknown status"):
        connector().to_order(raw_order(payload))


# ---- mapping a rendered payload ----------------------------------------------------


def test_an_order_awaiting_shipment_maps_with_masks_and_keeps_the_ciphertexts():
    order = mapped(sim_order("paid"))

    assert order.platform == "pdd" and order.shop_code == "pdd-shop"
    assert order.platform_order_id == sim.order_sn(sim_order())
    assert order.created_at == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert order.paid_at == order.created_at
    assert order.ship_by == order.created_at + timedelta(hours=48)
    assert (order.total_amount, order.shipping_fee) == (Decimal("183.6"), Decimal("6"))
    assert order.currency == "CNY"
    assert [(l.sku, l.quantity, l.unit_price) for l in order.lines] == [
        ("SKU-TEA-1", 2, Decimal("88.8")), (None, 1, Decimal("0"))
    ]
    receiver = order.receiver
    assert (receiver.name, receiver.phone, receiver.address) == ("林*坤", "1*********0", "民族大****")
    assert (receiver.province, receiver.city, receiver.district) == ("广西", "南宁市", "青秀区")
    assert receiver.masked is True
    assert set(receiver.encrypted) == {"name", "phone", "address"}
    assert receiver.encrypted["name"].startswith("~AgAAAA")
    assert receiver.encrypted["phone"].startswith("$")


def test_the_payload_never_carries_the_receiver_in_plain_text():
    text = json.dumps(sim.render_order(sim_order("paid")), ensure_ascii=False)
    for secret in ("林小坤", "13800138000", "民族大道100号"):
        assert secret not in text


def test_the_ciphertexts_decrypt_back_to_what_the_buyer_typed():
    payload = sim.render_order(sim_order("paid"))
    assert sim.decrypt(payload["receiver_name"]) == (sim.NAME, "林小坤")
    assert sim.decrypt(payload["receiver_phone"]) == (sim.PHONE, "13800138000")


def test_a_shipped_order_has_no_ciphertexts_but_stays_masked():
    receiver = mapped(sim_order("shipped")).receiver
    assert receiver.encrypted == {}
    assert receiver.masked is True and receiver.name == "林*坤"


def test_times_are_read_as_china_time_and_stored_as_utc():
    assert parse_china_time("2024-03-02 00:30:05") == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert parse_china_time("02/03/2024") is None
    assert parse_china_time("") is None


def test_impossible_times_are_unreadable_and_unpadded_ones_are_still_read():
    assert parse_china_time("2024-02-30 10:00:00") is None
    assert parse_china_time("2024-03-01 24:00:00") is None
    assert parse_china_time("2024-3-2 0:30:05") == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert parse_china_time("0001-01-01 00:00:00") is None  # before the first UTC instant


def test_a_payload_too_broken_to_key_still_becomes_a_raw_order():
    raw = raw_order({"updated_at": "yesterday"})
    assert (raw.platform_order_id, raw.platform_updated_at) == (None, None)


def test_a_mapping_error_lists_every_reason_at_once():
    payload = sim.render_order(sim_order()) | {
        "order_sn": "",
        "confirm_status": 7,
        "created_time": "2024/03/02",
        "pay_amount": "lots",
        "item_list": [{"goods_count": 0, "goods_price": "free", "outer_id": "X"}, "junk"],
    }
    payload.pop("updated_at")

    with pytest.raises(MappingError) as caught:
        connector().to_order(RawOrder(None, None, payload))

    reasons = "\n".join(caught.value.reasons)
    assert len(caught.value.reasons) == 8, reasons
    for fragment in ("order_sn", "unknown status", "created_time", "updated_at is missing",
                     "pay_amount", "goods_count", "goods_price", "item_list[1]"):
        assert fragment in reasons


def test_an_item_list_that_is_not_a_list_is_a_reason():
    payload = sim.render_order(sim_order()) | {"item_list": "[]"}
    with pytest.raises(MappingError, match="item_list is not a list"):
        connector().to_order(raw_order(payload))


# ---- windows -----------------------------------------------------------------------


def test_a_window_is_cut_into_slices_that_meet_without_overlap():
    start = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    end = start + timedelta(hours=1, minutes=10)
    slices = list(second_slices(start, end, timedelta(minutes=30)))
    t = int(start.timestamp())
    assert slices == [(t, t + 1799), (t + 1800, t + 3599), (t + 3600, t + 4199)]


def test_a_window_without_timezone_is_refused():
    with pytest.raises(ValueError):
        list(second_slices(datetime(2024, 3, 1), datetime(2024, 3, 2), timedelta(hours=1)))
