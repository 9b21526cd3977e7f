"""Reading one spreadsheet or till export into the orders and unreadable rows it holds.

Cells become canonical, typed values (see `connectors.spreadsheet_mapping`): times as UTC
ISO strings in the source's time zone, amounts as decimal strings with currency marks and
thousands separators removed, quantities as integers. Nothing is guessed: "两件" is not a
quantity and "1.23457E+17" is not an order id any more, so such a row is returned as an
unreadable `RawOrder` naming the file, the sheet row (as Excel numbers it) and the reason.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.base import RawOrder
from connectors.spreadsheet_mapping import (
    AMOUNT_FIELDS,
    REQUIRED_FIELDS,
    TIME_FIELDS,
    SourceMapping,
    split_address,
    status_for,
    text_key,
)

READABLE_SUFFIXES = frozenset({".csv", ".xlsx", ".xlsm"})
# Spreadsheets we cannot open; parked with a hint rather than passed over in silence.
FOREIGN_SUFFIXES = frozenset({".xls", ".et", ".ods", ".numbers"})
# A title line ("门店销售流水 2024-03-01") may sit above the header; look this far down.
HEADER_SEARCH_ROWS = 10
# Excel keeps 15 significant digits: a longer id typed as a number has lost its tail.
EXACT_DIGITS = 15


class UnreadableFile(Exception):
    """A file that is not a spreadsheet we can open; the message says why."""


class UnreadableCell(ValueError):
    """A cell whose value cannot be what its column says; the message says why."""


def read_export(path: Path, source: SourceMapping, modified_at: datetime) -> list[RawOrder]:
    """The orders of one file, and an unreadable RawOrder for every row that is not one."""
    context = {"source": source.name, "file": path.name,
               "file_modified_at": modified_at.isoformat()}
    try:
        records = _sheet_rows(path, source)
    except UnreadableFile as error:
        return [RawOrder(None, None, {**context, "row": None, "raw": {}},
                         unreadable_reason=f"{path.name}: {error}")]
    header_at = _header_row(records, source)
    if header_at is None:
        return []
    _, header = records[header_at]
    columns, missing = _resolve_columns(header, source)
    labels = [_label(cell, i) for i, cell in enumerate(header)]
    raws: list[RawOrder] = []
    readable: dict[str, list[tuple[int, dict, dict]]] = {}
    held: dict[str, int] = {}
    for number, cells in records[header_at + 1:]:
        raw = {label: _json_safe(cell) for label, cell in zip(labels, cells) if not _blank(cell)}
        if missing:
            raws.append(_unreadable(context, number, raw, path, missing))
            continue
        values, problems = read_row(cells, columns, source)
        order_id = values.get("order_id")
        if problems:
            raws.append(_unreadable(context, number, raw, path, problems, order_id))
            if order_id:
                held.setdefault(order_id, number)
        else:
            readable.setdefault(order_id, []).append((number, raw, values))
    for order_id, rows in readable.items():
        if order_id in held:
            why = [f"held back with row {held[order_id]} of order {order_id}, which cannot be read"]
            raws.extend(_unreadable(context, n, raw, path, why, order_id) for n, raw, _ in rows)
        else:
            raws.append(_order(context, order_id, rows, source, modified_at))
    return raws


def _order(context: dict, order_id: str, rows: list, source: SourceMapping,
           modified_at: datetime) -> RawOrder:
    stamps = [values["updated_at"] for _, _, values in rows if values.get("updated_at")]
    updated_at = max(datetime.fromisoformat(s) for s in stamps) if stamps else modified_at
    payload = {"source": source.name, "file": context["file"], "updated_at": updated_at.isoformat(),
               "rows": [{"row": number, **values} for number, _, values in rows]}
    return RawOrder(order_id, updated_at, payload)


def _unreadable(context: dict, number: int, raw: dict, path: Path, problems: list[str],
                order_id: str | None = None) -> RawOrder:
    # The update time stays None, so the ingest task parks it; the id, when known, lets
    # an operator find the order's other rows.
    return RawOrder(order_id, None, {**context, "row": number, "raw": raw},
                    unreadable_reason=f"{path.name} row {number}: " + "; ".join(problems))


def _sheet_rows(path: Path, source: SourceMapping) -> list[tuple[int, list]]:
    """(sheet row number, cells) of every row that is not blank."""
    suffix = path.suffix.lower()
    if suffix in FOREIGN_SUFFIXES:
        raise UnreadableFile(f"{suffix} files cannot be read; save it as .xlsx or .csv")
    try:
        rows = _xlsx_rows(path, source) if suffix != ".csv" else _csv_rows(path, source)
    except OSError as error:
        raise UnreadableFile(f"cannot be opened ({error.strerror})") from None
    return [(n, cells) for n, cells in enumerate(rows, start=1) if not all(map(_blank, cells))]


def _csv_rows(path: Path, source: SourceMapping) -> list[list]:
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise UnreadableFile("is not a CSV file (binary content)")
    for encoding in source.encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UnreadableFile(f"is not text in any of {', '.join(source.encodings)}")
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=source.delimiter))
    except csv.Error as error:
        raise UnreadableFile(f"is not a readable CSV file ({error})") from None


def _xlsx_rows(path: Path, source: SourceMapping) -> list[list]:
    import openpyxl  # about 0.3 s to import; only folders with workbooks pay it

    try:
        # Not read-only: merged cells (an order id merged over its item rows) need the map.
        book = openpyxl.load_workbook(path, data_only=True)
    except OSError:
        raise
    except Exception as error:  # a damaged workbook fails in zip, XML or openpyxl's own ways
        raise UnreadableFile(f"is not an .xlsx workbook ({type(error).__name__})") from None
    if source.sheet is not None and source.sheet not in book.sheetnames:
        raise UnreadableFile(f"has no sheet {source.sheet!r} (it has {', '.join(book.sheetnames)})")
    sheet = book[source.sheet] if source.sheet else book.worksheets[0]
    for merged in list(sheet.merged_cells.ranges):
        top_left = sheet.cell(merged.min_row, merged.min_col).value
        sheet.unmerge_cells(str(merged))
        for row in sheet.iter_rows(min_row=merged.min_row, max_row=merged.max_row,
                                   min_col=merged.min_col, max_col=merged.max_col):
            for cell in row:
                cell.value = top_left
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _header_row(records: list[tuple[int, list]], source: SourceMapping) -> int | None:
    if not records:
        return None
    wanted = {text_key(h) for h in source.columns["order_id"]}
    for index, (_, cells) in enumerate(records[:HEADER_SEARCH_ROWS]):
        if any(not _blank(cell) and text_key(cell) in wanted for cell in cells):
            return index
    return 0  # no order id header anywhere: every row will say so


def _resolve_columns(header: list, source: SourceMapping) -> tuple[dict[str, int], list[str]]:
    """Canonical field -> column index (first spelling the file has), and what is missing."""
    index = {}
    for position, cell in enumerate(header):
        if not _blank(cell):
            index.setdefault(text_key(cell), position)
    columns, missing = {}, []
    for name, spellings in source.columns.items():
        found = next((index[text_key(s)] for s in spellings if text_key(s) in index), None)
        if found is not None:
            columns[name] = found
        elif name in REQUIRED_FIELDS:
            missing.append(f"the file has no {name} column ({' / '.join(spellings)})")
    return columns, missing


# ---- reading one row --------------------------------------------------------------------


def read_row(cells: list, columns: dict[str, int], source: SourceMapping) -> tuple[dict, list[str]]:
    """The canonical, typed values of one row, and every reason it cannot be read."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, position in columns.items():
        cell = cells[position] if position < len(cells) else None
        if _blank(cell):
            continue
        try:
            values[name] = _read_cell(name, cell, source)
        except UnreadableCell as error:
            problems.append(str(error))
    for name in REQUIRED_FIELDS:
        if name not in values and not any(p.startswith(_FIELD_WORDS[name]) for p in problems):
            problems.insert(0, f"{_FIELD_WORDS[name]} is empty")
    _apply_status(values, source)
    for name in ("currency", "country"):
        if name not in values and name in source.defaults:
            values[name] = source.defaults[name]
    if source.receiver_address_split and values.get("address") and not values.get("province"):
        _split_address_into(values)
    return values, problems


_FIELD_WORDS = {"order_id": "order id", "quantity": "quantity", "unit_price": "unit_price"}


def _read_cell(name: str, cell: object, source: SourceMapping) -> object:
    if name == "order_id":
        return _order_id(cell)
    if name == "quantity":
        return _quantity(cell)
    if name in AMOUNT_FIELDS:
        return _amount(name, cell)
    if name in TIME_FIELDS:
        return _time(name, cell, source)
    return _text(cell)


def _apply_status(values: dict, source: SourceMapping) -> None:
    word = values.pop("status", None)
    if word is not None:
        values["platform_status"] = word
        status = status_for(word, source.status_values)
    else:
        default = source.defaults.get("status")
        status = status_for(default, source.status_values) if default else None
    if status is not None:
        values["status"] = status.value


def _split_address_into(values: dict) -> None:
    parts = split_address(values["address"])
    for name in ("province", "city", "district", "postal_code"):
        if getattr(parts, name) and not values.get(name):
            values[name] = getattr(parts, name)
    values["address"] = parts.street or values["address"]


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _label(cell: object, position: int) -> str:
    return str(cell).strip() if not _blank(cell) else f"column {position + 1}"


def _json_safe(cell: object) -> object:
    if isinstance(cell, (datetime, date, time)):
        return cell.isoformat()
    return cell if isinstance(cell, (str, int, float, bool)) or cell is None else str(cell)


def _text(cell: object) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # a phone typed into a number cell comes back as 1.38e10
    value = _json_safe(cell)
    return value.strip() if isinstance(value, str) else str(value)


_EXCEL_GUARD = re.compile(r'^="(.*)"$')  # ="100123": how exports stop Excel eating digits
_SCIENTIFIC = re.compile(r"^[0-9]+(?:\.[0-9]+)?[eE]\+?[0-9]+$")
_WHOLE = re.compile(r"^[+-]?[0-9]+(?:\.0*)?$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_THOUSANDS = re.compile(r"^[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")
_MONEY_MARKS = re.compile(r"^(?:[¥$€£]|RMB|CNY|USD)\s*|\s*元$", re.IGNORECASE)


def _order_id(cell: object) -> str:
    if isinstance(cell, bool):
        raise UnreadableCell(f"order id {cell!r} is not an id")
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        if cell.is_integer() and abs(cell) < 10**EXACT_DIGITS:
            return str(int(cell))
        raise UnreadableCell(f"order id {cell!r} was stored as a number and lost digits")
    text = unicodedata.normalize("NFKC", str(cell)).strip().lstrip("'\t")
    text = guarded[1].strip() if (guarded := _EXCEL_GUARD.match(text)) else text
    if not text:
        raise UnreadableCell("order id is empty")
    if _SCIENTIFIC.match(text):
        raise UnreadableCell(f"order id {text!r} was shortened by Excel to scientific notation")
    return text


def _quantity(cell: object) -> int:
    if isinstance(cell, int) and not isinstance(cell, bool):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    text = unicodedata.normalize("NFKC", str(cell)).strip()
    if isinstance(cell, str) and _WHOLE.match(text):
        return int(text.split(".")[0])
    raise UnreadableCell(f"quantity {cell!r} is not a whole number")


def _amount(name: str, cell: object) -> str:
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return str(Decimal(str(cell)))
    text = _MONEY_MARKS.sub("", unicodedata.normalize("NFKC", str(cell)).strip())
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    if not _NUMBER.match(text):
        raise UnreadableCell(f"{name} {cell!r} is not a number")
    return str(Decimal(text))


def _time(name: str, cell: object, source: SourceMapping) -> str:
    moment = None
    if isinstance(cell, datetime):
        moment = cell
    elif isinstance(cell, date):
        moment = datetime.combine(cell, time())
    elif isinstance(cell, (int, float)) and not isinstance(cell, bool) and 20_000 < cell < 80_000:
        # A date cell that lost its number format shows Excel's day count.
        from openpyxl.utils.datetime import from_excel

        moment = from_excel(cell)
    elif isinstance(cell, str):
        moment = _parse_time_text(unicodedata.normalize("NFKC", cell).strip(), source.time_formats)
    if moment is None:
        raise UnreadableCell(f"{name} {cell!r} is not a time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=source.timezone)
    return moment.astimezone(timezone.utc).isoformat()


def _parse_time_text(text: str, formats: tuple[str, ...]) -> datetime | None:
    for pattern in formats:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text)  # '2024-03-01T10:00:00+08:00', '...Z'
    except ValueError:
        return None
