"""Pinduoduo after-sales: reading `pdd.refund.list.increment.get`, agreeing and refusing.

The mapping is pure; the wire functions take the `PinduoduoConnector` and use its signed
`_call` (pacing, signing and error translation as for orders; reference §6, §11.2).
PDD opens one request per SKU of an order; its list states no answer deadline, so the
deadline is the platform's published handling time counted from the request's creation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors import pinduoduo as pdd
from connectors.after_sales import buyer_ref, full_amount_only, once_per_window, refusal_reason
from connectors.base import (
    AfterSalesDecision,
    AfterSalesLine,
    AfterSalesRequest,
    PushResult,
    RawAfterSales,
    second_slices,
)
from connectors.pinduoduo_mapping import parse_china_time
from oms.domain.errors import MappingError, Unavailable

if TYPE_CHECKING:
    from connectors.pinduoduo import PinduoduoConnector

PLATFORM = "pdd"
CURRENCY = "CNY"
LIST = "pdd.refund.list.increment.get"  # [M]
AGREE = "pdd.refund.agree"  # [M]
REFUSE = "pdd.refund.refuse"  # [L]
WINDOW = timedelta(minutes=30)  # [M] start/end_updated_at at most 30 minutes apart
PAGE_SIZE = 100  # [M]
ALL_TYPES, ALL_STATUSES = 1, 1  # [M] type 1 = all; [L] status 1 = all
# The envelope of each answer; the connector's table gets these keys (adding, not changing).
ENVELOPES = {LIST: "refund_increment_get_response", AGREE: "response", REFUSE: "response"}
pdd.RESPONSE_KEYS.update(ENVELOPES)

KINDS = {2: "refund_only", 3: "return_and_refund", 4: "exchange"}  # [M]
# after_sales_status [M, SDK docs] -> ours. 8 (the platform is looking into it) is still
# the seller's to answer as far as we know [L].
STATUS_TABLE = {
    2: "requested", 3: "requested", 14: "requested", 8: "requested",
    4: "agreed", 5: "agreed", 7: "agreed", 15: "agreed", 18: "agreed",
    6: "refused", 9: "closed", 10: "refunded", 11: "closed", 12: "closed", 13: "closed",
    16: "closed", 17: "closed",
}
# The seller's handling time before PDD decides for the buyer [L: PDD's merchant rules
# speak of 48 hours for most requests; the API returns no deadline].
RESPONSE_WINDOW = timedelta(hours=48)
REASON_CODES = {
    "质量问题": "quality", "商品与描述不符": "not_as_described", "发错货": "wrong_item",
    "商品破损/少件": "damaged", "尺码不合适": "size", "不想要了": "no_longer_wanted",
    "未收到货": "not_received", "多拍/拍错/不想要": "no_longer_wanted",
}
UNRECOGNISED_REASON = "unrecognised"


# ---- mapping (pure) ---------------------------------------------------------------------


def raw_after_sales(refund: Any) -> RawAfterSales:
    payload = refund if isinstance(refund, dict) else {"unreadable": refund}
    request_id = payload.get("id")
    return RawAfterSales(
        platform_request_id=str(request_id) if request_id not in (None, "") else None,
        platform_updated_at=parse_china_time(payload.get("updated_time")), payload=payload)


def _whole(payload: dict, name: str, reasons: list[str], low: int = 0) -> int:
    value = payload.get(name)
    if value in (None, ""):
        reasons.append(f"{name}: missing")
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() \
            or int(value) < low:
        reasons.append(f"{name}: not a whole number ≥ {low}: {value!r}")
        return 0
    return int(value)


def _time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = parse_china_time(payload.get(name))
    if moment is None:
        reasons.append(f"{name}: not a time: {payload.get(name)!r}")
    return moment or datetime.min


def to_after_sales(raw: RawAfterSales, shop_code: str) -> AfterSalesRequest:
    """A PDD after-sales record as our request; every wrong field is named together."""
    payload, reasons = raw.payload, []
    request_id = _whole(payload, "id", reasons, low=1)
    order_sn = str(payload.get("order_sn") or "")
    if not order_sn:
        reasons.append("order_sn: missing")
    type_code = _whole(payload, "after_sales_type", reasons)
    status_code = _whole(payload, "after_sales_status", reasons)
    fen = _whole(payload, "refund_amount", reasons)
    quantity = _whole(payload, "goods_number", reasons, low=1)
    created, updated = _time(payload, "created_time", reasons), _time(payload, "updated_time", reasons)
    if type_code and type_code not in KINDS:
        reasons.append(f"after_sales_type: {type_code} is not refund, return or exchange")
    if status_code and status_code not in STATUS_TABLE:
        reasons.append(f"after_sales_status: unknown code {status_code}")
    if reasons:
        raise MappingError([f"after-sales {request_id or '?'}: {reason}" for reason in reasons])
    amount = Decimal(fen) / 100
    reason_text = str(payload.get("after_sale_reason") or "")
    return AfterSalesRequest(
        platform=PLATFORM, shop_code=shop_code, platform_request_id=str(request_id),
        platform_order_id=order_sn, kind=KINDS[type_code], status=STATUS_TABLE[status_code],
        platform_status=str(status_code), amount=amount, currency=CURRENCY,
        reason_code=REASON_CODES.get(reason_text, UNRECOGNISED_REASON), reason_text=reason_text,
        lines=(AfterSalesLine(str(payload.get("sku_id") or ""), str(payload.get("outer_id") or "") or None,
                              quantity, amount),),
        created_at=created, updated_at=updated, respond_by=created + RESPONSE_WINDOW,
        buyer_ref=buyer_ref(PLATFORM, payload.get("buyer_id_hash")),
        return_tracking=payload.get("tracking_number") or None,
    )


# ---- the wire (through the connector) ---------------------------------------------------


def fetch_after_sales(connector: PinduoduoConnector, start: datetime, end: datetime
                      ) -> Iterator[list[RawAfterSales]]:
    """Requests updated in [start, end), in 30-minute slices of whole seconds, each once."""

    def pages() -> Iterator[list[RawAfterSales]]:
        for slice_start, slice_end in second_slices(start, end, WINDOW):
            page, more = 1, True
            while more:
                body = connector._call(LIST, {
                    "start_updated_at": slice_start, "end_updated_at": slice_end,
                    "after_sales_type": ALL_TYPES, "after_sales_status": ALL_STATUSES,
                    "page": page, "page_size": PAGE_SIZE})
                refunds, total = body.get("refund_list"), body.get("total_count")
                if not isinstance(refunds, list) or not isinstance(total, int):
                    raise Unavailable(f"{LIST} answered without refund_list or total_count",
                                      platform=PLATFORM, body=body)
                yield [raw_after_sales(refund) for refund in refunds]
                more = page * PAGE_SIZE < total
                page += 1

    return once_per_window(pages())


def answer_after_sales(connector: PinduoduoConnector, request: AfterSalesRequest,
                       decision: AfterSalesDecision) -> PushResult:
    ids = {"after_sales_id": request.platform_request_id, "order_sn": request.platform_order_id}
    if decision.agree:
        full_amount_only(request, decision)  # PDD refunds what was asked; a lower sum is
        # agreed with the buyer first (not an API parameter we know of [L])
        sent = {**ids, "operate_desc": decision.note}
        return PushResult(request=sent, response=connector._call(AGREE, sent))
    sent = {**ids, "reject_reason": refusal_reason(request, decision)}
    if decision.refuse_reason_code:
        sent["reject_reason_code"] = decision.refuse_reason_code
    return PushResult(request=sent, response=connector._call(REFUSE, sent))
