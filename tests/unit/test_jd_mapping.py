"""JD signing, the orderState table and payload mapping, without any I/O.

Payloads come from the simulator's renderer, so these tests also pin the two sides of
the wire to the same reading of reference §7.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.jd import china_time, second_slices, sign_params
from connectors.jd_mapping import STATUS_TABLE, map_order, parse_china_time, raw_order
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus
from sandbox import jd as sim
from sandbox.jd_render import render_order, served_state
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc

# Reference Appendix A gives no JD vector, so this one is computed by hand from §7.1:
# printf '%s' 'testsecret' + '360buy_param_json{"end_date":"2023-11-15 06:13:20",
# "order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"100","start_date":
# "2023-11-14 06:13:20"}access_tokentok123app_keytestkeymethodjingdong.pop.order.search
# timestamp2023-11-15 06:13:20v2.0' + 'testsecret' | md5sum   (unix 1700000000 in GMT+8)
SIGN_VECTOR_PARAMS = {
    "method": "jingdong.pop.order.search", "app_key": "testkey", "access_token": "tok123",
    "timestamp": "2023-11-15 06:13:20", "v": "2.0",
    "360buy_param_json": '{"end_date":"2023-11-15 06:13:20","order_state":"WAIT_SELLER_STOCK_OUT",'
                         '"page":"1","page_size":"100","start_date":"2023-11-14 06:13:20"}',
}
SIGN_VECTOR = "8849E342E80554126612B40D8C1C2485"

# Every orderState reference §7.3 lists.
REFERENCE_STATES = {
    "WAIT_SELLER_STOCK_OUT", "WAIT_GOODS_RECEIVE_CONFIRM", "WAIT_SELLER_DELIVERY",
    "POP_ORDER_PAUSE", "PAUSE", "FINISHED_L", "TRADE_CANCELED", "LOCKED", "WAIT_SEND_CODE",
    "SEND_TO_DISTRIBUTION_CENER", "DISTRIBUTION_CENTER_RECEIVED", "RECEIPTS_CONFIRM",
}


def sim_order(status: str = "paid", **changes) -> SimOrder:
    values = dict(
        order_id=100_123, shop="jd-shop", status=status, currency="CNY",
        created_at=datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC),
        lines=[SimLine("SKU-TEA-1", "明前龙井 250g", 2, Decimal("88.80"), 1),
               SimLine(None, "赠品 茶杯", 1, Decimal("0"), 2)],
        shipping_fee=Decimal("6"), receiver_name="林小坤", phone="+86 138 0013 8000",
        province="广西", city="南宁市", district="青秀区", address="民族大道100号",
        note="请尽快发货", buyer_id="buyer-00000042",
    )
    values.update(changes)
    return SimOrder(**values)


def payload(order: SimOrder) -> dict:
    return render_order(order, served_state(order))


# ---- signing -------------------------------------------------------------------------


def test_the_connector_signs_the_hand_computed_vector():
    assert sign_params(SIGN_VECTOR_PARAMS, "testsecret") == SIGN_VECTOR


def test_the_simulator_signs_the_same_vector_with_its_own_code():
    assert sim.sign(SIGN_VECTOR_PARAMS, "testsecret") == SIGN_VECTOR


def test_the_sign_parameter_itself_and_key_order_do_not_change_the_signature():
    shuffled = dict(reversed(list(SIGN_VECTOR_PARAMS.items())), sign="ANYTHING")
    assert sign_params(shuffled, "testsecret") == SIGN_VECTOR
    assert sign_params(SIGN_VECTOR_PARAMS, "othersecret") != SIGN_VECTOR


def test_times_go_out_in_china_time_and_come_back_as_utc():
    moment = datetime.fromtimestamp(1_700_000_000, UTC)
    assert china_time(moment) == "2023-11-15 06:13:20"
    assert parse_china_time("2023-11-15 06:13:20") == moment
    assert parse_china_time("2023-11-15 06:13:20.0") == moment
    assert sim.parse_jd_time("2023-11-15 06:13:20.000+0800") == moment
    assert parse_china_time("2023-02-30 00:00:00") is None and parse_china_time(17) is None


def test_slices_cover_the_window_without_gaps_or_overlap_and_stay_under_the_limit():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    slices = list(second_slices(start, start + timedelta(days=65), timedelta(days=30)))
    assert [first for first, _ in slices] == [start + timedelta(days=d) for d in (0, 30, 60)]
    for (_, last), (next_first, _) in zip(slices, slices[1:]):
        assert next_first - last == timedelta(seconds=1)
    assert slices[-1][1] == start + timedelta(days=65, seconds=-1)
    assert all(last - first < timedelta(days=30) for first, last in slices)


# ---- the status table, both ways -----------------------------------------------------


def test_every_state_of_the_reference_is_in_the_table_and_nothing_else():
    assert set(STATUS_TABLE) == REFERENCE_STATES


@pytest.mark.parametrize(
    "state, expected",
    [
        ("WAIT_SELLER_STOCK_OUT", OrderStatus.PAID),
        ("LOCKED", OrderStatus.PAID),  # not shippable yet, but paid: JD keeps the money
        ("WAIT_GOODS_RECEIVE_CONFIRM", OrderStatus.SHIPPED),
        ("DISTRIBUTION_CENTER_RECEIVED", OrderStatus.SHIPPED),
        ("FINISHED_L", OrderStatus.DELIVERED),
        ("RECEIPTS_CONFIRM", OrderStatus.DELIVERED),
        ("TRADE_CANCELED", OrderStatus.CANCELLED),
    ],
)
def test_jd_states_read_as_our_statuses(state, expected):
    assert map_order({**payload(sim_order()), "orderState": state}, "s").status == expected


def test_every_status_jd_can_express_is_reached():
    # JD shows sellers no unpaid orders; allocation and backorders are our own steps.
    not_expressible = {OrderStatus.PENDING_PAYMENT, OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.PACKING,
                       OrderStatus.REFUNDED}  # refunded: after-sales sets it, not the order feed
    assert set(STATUS_TABLE.values()) == set(OrderStatus) - not_expressible


@pytest.mark.parametrize("status", ["paid", "shipped", "delivered", "cancelled"])
def test_each_simulated_status_comes_back_as_the_same_status(status):
    assert map_order(payload(sim_order(status)), "s").status == OrderStatus(status)


# ---- mapping a typical payload -------------------------------------------------------


def test_a_typical_payload_maps_amounts_times_lines_and_the_masked_receiver():
    order = map_order(payload(sim_order()), "jd-shop")

    assert (order.platform, order.shop_code, order.currency) == ("jd", "jd-shop", "CNY")
    assert order.platform_order_id.isdigit() and len(order.platform_order_id) == 12
    assert order.total_amount == Decimal("183.60") and order.shipping_fee == Decimal("6.00")
    assert order.created_at == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert order.updated_at == datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC)
    assert order.paid_at == order.created_at and order.ship_by is None
    assert [(l.sku, l.quantity, l.unit_price, l.title) for l in order.lines] == [
        ("SKU-TEA-1", 2, Decimal("88.80"), "明前龙井 250g"), (None, 1, Decimal("0.00"), "赠品 茶杯")]
    assert all(l.platform_line_id.isdigit() for l in order.lines)
    receiver = order.receiver
    assert (receiver.name, receiver.phone, receiver.address) == ("林**", "138****8000", "民族****")
    assert (receiver.province, receiver.city, receiver.district) == ("广西", "南宁市", "青秀区")
    assert receiver.masked and receiver.encrypted == {} and receiver.country_code == "CN"
    assert order.buyer_note == "请尽快发货" and order.buyer_ref


def test_numbers_where_jd_sends_strings_are_read_as_well():
    wire = payload(sim_order())
    wire.update(orderId=230_000_000_001, orderPayment=183.6, freightPrice="")
    wire["itemInfoList"][0]["itemTotal"] = 2
    order = map_order(wire, "s")
    assert order.platform_order_id == "230000000001"
    assert order.total_amount == Decimal("183.6") and order.shipping_fee == Decimal("0")


def test_raw_order_keys_a_payload_and_tolerates_a_broken_one():
    raw = raw_order(payload(sim_order()))
    assert raw.platform_order_id
    assert raw.platform_updated_at == datetime(2024, 3, 1, 16, 31, tzinfo=UTC)
    broken = raw_order("not an order")
    assert (broken.platform_order_id, broken.platform_updated_at) == (None, None)
    assert raw_order({"orderId": "12ab", "modified": "yesterday"}).platform_order_id is None


def test_a_broken_payload_raises_mapping_error_with_every_reason():
    wire = payload(sim_order())
    wire.update(orderId="", orderState="ON_THE_MOON", orderStartTime="", modified="2024/03/01",
                orderPayment="free", consigneeInfo=None)
    wire["itemInfoList"] = [{"itemTotal": "0", "jdPrice": "-1"}, "gift"]

    with pytest.raises(MappingError) as caught:
        map_order(wire, "s")

    reasons = caught.value.reasons
    for expected in ("orderId", "orderState 'ON_THE_MOON'", "orderStartTime is missing",
                     "modified '2024/03/01'", "orderPayment 'free'", "itemTotal '0'",
                     "jdPrice '-1'", "itemInfoList[1] is not an object", "consigneeInfo"):
        assert any(expected in reason for reason in reasons), expected
    assert len(reasons) == 9


def test_an_order_without_lines_is_refused():
    with pytest.raises(MappingError, match="itemInfoList is empty"):
        map_order({**payload(sim_order()), "itemInfoList": []}, "s")
