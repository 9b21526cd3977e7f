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
    country = (receiver.country_code or "CN").upper()
    # A number written without a country code belongs to the receiver's country.
    phone = normalize_phone(receiver.phone, region=country)
    # Provinces are checked against China's list only; abroad the region is kept as given.
    province = normalize_province(receiver.province) if country == "CN" else None
    cleaned_receiver = replace(
        receiver,
        country_code=country,
        name=normalize_text(receiver.name),
        phone=phone.e164 if phone.e164 else normalize_text(receiver.phone),
        province=province.name if province and province.recognized else normalize_text(receiver.province),
        city=normalize_text(receiver.city),
        district=normalize_text(receiver.district),
        address=normalize_text(receiver.address),
        masked=receiver.masked or phone.masked or bool(province and province.masked),
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
        "phone_state": _phone_state(phone, _withheld(order.receiver)) if ships else "not_needed",
        "province_state": _province_state(province) if ships else "not_needed",
        "address_state": _address_state(order) if ships else "not_needed",
    }


def _withheld(receiver) -> bool:
    """The platform sent no receiver data at all (Amazon without a restricted-data token),
    as opposed to masks or ciphertexts of what the buyer typed."""
    return receiver.masked and not receiver.encrypted


def _phone_state(phone, withheld: bool) -> str:
    if phone.masked:
        return "masked"
    if withheld and phone.reason == "missing":
        return "masked"  # the platform withholds it; it is opened when the label is printed
    if phone.valid:
        return "valid"
    return "missing" if phone.reason == "missing" else "invalid"


def _province_state(province) -> str:
    if province is None:
        return "abroad"
    if province.masked:
        return "masked"
    if province.recognized:
        return "recognized"
    return "missing" if not province.raw else "unknown"


def _address_state(order: Order) -> str:
    receiver = order.receiver
    if receiver.masked and receiver.encrypted:
        # Masks travel beside ciphertexts; without the address's own (or Taobao's oaid,
        # which stands for the whole receiver) there is nothing a label could be made from.
        opened_by = receiver.encrypted.get("address") or receiver.encrypted.get("oaid")
        return "encrypted" if opened_by else "missing"
    if receiver.address and receiver.city:
        return "present"
    # Withheld by the platform until asked for with extra rights (Amazon's restricted-data
    # token): the order is fine, the address is fetched when the parcel is labelled.
    return "withheld" if receiver.masked else "missing"
