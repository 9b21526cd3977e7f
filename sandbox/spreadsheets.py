"""Spreadsheet and till exports of simulated orders, as sellers' tools really write them.

`write_export` renders `SimOrder`s (from `sandbox.generator.populate`) as the export of one
source of `config/spreadsheet-sources.yaml`, one row per order line, in CSV or XLSX:
the Taobao export in GB18030 with its ="..." guarded ids and "省 市 区 street(postcode)"
addresses, the English shop-system export in UTF-8, the till journal with a title line
above the header and "¥" prices. The buyers' own dirt comes from the generator; on top of
it each file gets rows the connector cannot read, one of each kind in `dirt`:

    quantity_words   the quantity written as words ("两件")
    empty_order_id   the order id cell left empty (always on a one-line order)
    bad_date         a creation time that is no time ("2024-02-30 25:61:00")

Each such row is recorded as a `DirtyRow` (sheet row number, kind, SimOrder id), returned
by `dirty_rows(path)` and named in the order's `defects` ("sheet_<kind>"), so tests and
the demo know which rows must reach the review queue and which orders must be held back.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sandbox.model import SimLine, SimOrder

SOURCES = ("taobao-export-zh", "generic-en", "till-pos")
DIRT_KINDS = ("quantity_words", "empty_order_id", "bad_date")
CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class DirtyRow:
    row: int  # as Excel numbers it, header and title lines included
    kind: str
    order_id: int  # the SimOrder the row belongs to


_WRITTEN: dict[Path, list[DirtyRow]] = {}


def dirty_rows(path: Path) -> list[DirtyRow]:
    """The unreadable rows `write_export` put into the file at `path`."""
    return list(_WRITTEN.get(Path(path).resolve(), []))


def exported_id(source: str, order: SimOrder) -> str:
    """The order id as the export writes it (tills number receipts their own way)."""
    return f"POS{order.order_id}" if source == "till-pos" else str(order.order_id)


def write_export(
    directory: Path, source: str, orders: list[SimOrder], fmt: str = "csv", seed: int = 0, *,
    dirt: tuple[str, ...] = DIRT_KINDS, name: str | None = None,
    modified_at: datetime | None = None,
) -> Path:
    """Write one export of `orders` into `directory` and return its path.

    `modified_at` sets the file's modification time (the connector's ingest window looks
    at it); by default the file keeps the time it was written.
    """
    if source not in _LAYOUTS:
        raise ValueError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"fmt must be 'csv' or 'xlsx', not {fmt!r}")
    layout = _LAYOUTS[source]
    rng = random.Random(seed)
    path = Path(directory) / (name or f"{source}-{seed:04d}.{fmt}")
    # Dated by the newest sale rather than the clock, so the same orders give the same file.
    newest = max((o.created_at for o in orders), default=datetime(2024, 1, 1, tzinfo=timezone.utc))
    lead = [[f"门店销售流水 {newest.astimezone(CHINA_TIME):%Y-%m-%d}"]] if layout.title_row else []
    first_data_row = len(lead) + 2
    rows, owners = [], []
    for order in orders:
        for line in order.lines:
            rows.append(layout.render(order, line, rng, fmt))
            owners.append(order)
    dirty = _spoil(rows, owners, layout, dirt, rng, first_data_row)
    if fmt == "csv":
        _write_csv(path, lead, layout, rows)
    else:
        _write_xlsx(path, lead, layout, rows)
    if modified_at is not None:
        stamp = modified_at.timestamp()
        os.utime(path, (stamp, stamp))
    _WRITTEN[path.resolve()] = dirty
    return path


# ---- layouts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    header: tuple[str, ...]
    render: Callable[[SimOrder, SimLine, random.Random, str], dict]
    encoding: str
    order_id_column: str
    quantity_column: str
    time_column: str
    quantity_words: dict[int, str]
    bad_time: str
    title_row: bool = False  # a journal title above the header, as tills print


_TAOBAO_STATUS = {
    "unpaid": "等待买家付款", "paid": "买家已付款，等待卖家发货",
    "shipped": "卖家已发货，等待买家确认", "delivered": "交易成功", "cancelled": "交易关闭",
}
_ENGLISH_STATUS = {"unpaid": "Pending", "paid": "Paid", "shipped": "Shipped",
                   "delivered": "Delivered", "cancelled": "Cancelled"}
_CHINESE_COUNTS = {0: "零件", 1: "一件", 2: "两件", 3: "三件"}
_ENGLISH_COUNTS = {0: "none", 1: "one", 2: "two", 3: "three"}


def _local(moment: datetime, fmt: str, zone: timezone = CHINA_TIME):
    local = moment.astimezone(zone).replace(tzinfo=None)
    return local if fmt == "xlsx" else local.strftime(TIME_FORMAT)


def _money(amount: Decimal, fmt: str):
    return float(amount) if fmt == "xlsx" else f"{amount:.2f}"


def _taobao_row(order: SimOrder, line: SimLine, rng: random.Random, fmt: str) -> dict:
    paid = order.status in ("paid", "shipped", "delivered")
    street = order.address
    if street and order.district and street.startswith(order.district):
        street = f"{order.district} {street[len(order.district):]}"
    place = " ".join(part for part in (order.province, order.city, street) if part)
    if place and order.postal_code:
        place += f"({order.postal_code})"
    return {
        # Taobao guards ids from Excel's number conversion this way in its CSV files.
        "订单编号": f'="{order.order_id}"' if fmt == "csv" else str(order.order_id),
        "买家会员名": order.buyer_id, "订单状态": _TAOBAO_STATUS[order.status],
        "订单创建时间": _local(order.created_at, fmt),
        "订单付款时间": _local(order.created_at, fmt) if paid else "",
        "收货人姓名": order.receiver_name or "", "联系手机": order.phone or "", "收货地址": place,
        "商家编码": line.sku or "", "宝贝标题": line.title, "购买数量": line.quantity,
        "价格": _money(line.unit_price, fmt), "买家应付邮费": _money(order.shipping_fee, fmt),
        "买家留言": order.note,
    }


def _english_row(order: SimOrder, line: SimLine, rng: random.Random, fmt: str) -> dict:
    paid = order.status in ("paid", "shipped", "delivered")
    return {
        "Order ID": str(order.order_id), "Order Date": _local(order.created_at, fmt, timezone.utc),
        "Paid At": _local(order.created_at, fmt, timezone.utc) if paid else "",
        "Status": _ENGLISH_STATUS[order.status], "Buyer": order.buyer_id,
        "Recipient": order.receiver_name or "", "Phone": order.phone or "",
        "Province": order.province or "", "City": order.city or "", "District": order.district or "",
        "Address": order.address or "", "Postcode": order.postal_code or "",
        "Country": order.country_code, "Currency": order.currency, "SKU": line.sku or "",
        "Product": line.title, "Qty": line.quantity, "Unit Price": _money(line.unit_price, fmt),
        "Shipping": _money(order.shipping_fee, fmt), "Note": order.note,
    }


def _till_row(order: SimOrder, line: SimLine, rng: random.Random, fmt: str) -> dict:
    # A till records a sale when it is paid; the order's creation is that moment.
    price = f"¥{line.unit_price:.2f}" if fmt == "csv" else float(line.unit_price)
    return {
        "小票号": exported_id("till-pos", order), "销售时间": _local(order.created_at, fmt),
        "商品编码": line.sku or "", "商品名称": line.title, "数量": line.quantity, "单价": price,
        "金额": _money(line.unit_price * line.quantity, fmt),
        "支付方式": rng.choice(("微信支付", "支付宝", "现金", "银行卡")),
        "收银员": rng.choice(("01", "02", "03")),
    }


_LAYOUTS = {
    "taobao-export-zh": _Layout(
        ("订单编号", "买家会员名", "订单状态", "订单创建时间", "订单付款时间", "收货人姓名", "联系手机",
         "收货地址", "商家编码", "宝贝标题", "购买数量", "价格", "买家应付邮费", "买家留言"),
        _taobao_row, "gb18030", "订单编号", "购买数量", "订单创建时间", _CHINESE_COUNTS,
        "2024-02-30 25:61:00"),
    "generic-en": _Layout(
        ("Order ID", "Order Date", "Paid At", "Status", "Buyer", "Recipient", "Phone", "Province",
         "City", "District", "Address", "Postcode", "Country", "Currency", "SKU", "Product", "Qty",
         "Unit Price", "Shipping", "Note"),
        _english_row, "utf-8-sig", "Order ID", "Qty", "Order Date", _ENGLISH_COUNTS,
        "31/02/2024 10:00"),
    "till-pos": _Layout(
        ("小票号", "销售时间", "商品编码", "商品名称", "数量", "单价", "金额", "支付方式", "收银员"),
        _till_row, "utf-8-sig", "小票号", "数量", "销售时间", _CHINESE_COUNTS, "昨天 14:20",
        title_row=True),
}


# ---- dirt and files ----------------------------------------------------------------------


def _spoil(rows: list[dict], owners: list[SimOrder], layout: _Layout, dirt: tuple[str, ...],
           rng: random.Random, first_data_row: int) -> list[DirtyRow]:
    """Break one row per dirt kind, each in a different order; return what was broken."""
    unknown = set(dirt) - set(DIRT_KINDS)
    if unknown:
        raise ValueError(f"unknown dirt {sorted(unknown)}; choose from {DIRT_KINDS}")
    taken: set[int] = set()
    dirty = []
    for kind in dirt:
        candidates = [i for i, owner in enumerate(owners) if owner.order_id not in taken
                      and (kind != "empty_order_id" or len(owner.lines) == 1)]
        if not candidates:
            continue
        index = rng.choice(candidates)
        row, owner = rows[index], owners[index]
        if kind == "quantity_words":
            row[layout.quantity_column] = layout.quantity_words.get(row[layout.quantity_column], "好几件")
        elif kind == "empty_order_id":
            row[layout.order_id_column] = ""
        else:
            row[layout.time_column] = layout.bad_time
        taken.add(owner.order_id)
        owner.defects.add(f"sheet_{kind}")
        dirty.append(DirtyRow(first_data_row + index, kind, owner.order_id))
    return sorted(dirty, key=lambda d: d.row)


def _write_csv(path: Path, lead: list[list], layout: _Layout, rows: list[dict]) -> None:
    with open(path, "w", encoding=layout.encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")  # what Excel writes
        writer.writerows(lead)
        writer.writerow(layout.header)
        writer.writerows([row[h] for h in layout.header] for row in rows)


def _write_xlsx(path: Path, lead: list[list], layout: _Layout, rows: list[dict]) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Orders" if layout.header[0] == "Order ID" else "订单"
    for line in lead:
        sheet.append(line)
    sheet.append(list(layout.header))
    for row in rows:
        sheet.append([row[h] for h in layout.header])
    for cells in sheet.iter_rows(min_row=len(lead) + 2):
        for cell in cells:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
    book.save(path)
