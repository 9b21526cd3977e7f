"""Spreadsheet and till exports: the source definitions, the status words, and the mapping
of a landed payload to an `Order`.

A source (config/spreadsheet-sources.yaml) says which header of an export holds which
canonical field. The connector reads each row into those fields, already typed (times as
UTC ISO strings, amounts as decimal strings, quantities as integers) and groups the rows
of one order into one payload:

    {"source": "taobao-export-zh", "file": "订单导出.csv", "updated_at": "...",
     "rows": [{"row": 2, "order_id": "100123", "quantity": 2, "unit_price": "39.90", ...}]}

`map_order` turns such a payload into an `Order` with no I/O, naming the sheet row of
every problem, so a seller can open the file and fix the very cell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oms.domain.errors import MappingError
from oms.domain.normalize import normalize_province
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "spreadsheet"

# Fields that describe the whole order and repeat on every line row of it.
ORDER_FIELDS = (
    "order_id", "created_at", "paid_at", "updated_at", "status", "buyer", "receiver_name",
    "phone", "province", "city", "district", "address", "postal_code", "country",
    "currency", "shipping_fee", "total_amount", "note",
)
LINE_FIELDS = ("line_id", "sku", "title", "quantity", "unit_price")
CANONICAL_FIELDS = frozenset(ORDER_FIELDS + LINE_FIELDS)
REQUIRED_FIELDS = ("order_id", "quantity", "unit_price")
TIME_FIELDS = ("created_at", "paid_at", "updated_at")
AMOUNT_FIELDS = ("unit_price", "shipping_fee", "total_amount")
# Two rows of one order may differ in these only if the export is broken (or two orders
# share an id); shipping one of them would be a guess.
CONSISTENT_FIELDS = ("status", "currency", "created_at", "receiver_name", "phone", "province",
                     "city", "district", "address", "country", "shipping_fee", "total_amount")

S = OrderStatus
# What an export can say about an order; allocation and backorders are ours alone.
SOURCE_STATUSES = (S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.DELIVERED, S.CANCELLED)

# Status words every source understands, compared after NFKC and case folding; a source's
# own `status_values` are looked up first.
STATUS_TABLE: dict[str, OrderStatus] = {
    "待付款": S.PENDING_PAYMENT, "未付款": S.PENDING_PAYMENT, "等待付款": S.PENDING_PAYMENT,
    "已付款": S.PAID, "待发货": S.PAID,
    "已发货": S.SHIPPED, "待收货": S.SHIPPED,
    "已签收": S.DELIVERED, "已完成": S.DELIVERED, "交易成功": S.DELIVERED,
    "交易关闭": S.CANCELLED, "已取消": S.CANCELLED, "已关闭": S.CANCELLED,
    "pending": S.PENDING_PAYMENT, "unpaid": S.PENDING_PAYMENT, "awaiting payment": S.PENDING_PAYMENT,
    "paid": S.PAID, "awaiting shipment": S.PAID, "to ship": S.PAID, "unfulfilled": S.PAID,
    "shipped": S.SHIPPED, "in transit": S.SHIPPED, "fulfilled": S.SHIPPED,
    "delivered": S.DELIVERED, "completed": S.DELIVERED, "complete": S.DELIVERED,
    "cancelled": S.CANCELLED, "canceled": S.CANCELLED, "closed": S.CANCELLED, "voided": S.CANCELLED,
}  # fmt: skip

DEFAULT_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日",
)


def text_key(value: object) -> str:
    """How headers and status words are compared: full-width folded, spaces collapsed,
    case ignored, byte-order marks dropped."""
    text = unicodedata.normalize("NFKC", str(value)).replace("\ufeff", "")
    return " ".join(text.split()).casefold()


_STATUS_KEYS = {text_key(word): status for word, status in STATUS_TABLE.items()}


def status_for(word: object, source_values: Mapping[str, OrderStatus]) -> OrderStatus | None:
    """The internal status of a source's status word, or None when nobody knows it."""
    key = text_key(word)
    return source_values.get(key) or _STATUS_KEYS.get(key)


# ---- sources ---------------------------------------------------------------------------


class SourceConfigError(ValueError):
    """The sources file is wrong; the message names the file, the source and every problem."""


@dataclass(frozen=True)
class SourceMapping:
    name: str
    columns: dict[str, tuple[str, ...]]  # canonical field -> accepted header spellings
    status_values: dict[str, OrderStatus] = field(default_factory=dict)  # by text_key
    defaults: dict[str, str] = field(default_factory=dict)
    timezone: ZoneInfo = ZoneInfo("Asia/Shanghai")
    time_formats: tuple[str, ...] = DEFAULT_TIME_FORMATS
    receiver_address_split: bool = False
    sheet: str | None = None
    encodings: tuple[str, ...] = ("utf-8-sig", "gb18030")
    delimiter: str = ","


SOURCE_KEYS = frozenset({"description", "columns", "status_values", "defaults", "timezone",
                         "time_formats", "receiver_address_split", "sheet", "encodings", "delimiter"})
DEFAULT_KEYS = frozenset({"currency", "status", "country"})


def parse_sources(document: object, origin: str = "spreadsheet sources") -> dict[str, SourceMapping]:
    """Check a loaded sources document and build every source; all problems in one error."""
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict) \
            or not document["sources"]:
        raise SourceConfigError(f"{origin}: expected a non-empty 'sources:' mapping at the top")
    sources, problems = {}, []
    for name, entry in document["sources"].items():
        found: list[str] = []
        source = _parse_source(str(name), entry, found)
        if found:
            problems.append(f"source {name!r}: " + "; ".join(found))
        else:
            sources[str(name)] = source
    if problems:
        raise SourceConfigError(f"{origin}: " + " | ".join(problems))
    return sources


def _parse_source(name: str, entry: object, problems: list[str]) -> SourceMapping | None:
    if not isinstance(entry, dict):
        problems.append("must be a mapping of settings")
        return None
    problems.extend(f"unknown setting {key!r}" for key in entry if key not in SOURCE_KEYS)
    columns = _columns(entry.get("columns"), problems)
    status_values = {}
    for word, status in _settings_map(entry, "status_values", problems).items():
        if status not in set(SOURCE_STATUSES):
            problems.append(f"status_values[{word!r}] = {status!r} is not one of "
                            + ", ".join(SOURCE_STATUSES))
        else:
            status_values[text_key(word)] = OrderStatus(status)
    defaults = {str(k): str(v) for k, v in _settings_map(entry, "defaults", problems).items()}
    problems.extend(f"unknown default {key!r}" for key in defaults if key not in DEFAULT_KEYS)
    if "status" in defaults and status_for(defaults["status"], status_values) is None:
        problems.append(f"defaults.status {defaults['status']!r} is not a status")
    if "currency" in defaults and not re.fullmatch(r"[A-Z]{3}", defaults["currency"]):
        problems.append(f"defaults.currency {defaults['currency']!r} is not an ISO 4217 code")
    zone = _zone(entry.get("timezone", "Asia/Shanghai"), problems)
    formats = entry.get("time_formats", DEFAULT_TIME_FORMATS)
    if not isinstance(formats, (list, tuple)) or not all(isinstance(f, str) and "%" in f for f in formats):
        problems.append("time_formats must be a list of strptime formats")
    encodings = entry.get("encodings", ["utf-8-sig", "gb18030"])
    for encoding in encodings if isinstance(encodings, list) else [encodings]:
        try:
            "".encode(str(encoding))
        except LookupError:
            problems.append(f"encoding {encoding!r} is unknown")
    delimiter = entry.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        problems.append("delimiter must be one character")
    if not isinstance(entry.get("receiver_address_split", False), bool):
        problems.append("receiver_address_split must be true or false")
    if problems:
        return None
    return SourceMapping(
        name=name, columns=columns, status_values=status_values, defaults=defaults,
        timezone=zone, time_formats=tuple(formats),
        receiver_address_split=entry.get("receiver_address_split", False),
        sheet=entry.get("sheet"), encodings=tuple(encodings if isinstance(encodings, list) else [encodings]),
        delimiter=delimiter,
    )


def _settings_map(entry: dict, key: str, problems: list[str]) -> dict:
    value = entry.get(key) or {}
    if not isinstance(value, dict):
        problems.append(f"{key} must be a mapping")
        return {}
    return value


def _columns(value: object, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        problems.append("'columns:' must map canonical fields to header names")
        return {}
    columns = {}
    for canonical, headers in value.items():
        spellings = headers if isinstance(headers, list) else [headers]
        if canonical not in CANONICAL_FIELDS:
            problems.append(f"unknown canonical field {canonical!r} (known: "
                            + ", ".join(sorted(CANONICAL_FIELDS)) + ")")
        elif not spellings or not all(isinstance(h, str) and h.strip() for h in spellings):
            problems.append(f"columns.{canonical} must name at least one header")
        else:
            columns[canonical] = tuple(spellings)
    problems.extend(f"required field {name!r} has no column" for name in REQUIRED_FIELDS
                    if name not in value)
    return columns


def _zone(name: object, problems: list[str]) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {name!r} is not an IANA zone name")
        return ZoneInfo("UTC")


# ---- addresses -------------------------------------------------------------------------

_POSTCODE_TAIL = re.compile(r"(?:\(\s*(\d{6})\s*\)|\s(\d{6}))\s*$")
_CITY = re.compile(r"[^区县旗\s]{1,10}?(?:自治州|地区|盟|市)")
_DISTRICT = re.compile(r"[^\s]{1,10}?(?:区|县|旗|市)")
_MUNICIPALITIES = frozenset({"北京市", "天津市", "上海市", "重庆市"})
_PROVINCE_SUFFIXES = ("省", "自治区", "特别行政区")


@dataclass(frozen=True)
class AddressParts:
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    postal_code: str | None


def split_address(text: str | None) -> AddressParts:
    """Split '浙江省 杭州市 西湖区 文三路100号(310000)' (spaced or not) into its parts.

    Only a leading province that is really one (or says 省/自治区) is split off; an
    address that does not start with one is left whole, so the validation suite flags
    the missing province instead of us guessing it.
    """
    if not text or not text.strip():
        return AddressParts(None, None, None, None, None)
    text = unicodedata.normalize("NFKC", text).strip()
    postal_code = None
    if tail := _POSTCODE_TAIL.search(text):
        postal_code = tail[1] or tail[2]
        text = text[: tail.start()].strip()
    tokens = text.split()
    if len(tokens) > 1 and _is_province(tokens[0]):
        province, rest = tokens[0], tokens[1:]
        city = rest.pop(0) if len(rest) > 1 and _CITY.fullmatch(rest[0]) else None
        district = rest.pop(0) if len(rest) > 1 and _DISTRICT.fullmatch(rest[0]) else None
        return _parts(province, city, district, " ".join(rest), postal_code)
    compact = "".join(tokens)
    province = _leading_province(compact)
    if province is None:
        return AddressParts(None, None, None, text, postal_code)
    rest = compact[len(province):]
    city = m[0] if (m := _CITY.match(rest)) else None
    rest = rest[len(city or ""):]
    district = m[0] if (m := _DISTRICT.match(rest)) and len(m[0]) < len(rest) else None
    return _parts(province, city, district, rest[len(district or ""):], postal_code)


def _parts(province, city, district, street, postal_code) -> AddressParts:
    standard = normalize_province(province).name
    if city is None and standard in _MUNICIPALITIES:
        city = standard  # 上海 上海市 ... may leave out the city: it is the province
    return AddressParts(province, city, district, street or None, postal_code)


def _is_province(token: str) -> bool:
    return normalize_province(token).recognized or token.endswith(_PROVINCE_SUFFIXES)


def _leading_province(text: str) -> str | None:
    # Two characters at least: one-letter abbreviations (吉, 宁, 新) start street names too.
    for length in range(min(len(text) - 1, 8), 1, -1):
        if normalize_province(text[:length]).recognized:
            return text[:length]
    return None


# ---- payload -> Order ------------------------------------------------------------------


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order of one grouped payload, or MappingError naming every bad row."""
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise MappingError(["payload has no rows"])
    reasons: list[str] = []
    first = {name: _first(rows, name) for name in ORDER_FIELDS}
    for name in CONSISTENT_FIELDS:
        _check_consistent(rows, name, reasons)
    if not first["order_id"]:
        reasons.append("no row has an order id")
    status = _status(rows, payload.get("source"), reasons)
    updated_at = _time(payload.get("updated_at"), "updated_at", "the payload", reasons)
    times = {name: _time(first[name], name, f"row {_row_of(rows, name)}", reasons)
             for name in ("created_at", "paid_at")}
    lines = [_line(row, reasons) for row in rows]
    shipping_fee = _amount(first["shipping_fee"], "shipping_fee", rows, reasons) or Decimal("0")
    total = _amount(first["total_amount"], "total_amount", rows, reasons)
    if not first["currency"]:
        reasons.append(f"no currency: map a currency column or set defaults.currency of "
                       f"source {payload.get('source')!r}")
    if reasons:
        raise MappingError(reasons)
    if total is None:
        total = sum((line.unit_price * line.quantity for line in lines), Decimal("0")) + shipping_fee
    created_at = times["created_at"] or times["paid_at"] or updated_at
    return Order(
        platform=PLATFORM, shop_code=shop_code, platform_order_id=str(first["order_id"]),
        platform_status=str(_first(rows, "platform_status") or status),
        status=status,  # type: ignore[arg-type]
        created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency=str(first["currency"]), total_amount=total, shipping_fee=shipping_fee,
        receiver=Receiver(
            name=first["receiver_name"], phone=first["phone"], province=first["province"],
            city=first["city"], district=first["district"], address=first["address"],
            postal_code=first["postal_code"], country_code=str(first["country"] or "CN"),
        ),
        lines=lines, paid_at=times["paid_at"], buyer_ref=first["buyer"],
        buyer_note=str(first["note"] or ""),
    )


def _first(rows: list[dict], name: str):
    return next((row[name] for row in rows if row.get(name) not in (None, "")), None)


def _row_of(rows: list[dict], name: str):
    return next((row.get("row") for row in rows if row.get(name) not in (None, "")), "?")


def _check_consistent(rows: list[dict], name: str, reasons: list[str]) -> None:
    seen: dict[object, object] = {}
    for row in rows:
        value = row.get(name)
        if value not in (None, ""):
            seen.setdefault(value, row.get("row"))
    if len(seen) > 1:
        # Row numbers only: the values may be a buyer's phone or address.
        numbers = " and ".join(str(n) for n in list(seen.values())[:2])
        reasons.append(f"rows {numbers} of one order disagree on {name}")


def _status(rows: list[dict], source: object, reasons: list[str]) -> OrderStatus | None:
    """The order's status; every row whose status word is unknown is named."""
    found = None
    for row in rows:
        value, word, number = row.get("status"), row.get("platform_status"), row.get("row")
        if value in (None, ""):
            reasons.append(
                f"row {number}: status {word!r} is unknown to source {source!r}; add it under "
                "its status_values" if word else
                f"row {number}: no status, and source {source!r} has no defaults.status")
        elif value not in _INTERNAL_STATUSES:
            reasons.append(f"row {number}: status {value!r} is not an order status")
        elif found is None:
            found = OrderStatus(value)
    return found


_INTERNAL_STATUSES = frozenset(s.value for s in OrderStatus)


def _time(value: object, name: str, where: str, reasons: list[str]) -> datetime | None:
    if value in (None, ""):
        if name == "updated_at":
            reasons.append(f"{where} has no {name}")
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        reasons.append(f"{where}: {name} {value!r} is not an ISO time with an offset")
        return None
    return moment


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _amount(value: object, name: str, rows: list[dict], reasons: list[str]) -> Decimal | None:
    if value in (None, ""):
        return None
    amount = _decimal(value)
    if amount is None or amount < 0:
        reasons.append(f"row {_row_of(rows, name)}: {name} {value!r} is not an amount")
    return amount


def _line(row: dict, reasons: list[str]) -> OrderLine:
    number, quantity, price = row.get("row"), row.get("quantity"), _decimal(row.get("unit_price"))
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        reasons.append(f"row {number}: quantity {quantity!r} is not a positive whole number")
    if price is None or price < 0:
        reasons.append(f"row {number}: unit_price {row.get('unit_price')!r} is not an amount")
    sku = row.get("sku")
    return OrderLine(
        sku=str(sku).strip() or None if sku not in (None, "") else None,
        quantity=quantity if isinstance(quantity, int) else 0,
        unit_price=price if price is not None else Decimal("0"),
        title=str(row.get("title") or ""), platform_line_id=str(row.get("line_id") or ""),
    )
