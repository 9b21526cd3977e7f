"""Taobao signing, status table and trade mapping, without any I/O.

Payloads come from the simulator's renderer, so these tests also pin the two sides of
the wire to the same reading of reference §5.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.taobao import modified_slices, sign_params
from connectors.taobao_mapping import STATUS_TABLE, map_order, parse_china_time, raw_order
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus
from sandbox import taobao as sim
from sandbox import taobao_render as render
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc

# Reference Appendix A's 'taobao md5' (324B0AD4...) names no inputs; about 57 million
# combinations of the usual dummy inputs did not reproduce it. These vectors were computed
# by hand from the documented algorithm instead:
#   J='app_key12345678end_modified2023-11-15 06:13:20fieldstid,status,modifiedformatjson
#      methodtaobao.trades.sold.increment.getpage_no1page_size50sessiontok123
#      sign_method<m>start_modified2023-11-15 05:43:20timestamp2023-11-15 06:13:20
#      use_has_nexttruev2.0'   (one line, <m> the sign method)
#   md5:         printf '%s' "testsecret${J}testsecret" | md5sum
#   hmac:        printf '%s' "$J" | openssl dgst -md5 -hmac testsecret
#   hmac-sha256: printf '%s' "$J" | openssl dgst -sha256 -hmac testsecret
VECTOR_PARAMS = {
    "method": "taobao.trades.sold.increment.get", "app_key": "12345678", "session": "tok123",
    "timestamp": "2023-11-15 06:13:20", "format": "json", "v": "2.0",
    "fields": "tid,status,modified", "start_modified": "2023-11-15 05:43:20",
    "end_modified": "2023-11-15 06:13:20", "page_no": "1", "page_size": "50", "use_has_next": "true",
}
VECTORS = {
    "md5": "99CD6687571A605C4A6AE638BF773F27",
    "hmac": "05729FE1777F6DCACDDCBEED4B051EDE",
    "hmac-sha256": "CC05BC384CE9D4C98F75FC214192B20E7C2B1D7A34A84C03ED0E280DAC2B9D1F",
}
# The enum of reference §5.4 [H], written out here rather than imported from the code.
REFERENCE_STATUSES = {
    "TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "SELLER_CONSIGNED_PART", "WAIT_SELLER_SEND_GOODS",
    "WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED", "TRADE_CLOSED",
    "TRADE_CLOSED_BY_TAOBAO", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM", "PAID_FORBID_CONSIGN",
}


def sim_order(status: str = "paid", **changes) -> SimOrder:
    values = dict(
        order_id=100_124, shop="tb-shop", status=status, currency="CNY",
        created_at=datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC),
        lines=[SimLine("SKU-TEA-1", "明前龙井 250g", 2, Decimal("88.80"), 1),
               SimLine(None, "赠品 茶杯", 1, Decimal("0"), 2)],
        shipping_fee=Decimal("6"), receiver_name="司马云", phone="13800138000",
        province="广西壮族自治区", city="南宁市", district="青秀区", address="民族大道100号",
        postal_code="530000", buyer_id="buyer-00000042", note="请尽快发货",
    )
    values.update(changes)
    return SimOrder(**values)


def mapped(order: SimOrder):
    return map_order(render.render_trade(order), "tb-shop")


# ---- signing ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(VECTORS))
def test_the_connector_signs_the_hand_computed_vectors(method):
    assert sign_params({**VECTOR_PARAMS, "sign_method": method}, "testsecret", method) == VECTORS[method]


@pytest.mark.parametrize("method", sorted(VECTORS))
def test_the_simulator_signs_the_same_vectors_with_its_own_code(method):
    assert sim.sign({**VECTOR_PARAMS, "sign_method": method}, "testsecret", method) == VECTORS[method]


def test_sign_empty_values_and_key_order_do_not_change_the_signature():
    shuffled = dict(reversed(list(VECTOR_PARAMS.items())), sign_method="md5", sign="X", status="")
    assert sign_params(shuffled, "testsecret") == VECTORS["md5"]


def test_numbers_booleans_and_lists_are_signed_as_the_text_that_is_sent():
    typed = {"page_no": 1, "use_has_next": True, "query_list": [{"tid": "1"}]}
    as_sent = {"page_no": "1", "use_has_next": "true", "query_list": '[{"tid":"1"}]'}
    assert sign_params(typed, "k") == sim.sign(as_sent, "k")


# ---- status table, both ways ----------------------------------------------------------


def test_every_trade_status_of_the_reference_is_in_the_table():
    assert set(STATUS_TABLE) == REFERENCE_STATUSES == set(render.TRADE_STATUSES)


def test_the_table_reaches_every_status_a_platform_can_express_and_no_other():
    assert set(STATUS_TABLE.values()) == {
        OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.SHIPPED,
        OrderStatus.DELIVERED, OrderStatus.CANCELLED,
    }


@pytest.mark.parametrize("status, expected", [
    ("WAIT_BUYER_PAY", OrderStatus.PENDING_PAYMENT),
    ("PAID_FORBID_CONSIGN", OrderStatus.PENDING_PAYMENT),  # paid, but must not ship yet
    ("WAIT_SELLER_SEND_GOODS", OrderStatus.PAID),
    ("SELLER_CONSIGNED_PART", OrderStatus.PAID),  # the rest still has to ship
    ("WAIT_BUYER_CONFIRM_GOODS", OrderStatus.SHIPPED),
    ("TRADE_BUYER_SIGNED", OrderStatus.DELIVERED),
    ("TRADE_FINISHED", OrderStatus.DELIVERED),
    ("TRADE_CLOSED", OrderStatus.CANCELLED),
    ("TRADE_CLOSED_BY_TAOBAO", OrderStatus.CANCELLED),
])
def test_taobao_statuses_read_as_ours(status, expected):
    assert STATUS_TABLE[status] == expected


@pytest.mark.parametrize("sim_status, order_id, platform_status, expected", [
    ("unpaid", 1, "WAIT_BUYER_PAY", OrderStatus.PENDING_PAYMENT),
    ("paid", 1, "WAIT_SELLER_SEND_GOODS", OrderStatus.PAID),
    ("shipped", 1, "WAIT_BUYER_CONFIRM_GOODS", OrderStatus.SHIPPED),
    ("delivered", 1, "TRADE_FINISHED", OrderStatus.DELIVERED),
    ("cancelled", 2, "TRADE_CLOSED", OrderStatus.CANCELLED),
    ("cancelled", 3, "TRADE_CLOSED_BY_TAOBAO", OrderStatus.CANCELLED),
])
def test_each_simulated_status_comes_back_as_the_matching_order_status(
    sim_status, order_id, platform_status, expected
):
    order = mapped(sim_order(sim_status, order_id=order_id))
    assert (order.platform_status, order.status) == (platform_status, expected)


@pytest.mark.parametrize("status", ["TRADE_SOMETHING_NEW", "", None, 3])
def test_an_unknown_status_is_a_mapping_error(status):
    with pytest.raises(MappingError, match="unknown trade status"):
        map_order(render.render_trade(sim_order()) | {"status": status}, "tb-shop")


# ---- mapping a rendered trade ---------------------------------------------------------


def test_a_paid_trade_maps_with_yuan_amounts_utc_times_and_seller_skus():
    order = mapped(sim_order("paid"))

    assert (order.platform, order.shop_code, order.currency) == ("taobao", "tb-shop", "CNY")
    assert order.platform_order_id == str(render.tid(sim_order()))
    assert order.created_at == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC) == order.paid_at
    assert order.updated_at == datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC)
    assert (order.total_amount, order.shipping_fee) == (Decimal("183.60"), Decimal("6.00"))
    assert [(l.sku, l.quantity, l.unit_price, l.title) for l in order.lines] == [
        ("SKU-TEA-1", 2, Decimal("88.80"), "明前龙井 250g"), (None, 1, Decimal("0.00"), "赠品 茶杯")]
    assert all(l.platform_line_id.isdigit() for l in order.lines)
    assert order.buyer_ref.startswith("AAH") and order.buyer_note == "请尽快发货"


def test_the_increment_list_leaves_out_what_only_the_detail_shows():
    every_field = frozenset(render.render_trade(sim_order())) | {"orders.oid"}
    listed = render.select_fields(render.render_trade(sim_order()), every_field, render.INCREMENT_FIELDS)
    assert "buyer_message" not in listed and map_order(listed, "tb-shop").buyer_note == ""


def test_the_receiver_is_desensitised_and_keeps_the_oaid():
    order = sim_order("paid")
    receiver = mapped(order).receiver
    assert (receiver.name, receiver.phone, receiver.address) == ("司**", "*******8000", "民族大道****")
    assert (receiver.province, receiver.city, receiver.district) == ("广西壮族自治区", "南宁市", "青秀区")
    assert (receiver.postal_code, receiver.country_code, receiver.masked) == ("530000", "CN", True)
    assert receiver.encrypted == {"oaid": render.oaid(order)}
    assert "司马云" not in json.dumps(render.render_trade(order), ensure_ascii=False)


def test_a_county_given_only_as_district_is_read_as_the_city():
    payload = render.render_trade(sim_order()) | {"receiver_city": "", "receiver_district": "济源市"}
    receiver = map_order(payload, "tb-shop").receiver
    assert (receiver.city, receiver.district) == ("济源市", None)


def test_the_item_outer_id_stands_in_when_the_sku_has_none():
    payload = render.render_trade(sim_order())
    payload["orders"]["order"][1]["outer_iid"] = "CUP-1"
    assert [l.sku for l in map_order(payload, "tb-shop").lines] == ["SKU-TEA-1", "CUP-1"]


def test_a_closed_sub_order_of_a_trade_that_still_ships_is_not_a_line_to_ship():
    payload = render.render_trade(sim_order())
    payload["orders"]["order"][1]["status"] = "TRADE_CLOSED_BY_TAOBAO"
    assert [l.title for l in map_order(payload, "tb-shop").lines] == ["明前龙井 250g"]
    closed = mapped(sim_order("cancelled", order_id=3))
    assert len(closed.lines) == 2  # a closed trade keeps its lines for the record


def test_times_are_read_as_china_time_and_stored_as_utc():
    assert parse_china_time("2024-03-02 00:30:05") == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert parse_china_time("2024-02-30 10:00:00") is None
    assert parse_china_time("1709310605000") is None
    assert parse_china_time(None) is None


def test_a_trade_too_broken_to_key_still_becomes_a_raw_order():
    raw = raw_order({"tid": "not-a-number", "modified": "昨天"})
    assert (raw.platform_order_id, raw.platform_updated_at) == (None, None)
    assert raw_order("junk").payload == {"unreadable_item": "junk"}
    assert raw_order({"tid": "3000000000000000001"}).platform_order_id == "3000000000000000001"


def test_a_mapping_error_lists_every_reason_at_once():
    payload = render.render_trade(sim_order()) | {
        "tid": None, "status": "NOPE", "created": "2024/03/02", "payment": "lots",
        "post_fee": "-1", "pay_time": "soon",
        "orders": {"order": [{"num": 0, "price": "free", "status": "WAIT_SELLER_SEND_GOODS"}, "junk"]},
    }
    payload.pop("modified")

    with pytest.raises(MappingError) as caught:
        map_order(payload, "tb-shop")

    reasons = "\n".join(caught.value.reasons)
    fragments = ("tid", "unknown trade status", "created", "modified is missing", "pay_time",
                 "payment", "post_fee", "orders[0].num", "orders[0].price", "orders[1]")
    assert len(caught.value.reasons) == len(fragments), reasons
    for fragment in fragments:
        assert fragment in reasons


def test_sub_orders_outside_tops_wrapped_list_are_a_reason():
    payload = render.render_trade(sim_order()) | {"orders": [{"num": 1, "price": "1.00"}]}
    with pytest.raises(MappingError, match="orders is not"):
        map_order(payload, "tb-shop")


# ---- windows --------------------------------------------------------------------------


def test_a_window_is_cut_into_half_open_slices_that_meet():
    start = datetime(2024, 3, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    end = start + timedelta(hours=1, minutes=10)
    slices = list(modified_slices(start, end, timedelta(minutes=30)))
    assert [b - a for a, b in slices] == [timedelta(minutes=30)] * 2 + [timedelta(minutes=10)]
    assert all(slices[n][1] == slices[n + 1][0] for n in range(len(slices) - 1))
    assert slices[0][0] == start and slices[-1][1] == end


def test_a_window_without_timezone_is_refused():
    with pytest.raises(ValueError):
        list(modified_slices(datetime(2024, 3, 1), datetime(2024, 3, 2), timedelta(hours=1)))
