"""The clean step: a mapped order with its receiver normalised, plus the facts that the
quality suite checks.

Cleaning never invents data. A phone that is not a phone stays unparsed and is reported
as invalid; a masked value stays masked. The suite in `expectations/orders.json` then
decides which facts block an order; this module only states them, one flat record per
order, so the suite can run on a whole batch at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from oms.domain.normalize import (
    normalize_currency,
    normalize_phone,
    normalize_province,
    normalize_text,
)
from oms.domain.order import Order, OrderStatus

# Orders in these states still have to leave a warehouse, so their address must be usable.
NEEDS_SHIPPING = frozenset({OrderStatus.PAID, OrderStatus.BACKORDERED, OrderStatus.ALLOCATED})


@dataclass
class CleanedOrder:
    order: Order
    facts: dict[str, Any]


def clean_order(order: Order) -> CleanedOrder:
    receiver = order.receiver
    phone = normalize_phone(receiver.phone)
    province = normalize_province(receiver.province)
    cleaned_receiver = replace(
        receiver,
        name=normalize_text(receiver.name),
        phone=phone.e164 if phone.e164 else normalize_text(receiver.phone),
        province=province.name if province.recognized else normalize_text(receiver.province),
        city=normalize_text(receiver.city),
        district=normalize_text(receiver.district),
        address=normalize_text(receiver.address),
        masked=receiver.masked or phone.masked or province.masked,
    )
    currency_ok = True
    try:
        currency = normalize_currency(order.currency)
    except ValueError:
        currency, currency_ok = order.currency, False
    cleaned = replace(order, receiver=cleaned_receiver, currency=currency)
    return CleanedOrder(cleaned, _facts(cleaned, phone, province, currency_ok))


def _facts(order: Order, phone, province, currency_ok: bool) -> dict[str, Any]:
    ships = order.status in NEEDS_SHIPPING
    return {
        "platform_order_id": order.platform_order_id,
        "currency": order.currency if currency_ok else None,
        "total_amount": float(order.total_amount),
        "line_count": len(order.lines),
        "min_quantity": min((line.quantity for line in order.lines), default=0),
        "lines_without_sku": sum(1 for line in order.lines if not line.sku),
        "phone_state": _phone_state(phone) if ships else "not_needed",
        "province_state": _province_state(province) if ships else "not_needed",
        "address_state": _address_state(order) if ships else "not_needed",
    }


def _phone_state(phone) -> str:
    if phone.masked:
        return "masked"
    if phone.valid:
        return "valid"
    return "missing" if phone.reason == "missing" else "invalid"


def _province_state(province) -> str:
    if province.masked:
        return "masked"
    if province.recognized:
        return "recognized"
    return "missing" if not province.raw else "unknown"


def _address_state(order: Order) -> str:
    receiver = order.receiver
    if receiver.masked and receiver.encrypted.get("address"):
        return "encrypted"
    return "present" if receiver.address and receiver.city else "missing"
