"""Spreadsheet sources, status words, address splitting, cell reading and the payload ->
Order mapping, without touching a file."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from connectors.spreadsheet_mapping import (
    SOURCE_STATUSES,
    STATUS_TABLE,
    SourceConfigError,
    map_order,
    parse_sources,
    split_address,
    status_for,
)
from connectors.spreadsheet_read import read_row
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus

UTC = timezone.utc

TAOBAO = {
    "timezone": "Asia/Shanghai",
    "receiver_address_split": True,
    "columns": {
        "order_id": ["订单编号", "订单号"], "status": "订单状态", "created_at": "订单创建时间",
        "receiver_name": "收货人姓名", "phone": "联系手机", "address": "收货地址",
        "sku": "商家编码", "title": "宝贝标题", "quantity": "购买数量", "unit_price": "价格",
        "shipping_fee": "买家应付邮费",
    },
    "status_values": {"买家已付款，等待卖家发货": "paid", "交易成功": "delivered"},
    "defaults": {"currency": "CNY", "country": "CN"},
}


def source(**changes):
    return parse_sources({"sources": {"taobao": {**TAOBAO, **changes}}})["taobao"]


def read(cells: dict, **changes):
    """read_row on a row given as {canonical field: cell}, through the source's columns."""
    mapping = source(**changes)
    names = list(mapping.columns)
    row = [cells.get(name) for name in names]
    return read_row(row, {name: i for i, name in enumerate(names)}, mapping)


def payload(*rows: dict, **top) -> dict:
    return {"source": "taobao", "file": "导出.csv", "updated_at": "2024-03-01T09:00:00+00:00",
            "rows": list(rows), **top}


def row(number: int, **values) -> dict:
    base = {"row": number, "order_id": "100123", "status": "paid", "platform_status": "买家已付款，等待卖家发货",
            "created_at": "2024-03-01T08:30:05+00:00", "currency": "CNY", "country": "CN",
            "receiver_name": "林小坤", "phone": "13800138000", "province": "广西", "city": "南宁市",
            "district": "青秀区", "address": "民族大道100号", "shipping_fee": "6",
            "sku": "SKU-TEA-1", "title": "明前龙井 250g", "quantity": 2, "unit_price": "88.80"}
    return {**base, **values}


# ---- status words -------------------------------------------------------------------------


def test_every_status_word_maps_to_a_status_an_export_can_express():
    assert set(STATUS_TABLE.values()) <= set(SOURCE_STATUSES)


def test_every_status_an_export_can_express_is_reached_by_some_word():
    assert set(STATUS_TABLE.values()) == set(SOURCE_STATUSES)
    assert OrderStatus.ALLOCATED not in SOURCE_STATUSES and OrderStatus.BACKORDERED not in SOURCE_STATUSES


@pytest.mark.parametrize("word, expected", [
    ("待付款", OrderStatus.PENDING_PAYMENT), ("已付款", OrderStatus.PAID), ("待发货", OrderStatus.PAID),
    ("已发货", OrderStatus.SHIPPED), ("交易成功", OrderStatus.DELIVERED), ("交易关闭", OrderStatus.CANCELLED),
    ("  Paid ", OrderStatus.PAID), ("SHIPPED", OrderStatus.SHIPPED), ("Canceled", OrderStatus.CANCELLED),
    ("ｄｅｌｉｖｅｒｅｄ", OrderStatus.DELIVERED),  # full-width letters from a Chinese input method
])
def test_status_words_are_read_whatever_their_case_spacing_or_width(word, expected):
    assert status_for(word, {}) == expected


def test_a_sources_own_status_words_come_before_the_built_in_ones():
    mapping = source(status_values={"交易成功": "shipped", "买家已付款，等待卖家发货": "paid"})
    assert status_for("交易成功", mapping.status_values) == OrderStatus.SHIPPED
    # The full-width comma of the export and a half-width one are the same word.
    assert status_for("买家已付款,等待卖家发货", mapping.status_values) == OrderStatus.PAID
    assert status_for("退款中", mapping.status_values) is None


# ---- sources ------------------------------------------------------------------------------


def test_a_valid_source_is_built_with_its_settings():
    mapping = source()
    assert mapping.columns["order_id"] == ("订单编号", "订单号")
    assert mapping.columns["status"] == ("订单状态",)
    assert str(mapping.timezone) == "Asia/Shanghai" and mapping.receiver_address_split


def test_an_unknown_canonical_field_is_an_error_naming_the_source_and_the_field():
    with pytest.raises(SourceConfigError) as error:
        source(columns={**TAOBAO["columns"], "buyer_wechat": "微信号"})
    assert "'taobao'" in str(error.value) and "buyer_wechat" in str(error.value)


def test_a_missing_required_mapping_is_an_error_naming_the_field():
    columns = {k: v for k, v in TAOBAO["columns"].items() if k != "quantity"}
    with pytest.raises(SourceConfigError, match=r"source 'taobao'.*required field 'quantity' has no column"):
        source(columns=columns)


def test_every_problem_of_every_source_is_reported_at_once():
    document = {"sources": {
        "a": {**TAOBAO, "timezone": "Mars/Olympus", "colums": {}},
        "b": {**TAOBAO, "status_values": {"退款中": "refunding"}, "defaults": {"currency": "rmb"}},
    }}
    with pytest.raises(SourceConfigError) as error:
        parse_sources(document, origin="sources.yaml")
    message = str(error.value)
    assert message.startswith("sources.yaml: ")
    for part in ("source 'a'", "Mars/Olympus", "unknown setting 'colums'", "source 'b'",
                 "'refunding' is not one of", "defaults.currency 'rmb'"):
        assert part in message


@pytest.mark.parametrize("document", [None, {}, {"sources": {}}, {"sources": ["taobao"]}])
def test_a_document_without_sources_is_refused(document):
    with pytest.raises(SourceConfigError, match="sources"):
        parse_sources(document)


# ---- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("浙江省 杭州市 西湖区 文三路100号(310000)", ("浙江省", "杭州市", "西湖区", "文三路100号", "310000")),
    ("广东省深圳市南山区科技园路1号", ("广东省", "深圳市", "南山区", "科技园路1号", None)),
    ("广西 南宁市 青秀区 民族大道100号 530000", ("广西", "南宁市", "青秀区", "民族大道100号", "530000")),
    ("上海 上海市 浦东新区 张江路8号", ("上海", "上海市", "浦东新区", "张江路8号", None)),
    ("上海市浦东新区张江路8号", ("上海市", "上海市", "浦东新区", "张江路8号", None)),
    ("火星省 奥林匹斯市 环形山路1号", ("火星省", "奥林匹斯市", None, "环形山路1号", None)),
])
def test_an_address_with_its_province_in_front_is_split(text, expected):
    parts = split_address(text)
    assert (parts.province, parts.city, parts.district, parts.street, parts.postal_code) == expected


@pytest.mark.parametrize("text", ["南宁市 青秀区 民族大道100号", "吉祥路8号3栋", "宁波路12号"])
def test_an_address_that_does_not_start_with_a_province_is_left_whole(text):
    parts = split_address(text)
    assert parts.province is None and parts.street == text


# ---- reading cells ----------------------------------------------------------------------------


def test_a_row_is_read_into_typed_canonical_values():
    values, problems = read({
        "order_id": '="100123"', "status": "买家已付款，等待卖家发货", "created_at": "2024/3/1 16:30",
        "phone": 13800138000.0, "address": "广西 南宁市 青秀区 民族大道100号(530000)",
        "quantity": "２", "unit_price": "¥1,299.00", "shipping_fee": "6元",
    })
    assert problems == []
    assert values["order_id"] == "100123"
    assert values["created_at"] == "2024-03-01T08:30:00+00:00"  # China time -> UTC
    assert values["status"] == "paid" and values["platform_status"] == "买家已付款，等待卖家发货"
    assert values["phone"] == "13800138000"
    assert (values["province"], values["city"], values["district"]) == ("广西", "南宁市", "青秀区")
    assert values["address"] == "民族大道100号" and values["postal_code"] == "530000"
    assert (values["quantity"], values["unit_price"], values["shipping_fee"]) == (2, "1299.00", "6")
    assert (values["currency"], values["country"]) == ("CNY", "CN")


def test_a_date_cell_from_a_workbook_is_read_in_the_sources_time_zone():
    values, problems = read({"order_id": 100123, "created_at": datetime(2024, 3, 1, 16, 30),
                             "quantity": 1.0, "unit_price": 39.9})
    assert problems == []
    assert values["order_id"] == "100123" and values["quantity"] == 1 and values["unit_price"] == "39.9"
    assert datetime.fromisoformat(values["created_at"]) == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("cells, reason", [
    ({"order_id": "", "quantity": 1, "unit_price": "1"}, "order id is empty"),
    ({"order_id": "1.23457E+17", "quantity": 1, "unit_price": "1"}, "shortened by Excel to scientific notation"),
    ({"order_id": 1.2345678901234567e17, "quantity": 1, "unit_price": "1"}, "stored as a number and lost digits"),
    ({"order_id": "1", "quantity": "两件", "unit_price": "1"}, "quantity '两件' is not a whole number"),
    ({"order_id": "1", "quantity": 1.5, "unit_price": "1"}, "quantity 1.5 is not a whole number"),
    ({"order_id": "1", "quantity": 1, "unit_price": "面议"}, "unit_price '面议' is not a number"),
    ({"order_id": "1", "quantity": 1}, "unit_price is empty"),
    ({"order_id": "1", "quantity": 1, "unit_price": "1", "created_at": "2024-02-30 25:61:00"},
     "created_at '2024-02-30 25:61:00' is not a time"),
])
def test_a_cell_that_is_not_what_its_column_says_makes_the_row_unreadable(cells, reason):
    _, problems = read(cells)
    assert any(reason in problem for problem in problems), problems


def test_every_problem_of_a_row_is_named():
    _, problems = read({"order_id": "", "quantity": "两件", "unit_price": "1", "created_at": "昨天"})
    assert len(problems) == 3


def test_an_unknown_status_word_is_kept_for_the_mapping_to_refuse():
    values, problems = read({"order_id": "1", "quantity": 1, "unit_price": "1", "status": "退款中"})
    assert problems == [] and "status" not in values and values["platform_status"] == "退款中"


def test_a_source_default_status_fills_an_empty_status_cell():
    values, _ = read({"order_id": "1", "quantity": 1, "unit_price": "1"},
                     defaults={"currency": "CNY", "status": "delivered"})
    assert values["status"] == "delivered" and "platform_status" not in values


# ---- payload -> Order -----------------------------------------------------------------------


def test_the_rows_of_one_order_become_one_order_with_a_line_each():
    order = map_order(payload(row(2), row(3, sku="SKU-CUP", title="茶杯", quantity=1, unit_price="0")), "xls-shop")
    assert order.platform == "spreadsheet" and order.shop_code == "xls-shop"
    assert order.platform_order_id == "100123"
    assert order.status == OrderStatus.PAID and order.platform_status == "买家已付款，等待卖家发货"
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("SKU-TEA-1", 2, Decimal("88.80")), ("SKU-CUP", 1, Decimal("0"))]
    assert order.shipping_fee == Decimal("6") and order.total_amount == Decimal("183.60")
    assert order.currency == "CNY"
    assert order.created_at == datetime(2024, 3, 1, 8, 30, 5, tzinfo=UTC)
    assert order.updated_at == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    receiver = order.receiver
    assert (receiver.name, receiver.phone, receiver.province, receiver.city, receiver.address) == (
        "林小坤", "13800138000", "广西", "南宁市", "民族大道100号")
    assert receiver.country_code == "CN" and not receiver.masked


def test_an_order_total_column_wins_over_the_sum_of_the_lines():
    assert map_order(payload(row(2, total_amount="170.00")), "s").total_amount == Decimal("170.00")


def test_without_a_creation_time_the_order_counts_from_its_payment_or_its_version():
    paid = map_order(payload(row(2, created_at=None, paid_at="2024-03-01T08:31:00+00:00")), "s")
    assert paid.created_at == datetime(2024, 3, 1, 8, 31, tzinfo=UTC) == paid.paid_at
    bare = map_order(payload(row(2, created_at=None)), "s")
    assert bare.created_at == bare.updated_at


def test_a_broken_order_lists_every_reason_with_its_row_number():
    broken = payload(
        row(2, quantity=0),
        row(3, unit_price="-5", phone="13900139000"),
        row(4, status=None, platform_status="退款中", currency=None),
    )
    with pytest.raises(MappingError) as error:
        map_order(broken, "s")
    reasons = error.value.reasons
    assert "row 2: quantity 0 is not a positive whole number" in reasons
    assert "row 3: unit_price '-5' is not an amount" in reasons
    assert "rows 2 and 3 of one order disagree on phone" in reasons
    assert any(r.startswith("row 4: status '退款中' is unknown to source 'taobao'") for r in reasons)
    assert not any("13900139000" in r for r in reasons)  # reasons are shown without buyer data


def test_an_order_without_currency_or_status_says_which_setting_is_missing():
    with pytest.raises(MappingError) as error:
        map_order(payload(row(2, currency=None, status=None, platform_status=None)), "s")
    assert any("defaults.currency" in r for r in error.value.reasons)
    assert any("no status, and source 'taobao' has no defaults.status" in r for r in error.value.reasons)


@pytest.mark.parametrize("broken", [{}, {"rows": []}, {"rows": "row 2"}, {"rows": [1, 2]}])
def test_a_payload_without_rows_is_refused(broken):
    with pytest.raises(MappingError, match="no rows"):
        map_order(broken, "s")


def test_a_hand_edited_time_without_offset_is_refused():
    with pytest.raises(MappingError, match="created_at '2024-03-01 08:30' is not an ISO time with an offset"):
        map_order(payload(row(2, created_at="2024-03-01 08:30")), "s")
