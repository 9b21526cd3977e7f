"""The clean step: a mapped order with its receiver normalised, plus the facts that the
quality suite checks.

Cleaning never invents data. A phone that is not a phone stays unparsed and is reported
as invalid; a masked value stays masked. The suite in `expectations/orders.json` then
decides which facts block an order; this module only states them, one flat record per
order, so the suite can run on a whole batch at once.

Facts that need the time (an update time in the future) take `now` from the caller; facts
that need the whole batch (two different payloads claiming the same version of an order)
come from `batch_facts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
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

# A platform's clock and ours drift a little; an update time further ahead is a bad payload.
CLOCK_SKEW = timedelta(minutes=5)
# Amounts are rounded per line by some platforms and per order by others.
AMOUNT_TOLERANCE = Decimal("0.01")

# Postcode forms by country. Countries not listed are not checked: a wrong rule there
# would quarantine good orders, a missing one only lets a typo through to the carrier.
POSTCODE_FORMS: dict[str, re.Pattern[str]] = {
    country: re.compile(pattern) for country, pattern in {
        "CN": r"\d{6}",
        "TH": r"\d{5}", "MY": r"\d{5}", "ID": r"\d{5}", "VN": r"\d{6}", "PH": r"\d{4}",
        "TW": r"\d{3}(?:\d{2,3})?", "JP": r"\d{3}-?\d{4}", "DE": r"\d{5}",
        "US": r"\d{5}(?:-\d{4})?", "BR": r"\d{5}-?\d{3}",
        "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}",
    }.items()
}


@dataclass
class CleanedOrder:
    order: Order
    facts: dict[str, Any]


def clean_order(order: Order, now: datetime | None = None) -> CleanedOrder:
    """The cleaned order and its facts; without `now` no time is judged to be in the future."""
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
    return CleanedOrder(cleaned, _facts(cleaned, phone, province, currency_ok, now))


def version_key(order: Order) -> str:
    """One version of one order: its global key and the platform's update time."""
    platform, shop, order_id = order.global_key
    return f"{platform}|{shop}|{order_id}|{order.updated_at.isoformat()}"


def batch_facts(cleaned: list[CleanedOrder], payloads: list[Any]) -> list[dict[str, Any]]:
    """Each order's facts plus `version_key`, the column the suite requires unique.

    Two versions of one order in a batch are normal (it changed while we paged) and are
    merged when stored. A payload repeated verbatim is normal too (platforms serve an
    order on two pages); its version key gets a suffix so it is not taken for a
    conflict. What is left is two different payloads claiming the same version: which
    one is true cannot be told, so both wait for a person.
    """
    first_payload: dict[str, Any] = {}
    records = []
    for row, (item, payload) in enumerate(zip(cleaned, payloads)):
        key = version_key(item.order)
        if key in first_payload and first_payload[key] == payload:
            key = f"{key}|repeat {row}"
        first_payload.setdefault(key, payload)
        records.append({**item.facts, "version_key": key})
    return records


def _facts(order: Order, phone, province, currency_ok: bool, now: datetime | None) -> dict[str, Any]:
    ships = order.status in NEEDS_SHIPPING
    return {
        "platform_order_id": order.platform_order_id,
        "status": order.status.value if isinstance(order.status, OrderStatus) else str(order.status),
        "timeline_state": _timeline_state(order, now),
        "total_over_lines": float(_total_over_lines(order)),
        "postcode_state": _postcode_state(order.receiver) if ships else "not_needed",
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


def _total_over_lines(order: Order) -> Decimal:
    """How far the total is above its lines plus shipping, less the rounding tolerance.

    Discounts and vouchers lower a total below its lines (the mappers fold them into the
    total, and the order keeps no discount of its own), so only a total above them is
    wrong: money the buyer was charged for nothing the order lists.
    """
    lines = sum((line.unit_price * line.quantity for line in order.lines), Decimal("0"))
    return max(order.total_amount - lines - order.shipping_fee - AMOUNT_TOLERANCE, Decimal("0"))


def _timeline_state(order: Order, now: datetime | None) -> str:
    created, paid, updated = order.created_at, order.paid_at, order.updated_at
    if paid is not None and paid < created:
        return "paid_before_created"
    if updated < created:
        return "updated_before_created"
    if paid is not None and updated < paid:
        return "updated_before_paid"
    if now is not None and max(created, updated, paid or created) > now + CLOCK_SKEW:
        return "in_future"
    return "in_order"


def _postcode_state(receiver) -> str:
    code = (receiver.postal_code or "").strip().upper()
    if "*" in code or (receiver.masked and not code):
        return "masked"
    if not code:
        return "absent"  # most Chinese platforms send none; carriers do not need it
    form = POSTCODE_FORMS.get((receiver.country_code or "CN").upper())
    if form is None:
        return "not_checked"
    return "valid" if form.fullmatch(code) else "malformed"
