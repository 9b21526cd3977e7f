"""One flat record per raw payload, for the platform's raw suite (`raw_<platform>.json`).

Each raw suite says in its `record` block where the platform keeps the order's status and
amount; this module reads those paths and states what it found, so the suite's
expectations stay plain column checks. Nothing here parses a platform's format beyond
that: the connector's mapper owns the wire format, and the raw suite only stops payloads
that are clearly not orders before anyone tries to clean them.

A path is a dotted key list; `*` stands for every element of a list ("statuses.*",
"rows.*.status"). A status read from several keys (PDD's three) or from a list is
written as its parts joined by "/" in key order, or by "," for a list's distinct values.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import RawOrder

MISSING = "missing"
# A platform's clock and ours drift a little; beyond this an update time is a bad payload.
CLOCK_SKEW = timedelta(minutes=5)


def raw_records(spec: dict[str, Any], raws: list[RawOrder], now: datetime) -> list[dict[str, Any]]:
    return [raw_record(spec, raw, now) for raw in raws]


def raw_record(spec: dict[str, Any], raw: RawOrder, now: datetime) -> dict[str, Any]:
    payload = raw.payload if isinstance(raw.payload, dict) else {}
    amount_state, amount = _amount(payload, spec.get("amount"))
    return {
        "order_id": raw.platform_order_id,
        "updated_at_state": _update_time_state(raw.platform_updated_at, now),
        "status": _status(payload, spec.get("status")),
        "amount_state": amount_state,
        "amount": amount,
        "line_count": _count(payload, spec.get("lines")),
    }


def _update_time_state(updated_at: datetime | None, now: datetime) -> str:
    if updated_at is None:
        return MISSING
    return "in_future" if updated_at > now + CLOCK_SKEW else "ok"


def _status(payload: dict, paths: str | list[str] | None) -> str | None:
    if paths is None:
        return None
    if isinstance(paths, str):
        values = _values(payload, paths.split("."))
        distinct = sorted({_text(v) for v in values if _text(v)})
        return ",".join(distinct) if distinct else MISSING
    parts = [_values(payload, path.split(".")) for path in paths]
    if any(len(found) != 1 or not _text(found[0]) for found in parts):
        return MISSING
    return "/".join(_text(found[0]) for found in parts)


def _amount(payload: dict, path: str | None) -> tuple[str, float | None]:
    if path is None:
        return "not_checked", None
    found = _values(payload, path.split("."))
    if not found or all(value is None or value == "" for value in found):
        return MISSING, None
    amounts = [_decimal(value) for value in found]
    if any(amount is None for amount in amounts):
        return "unreadable", None
    total = sum(amounts, Decimal("0"))
    return ("negative" if any(a < 0 for a in amounts) else "ok"), float(total)


def _count(payload: dict, path: str | None) -> int | None:
    if path is None:
        return None
    found = _values(payload, path.split("."))
    return len(found[0]) if len(found) == 1 and isinstance(found[0], list) else 0


def _values(node: Any, keys: list[str]) -> list[Any]:
    if not keys:
        return [node]
    key, rest = keys[0], keys[1:]
    if key == "*":
        return [value for item in node for value in _values(item, rest)] if isinstance(node, list) else []
    if isinstance(node, dict) and key in node:
        return _values(node[key], rest)
    return []


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()
