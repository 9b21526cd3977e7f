"""The spreadsheet connector against real files in a drop folder: CSV and XLSX, Chinese
headers, grouping, unreadable rows, the modification-time window, source files, and the
tracking outbox."""

from __future__ import annotations

import csv
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from connectors.base import RawOrder, ShopAccess
from connectors.spreadsheet import (
    CARRIER_CODES,
    OUTBOX_HEADER,
    OUTBOX_NAME,
    SpreadsheetConnector,
    load_sources,
)
from connectors.spreadsheet_mapping import SourceConfigError
from oms.config import reset_settings
from oms.domain.carriers import Carrier
from oms.domain.cleaning import clean_order
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import OrderStatus
from sandbox.generator import populate
from sandbox.model import SandboxState, SimOrder
from sandbox.spreadsheets import dirty_rows, exported_id, write_export

UTC = timezone.utc
NOW = datetime.now(UTC).replace(microsecond=0)
TAOBAO_HEADER = ["订单编号", "订单状态", "订单创建时间", "收货人姓名", "联系手机", "收货地址",
                 "商家编码", "宝贝标题", "购买数量", "价格", "买家应付邮费"]


def connector(directory: Path, source: str = "taobao-export-zh") -> SpreadsheetConnector:
    access = ShopAccess("xls-shop", "spreadsheet", directory.as_uri(), {"source": source})
    return SpreadsheetConnector(access)


def fetch(directory: Path, source: str = "taobao-export-zh", start: datetime | None = None,
          end: datetime | None = None) -> list[RawOrder]:
    start, end = start or NOW - timedelta(days=1), end or NOW + timedelta(hours=1)
    return [raw for page in connector(directory, source).fetch_orders(start, end) for raw in page]


def split(raws: list[RawOrder]) -> tuple[list[RawOrder], list[RawOrder]]:
    """(readable orders, unreadable rows), as the ingest task tells them apart."""
    readable = [r for r in raws if r.platform_order_id and r.platform_updated_at]
    return readable, [r for r in raws if r not in readable]


def sim_orders(count: int = 40, seed: int = 7) -> list[SimOrder]:
    return populate(SandboxState(), "xls-shop", count=count, seed=seed, now=NOW)


def write_csv(path: Path, rows: list[list], header: list[str] = TAOBAO_HEADER, encoding: str = "gb18030",
              modified_at: datetime | None = None) -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    if modified_at is not None:
        os.utime(path, (modified_at.timestamp(), modified_at.timestamp()))
    return path


def taobao_row(order_id: str, sku: str = "SKU-0001", quantity: object = 1, price: str = "39.90",
               created: str = "2024-03-01 16:30:05") -> list:
    return [order_id, "买家已付款，等待卖家发货", created, "林小坤", "13800138000",
            "广西壮族自治区 南宁市 青秀区 民族大道100号(530000)", sku, "保温杯 白色", quantity, price, "6.00"]


# ---- orders, grouping, headers -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_order_of_a_chinese_export_arrives_once_with_all_its_lines(tmp_path, fmt):
    orders = sim_orders()
    write_export(tmp_path, "taobao-export-zh", orders, fmt, seed=1, dirt=())
    readable, unreadable = split(fetch(tmp_path))
    assert unreadable == []
    assert sorted(r.platform_order_id for r in readable) == sorted(str(o.order_id) for o in orders)
    by_id = {o.platform_order_id: o for o in map(connector(tmp_path).to_order, readable)}
    multi_line = [o for o in orders if len(o.lines) > 1]
    assert multi_line, "the seed must give orders of several lines"
    for sim in orders:
        order = by_id[str(sim.order_id)]
        assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
            (line.sku, line.quantity, line.unit_price) for line in sim.lines]
        assert order.created_at == sim.created_at and order.shipping_fee == sim.shipping_fee
        assert order.total_amount == sim.total
    assert {by_id[str(o.order_id)].status for o in orders} >= {OrderStatus.PAID}


def test_a_taobao_order_keeps_its_words_and_its_split_address(tmp_path):
    write_csv(tmp_path / "ExportOrderList.csv", [taobao_row('="100123"', "SKU-A"),
                                                 taobao_row('="100123"', "SKU-B", 2, "5")])
    [raw] = fetch(tmp_path)
    assert raw.payload["file"] == "ExportOrderList.csv" and [r["row"] for r in raw.payload["rows"]] == [2, 3]
    order = connector(tmp_path).to_order(raw)
    assert order.platform_status == "买家已付款，等待卖家发货" and order.status == OrderStatus.PAID
    assert order.created_at == datetime(2024, 3, 1, 8, 30, 5, tzinfo=UTC)
    assert order.total_amount == Decimal("55.90")
    receiver = clean_order(order).order.receiver
    assert (receiver.province, receiver.city, receiver.district, receiver.address, receiver.postal_code) == (
        "广西壮族自治区", "南宁市", "青秀区", "民族大道100号", "530000")
    assert receiver.phone == "+8613800138000"


def test_an_order_id_merged_over_its_item_rows_in_a_workbook_groups_them(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(TAOBAO_HEADER)
    sheet.append(taobao_row("100555", "SKU-A"))
    sheet.append(taobao_row(None, "SKU-B", 3))
    sheet.merge_cells("A2:A3")
    book.save(tmp_path / "merged.xlsx")
    [raw] = fetch(tmp_path)
    assert raw.platform_order_id == "100555"
    assert [line.sku for line in connector(tmp_path).to_order(raw).lines] == ["SKU-A", "SKU-B"]


def test_a_till_journal_lands_delivered_sales_that_need_no_shipping(tmp_path):
    orders = sim_orders(count=12, seed=3)
    write_export(tmp_path, "till-pos", orders, "xlsx", seed=2, dirt=())
    readable, unreadable = split(fetch(tmp_path, "till-pos"))
    assert unreadable == []  # the title line above the header is not an order
    mapped = [connector(tmp_path, "till-pos").to_order(r) for r in readable]
    assert sorted(o.platform_order_id for o in mapped) == sorted(exported_id("till-pos", o) for o in orders)
    assert {o.status for o in mapped} == {OrderStatus.DELIVERED}
    facts = [clean_order(o).facts for o in mapped]
    assert {(f["phone_state"], f["address_state"]) for f in facts} == {("not_needed", "not_needed")}


def test_an_update_time_column_is_the_orders_version_and_the_files_time_is_not(tmp_path):
    header = ["Order ID", "Updated At", "Status", "SKU", "Qty", "Unit Price", "Currency"]
    written = NOW - timedelta(minutes=10)
    write_csv(tmp_path / "orders.csv", [["A-1", "2024-03-01 10:00:00", "Shipped", "SKU-1", "1", "9.50", "USD"],
                                        ["A-2", "", "paid", "SKU-2", "2", "1", ""]],
              header=header, encoding="utf-8-sig", modified_at=written)
    first, second = sorted(fetch(tmp_path, "generic-en"), key=lambda r: r.platform_order_id)
    assert first.platform_updated_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert second.platform_updated_at == written  # no update time in the row: the file's
    order = connector(tmp_path, "generic-en").to_order(first)
    assert (order.status, order.currency, order.updated_at) == (OrderStatus.SHIPPED, "USD", first.platform_updated_at)
    assert connector(tmp_path, "generic-en").to_order(second).currency == "CNY"  # the source's default


# ---- unreadable rows and files --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("source", ["taobao-export-zh", "generic-en", "till-pos"])
def test_each_dirty_row_is_parked_with_its_sheet_row_and_reason(tmp_path, source, fmt):
    orders = sim_orders(count=30, seed=11)
    path = write_export(tmp_path, source, orders, fmt, seed=4)
    readable, unreadable = split(fetch(tmp_path, source))
    dirty = dirty_rows(path)
    assert [d.kind for d in sorted(dirty, key=lambda d: d.kind)] == ["bad_date", "empty_order_id", "quantity_words"]
    by_row = {raw.payload["row"]: raw for raw in unreadable}
    expected_words = {"quantity_words": "is not a whole number", "empty_order_id": "order id is empty",
                      "bad_date": "is not a time"}
    for row in dirty:
        raw = by_row[row.row]
        assert raw.unreadable_reason.startswith(f"{path.name} row {row.row}: ")
        assert expected_words[row.kind] in raw.unreadable_reason
        assert raw.payload["file"] == path.name and raw.payload["source"] == source and raw.payload["raw"]
    held = {o.order_id for o in orders} & {d.order_id for d in dirty}
    landed = {r.platform_order_id for r in readable}
    assert not landed & {exported_id(source, o) for o in orders if o.order_id in held}
    assert len(landed) == len(orders) - len(held)
    rows_of_held = sum(len(o.lines) for o in orders if o.order_id in held)
    assert len(unreadable) == rows_of_held  # every row of a held order is parked, none dropped


def test_the_other_rows_of_an_order_with_an_unreadable_row_are_held_back(tmp_path):
    write_csv(tmp_path / "export.csv", [taobao_row("100777", "SKU-A"), taobao_row("100888"),
                                        taobao_row("100777", "SKU-B", "两件")])
    readable, unreadable = split(fetch(tmp_path))
    assert [r.platform_order_id for r in readable] == ["100888"]
    reasons = sorted(r.unreadable_reason for r in unreadable)
    assert reasons == ["export.csv row 2: held back with row 4 of order 100777, which cannot be read",
                       "export.csv row 4: quantity '两件' is not a whole number"]
    assert {r.platform_order_id for r in unreadable} == {"100777"}  # so an operator can find them


def test_a_file_without_a_required_column_parks_every_row_and_drops_none(tmp_path):
    header = [h for h in TAOBAO_HEADER if h != "购买数量"]
    rows = [[c for h, c in zip(TAOBAO_HEADER, taobao_row(str(n))) if h != "购买数量"] for n in (1, 2, 3)]
    write_csv(tmp_path / "no-quantity.csv", rows, header=header)
    readable, unreadable = split(fetch(tmp_path))
    assert readable == [] and [r.payload["row"] for r in unreadable] == [2, 3, 4]
    assert all("the file has no quantity column (购买数量 / 宝贝数量 / 数量)" in r.unreadable_reason
               for r in unreadable)


def test_files_that_are_not_spreadsheets_are_parked_whole_and_others_are_ignored(tmp_path):
    (tmp_path / "broken.xlsx").write_bytes(b"this is not a zip archive")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0 old binary excel")
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02PK\x00")
    (tmp_path / "~$open.xlsx").write_bytes(b"lock")  # Excel's lock file of an open workbook
    (tmp_path / "README.txt").write_text("drop exports here")
    raws = fetch(tmp_path)
    reasons = sorted(r.unreadable_reason for r in raws)
    assert reasons == ["binary.csv: is not a CSV file (binary content)",
                       "broken.xlsx: is not an .xlsx workbook (BadZipFile)",
                       "old.xls: .xls files cannot be read; save it as .xlsx or .csv"]
    assert all(r.platform_order_id is None and r.payload["row"] is None for r in raws)


# ---- the window -----------------------------------------------------------------------


def test_only_files_modified_inside_the_window_are_read_and_a_refetch_is_the_same(tmp_path):
    start, end = NOW - timedelta(hours=1), NOW
    write_csv(tmp_path / "before.csv", [taobao_row("1")], modified_at=start - timedelta(seconds=1))
    write_csv(tmp_path / "first.csv", [taobao_row("2")], modified_at=start)
    write_csv(tmp_path / "inside.csv", [taobao_row("3"), taobao_row("4")], modified_at=end - timedelta(minutes=1))
    write_csv(tmp_path / "at-end.csv", [taobao_row("5")], modified_at=end)
    pages = list(connector(tmp_path).fetch_orders(start, end))
    assert [[r.platform_order_id for r in page] for page in pages] == [["2"], ["3", "4"]]  # a page a file
    again = list(connector(tmp_path).fetch_orders(start, end))
    assert [[(r.platform_order_id, r.platform_updated_at, r.payload) for r in page] for page in again] == \
           [[(r.platform_order_id, r.platform_updated_at, r.payload) for r in page] for page in pages]
    assert pages[0][0].platform_updated_at == start


def test_a_drop_folder_with_a_chinese_name_is_found_through_its_file_url(tmp_path):
    folder = tmp_path / "店铺 导出"
    folder.mkdir()
    write_csv(folder / "订单.csv", [taobao_row("9")])
    assert "%" in folder.as_uri()
    assert [r.platform_order_id for r in fetch(folder)] == ["9"]
    plain = SpreadsheetConnector(ShopAccess("s", "spreadsheet", str(folder), {"source": "generic-en"}))
    assert plain.directory == folder


# ---- sources ------------------------------------------------------------------------------


@pytest.fixture
def sources_file(tmp_path, monkeypatch):
    path = tmp_path / "sources.yaml"
    monkeypatch.setenv("OMS_SPREADSHEET_SOURCES_PATH", str(path))
    reset_settings()
    yield path
    reset_settings()


def test_the_shipped_sources_load():
    sources = load_sources()
    assert {"taobao-export-zh", "generic-en", "till-pos"} <= set(sources)
    assert sources["till-pos"].defaults["status"] == "delivered"


def test_a_source_with_an_unknown_field_is_refused_naming_the_source(tmp_path, sources_file):
    sources_file.write_text("sources:\n  mine:\n    columns:\n      order_id: 单号\n      quantity: 数量\n"
                            "      unit_price: 单价\n      wechat: 微信\n", encoding="utf-8")
    with pytest.raises(SourceConfigError, match="source 'mine': unknown canonical field 'wechat'"):
        load_sources()
    with pytest.raises(Rejected, match="source 'mine'") as error:
        fetch(tmp_path, "mine")
    assert error.value.code == "bad_source_config"


def test_a_source_file_that_is_not_yaml_is_refused(sources_file):
    sources_file.write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(SourceConfigError, match="not valid YAML"):
        load_sources()


def test_a_shop_naming_an_unknown_source_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(Rejected, match="'taobao-2019'.*generic-en, taobao-export-zh, till-pos"):
        fetch(tmp_path, "taobao-2019")


def test_an_edited_sources_file_is_read_again(tmp_path, sources_file):
    template = "sources:\n  mine:\n    columns:\n      order_id: {}\n      quantity: 数量\n      unit_price: 单价\n"
    sources_file.write_text(template.format("单号"), encoding="utf-8")
    assert load_sources()["mine"].columns["order_id"] == ("单号",)
    sources_file.write_text(template.format("小票号"), encoding="utf-8")
    os.utime(sources_file, (NOW.timestamp() + 5, NOW.timestamp() + 5))
    assert load_sources()["mine"].columns["order_id"] == ("小票号",)


# ---- write-back, probe, tokens --------------------------------------------------------------


def outbox_rows(directory: Path) -> list[list[str]]:
    with open(directory / OUTBOX_NAME, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_a_tracking_number_is_written_to_the_outbox_once(tmp_path):
    shop = connector(tmp_path)
    first = shop.push_tracking("100123", "SF", "SF1234567890")
    again = shop.push_tracking("100123", "SF", "SF1234567890")
    second_parcel = shop.push_tracking("100123", "ZTO", "ZT000111")
    assert (first.response, again.response, second_parcel.response) == (
        {"outcome": "recorded"}, {"outcome": "already_recorded"}, {"outcome": "recorded"})
    assert first.request == {"file": OUTBOX_NAME, "order_id": "100123", "carrier": "SF",
                             "tracking_number": "SF1234567890"}
    rows = outbox_rows(tmp_path)
    assert rows[0] == list(OUTBOX_HEADER)
    assert [r[:4] for r in rows[1:]] == [["100123", "SF", "顺丰速运", "SF1234567890"],
                                         ["100123", "ZTO", "中通快递", "ZT000111"]]
    assert (tmp_path / OUTBOX_NAME).read_bytes().count("\ufeff".encode()) == 1  # one BOM, for Excel
    assert fetch(tmp_path) == []  # the outbox is not an export


def test_an_unknown_carrier_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(Rejected) as error:
        connector(tmp_path).push_tracking("100123", "CAINIAO", "CN000")
    assert error.value.code == "unmapped_carrier"
    assert not (tmp_path / OUTBOX_NAME).exists()


def test_every_carrier_of_ours_has_an_outbox_name():
    assert set(CARRIER_CODES) == set(Carrier)


def test_probe_checks_the_drop_folder_and_there_are_no_tokens(tmp_path):
    connector(tmp_path).probe()
    with pytest.raises(Unavailable, match="missing or not readable"):
        connector(tmp_path / "gone").probe()
    with pytest.raises(Unavailable):
        list(connector(tmp_path / "gone").fetch_orders(NOW - timedelta(hours=1), NOW))
    with pytest.raises(Rejected, match="no tokens"):
        connector(tmp_path).refresh_access("anything")


def test_a_base_url_that_is_not_a_file_url_is_refused(tmp_path):
    with pytest.raises(Rejected, match="neither a file: URL nor a path"):
        SpreadsheetConnector(ShopAccess("s", "spreadsheet", "https://example.invalid/x", {"source": "generic-en"}))
