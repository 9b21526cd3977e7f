"""Shopee after-sales: return and refund requests read with `returns/get_return_list`,
accepted with `returns/confirm` and disputed with `returns/dispute`.

The mapping is pure; the wire functions take the `ShopeeConnector` and use its signed
`_call` (pacing, signing and error translation as for orders). Facts and confidence are in
docs/after-sales-apis.md ("Shopee"). Shopee states the currency of each return (shops sell
in their market's currency) and the seller's deadline (`due_date`), and names the buyer
only by a nickname: it is hashed here and never kept.

Shopee has no "refuse": the seller disputes, and Shopee judges. A dispute names a reason
id from `get_return_dispute_reason` and the seller's contact email; most reasons also
want proof images, which a decision here does not carry, so Shopee refuses those disputes
and the seller files them in Seller Centre.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from connectors.after_sales import buyer_ref, full_amount_only, once_per_window, refusal_reason
from connectors.base import (
    AfterSalesDecision,
    AfterSalesLine,
    AfterSalesRequest,
    PushResult,
    RawAfterSales,
)
from connectors.shopee import API, window_slices
from connectors.shopee_mapping import PLATFORM, parse_unix_seconds
from oms.domain.errors import MappingError, Rejected, Unavailable

if TYPE_CHECKING:
    from connectors.shopee import ShopeeConnector

LIST, CONFIRM, DISPUTE = (f"{API}/returns/get_return_list", f"{API}/returns/confirm",
                          f"{API}/returns/dispute")  # [H] GET, POST, POST
MAX_WINDOW = timedelta(days=15)  # [H] update_time_from/to at most 15 days apart
PAGE_SIZE = 100  # [H] page_size ≤ 100 (default 40)
# [H] return_solution: 0 return and refund, 1 refund only. No exchange in this API.
KINDS = {0: "return_and_refund", 1: "refund_only"}
# ReturnStatus -> ours. REQUESTED, PROCESSING, ACCEPTED, COMPLETED, CANCELLED [M, SDK
# docs]; JUDGING, SELLER_DISPUTE, REFUND_PAID, CLOSED [L]. PROCESSING is taken as still
# the seller's to answer [L].
STATUS_TABLE = {
    "REQUESTED": "requested", "PROCESSING": "requested", "ACCEPTED": "agreed",
    "COMPLETED": "refunded", "REFUND_PAID": "refunded", "CANCELLED": "closed",
    "CLOSED": "closed", "JUDGING": "refused", "SELLER_DISPUTE": "refused",
}
# ReturnReason -> ours [M: PHYSICAL_DMG is in the schema's sample; the rest are the
# values of the data definition as we know them, L].
REASON_CODES = {
    "PHYSICAL_DMG": "damaged", "ITEM_DAMAGED": "damaged", "NOT_RECEIPT": "not_received",
    "WRONG_ITEM": "wrong_item", "ITEM_WRONGDAMAGED": "wrong_item", "ITEM_MISSING": "not_received",
    "DIFF_DESC": "not_as_described", "FUNCTIONAL_DMG": "quality", "DEFECTIVE": "quality",
    "CHANGE_MIND": "no_longer_wanted", "MUTUAL_AGREE": "no_longer_wanted",
}
UNRECOGNISED_REASON = "unrecognised"


# ---- mapping (pure) ---------------------------------------------------------------------


def raw_after_sales(entry: Any) -> RawAfterSales:
    payload = entry if isinstance(entry, dict) else {"unreadable": entry}
    request_id = payload.get("return_sn")
    return RawAfterSales(
        platform_request_id=str(request_id) if request_id not in (None, "") else None,
        platform_updated_at=parse_unix_seconds(payload.get("update_time")), payload=payload)


def _money(value: Any, name: str, reasons: list[str]) -> Decimal:
    if value is None:
        reasons.append(f"{name}: missing")
        return Decimal(0)
    try:
        amount = Decimal(str(value))  # str(): a float's shortest form, not its binary tail
    except InvalidOperation:
        amount = Decimal(-1)
    if isinstance(value, bool) or amount < 0:
        reasons.append(f"{name}: not money: {value!r}")
        return Decimal(0)
    return amount


def _time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = parse_unix_seconds(payload.get(name))
    if moment is None:
        reasons.append(f"{name}: not a time: {payload.get(name)!r}")
    return moment or datetime.min


def _lines(items: Any, reasons: list[str]) -> tuple[AfterSalesLine, ...]:
    if not isinstance(items, list) or not items:
        reasons.append("item: no item")
        return ()
    lines = []
    for position, item in enumerate(items):
        item = item if isinstance(item, dict) else {}
        quantity = item.get("amount")  # Shopee's "amount" of an item is its quantity [H]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            reasons.append(f"item[{position}].amount: not a quantity: {quantity!r}")
            quantity = 0
        if not item.get("item_id"):
            reasons.append(f"item[{position}].item_id: missing")
        price = _money(item.get("item_price"), f"item[{position}].item_price", reasons)
        sku = item.get("variation_sku") or item.get("item_sku") or None
        # the order connector's line id: "{item_id}:{model_id}"
        line_id = f"{item.get('item_id', '')}:{item.get('model_id', 0)}"
        lines.append(AfterSalesLine(line_id, sku, quantity, price * quantity))
    return tuple(lines)


def to_after_sales(raw: RawAfterSales, shop_code: str) -> AfterSalesRequest:
    """A Shopee return as our request; every wrong field is named together."""
    payload, reasons = raw.payload, []
    request_id = str(payload.get("return_sn") or "")
    if not request_id:
        reasons.append("return_sn: missing")
    order_sn = str(payload.get("order_sn") or "")
    if not order_sn:
        reasons.append("order_sn: missing")
    platform_status = str(payload.get("status") or "")
    if platform_status not in STATUS_TABLE:
        reasons.append(f"status: unknown return status {platform_status!r}")
    solution = payload.get("return_solution")
    if solution not in KINDS:
        reasons.append(f"return_solution: not return-and-refund or refund-only: {solution!r}")
    amount = _money(payload.get("refund_amount"), "refund_amount", reasons)
    currency = str(payload.get("currency") or "")
    if len(currency) != 3:
        reasons.append(f"currency: not a currency code: {payload.get('currency')!r}")
    created, updated = _time(payload, "create_time", reasons), _time(payload, "update_time", reasons)
    lines = _lines(payload.get("item"), reasons)
    if reasons:
        raise MappingError([f"return {request_id or '?'}: {reason}" for reason in reasons])
    reason = str(payload.get("reason") or "")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    images = payload.get("image") if isinstance(payload.get("image"), list) else []
    return AfterSalesRequest(
        platform=PLATFORM, shop_code=shop_code, platform_request_id=request_id,
        platform_order_id=order_sn, kind=KINDS[solution], status=STATUS_TABLE[platform_status],
        platform_status=platform_status, amount=amount, currency=currency,
        reason_code=REASON_CODES.get(reason, UNRECOGNISED_REASON),
        reason_text=str(payload.get("text_reason") or reason), lines=lines,
        created_at=created, updated_at=updated,
        respond_by=parse_unix_seconds(payload.get("due_date")),  # "the last time seller deal" [H]
        buyer_ref=buyer_ref(PLATFORM, user.get("username")),  # the nickname, hashed only
        evidence_urls=tuple(str(url) for url in images),
        return_tracking=str(payload.get("tracking_number") or "") or None,
    )


# ---- the wire (through the connector) ---------------------------------------------------


def fetch_after_sales(connector: ShopeeConnector, start: datetime, end: datetime
                      ) -> Iterator[list[RawAfterSales]]:
    """Returns updated in [start, end), in windows of at most 15 days, each once.

    Windows share their end seconds (whether Shopee includes update_time_to is not
    documented), so returns updated at or after a window's end are left to the next one.
    """

    def pages() -> Iterator[list[RawAfterSales]]:
        for time_from, time_to in window_slices(start, end, MAX_WINDOW):
            slice_end = min(end, datetime.fromtimestamp(time_to, start.tzinfo))
            page_no, more = 0, True
            while more:
                body = connector._call("GET", LIST, {
                    "update_time_from": time_from, "update_time_to": time_to,
                    "page_no": page_no, "page_size": PAGE_SIZE})
                inner = body.get("response") if isinstance(body.get("response"), dict) else {}
                returns, more = inner.get("return"), inner.get("more")
                if not isinstance(returns, list) or not isinstance(more, bool):
                    raise Unavailable(f"{LIST} answered without return or more",
                                      platform=PLATFORM, body=body)
                yield [raw for raw in map(raw_after_sales, returns)
                       if raw.platform_updated_at is None or raw.platform_updated_at < slice_end]
                page_no += 1

    return once_per_window(pages())


def answer_after_sales(connector: ShopeeConnector, request: AfterSalesRequest,
                       decision: AfterSalesDecision) -> PushResult:
    if decision.agree:
        full_amount_only(request, decision)  # confirm takes no amount [H]: Shopee refunds its own
        sent = {"return_sn": request.platform_request_id}
        return PushResult(request=sent, response=connector._call("POST", CONFIRM, body=sent))
    note = refusal_reason(request, decision, needs_code=True)
    if not str(decision.refuse_reason_code).isdigit():
        raise Rejected(f"shopee return {request.platform_request_id}: dispute_reason_id "
                       f"{decision.refuse_reason_code!r} is not a number from "
                       "get_return_dispute_reason", platform=PLATFORM,
                       code="refuse_reason_required")
    email = getattr(connector, "dispute_email", None)
    if not email:
        raise Rejected(f"shopee return {request.platform_request_id}: a dispute needs the "
                       "seller's contact email", platform=PLATFORM, code="dispute_email_required")
    sent = {"return_sn": request.platform_request_id, "email": email,
            "dispute_reason_id": int(decision.refuse_reason_code), "dispute_text_reason": note}
    return PushResult(request=sent, response=connector._call("POST", DISPUTE, body=sent))
