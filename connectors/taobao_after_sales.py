"""Taobao / Tmall refunds: reading `taobao.refunds.receive.get`, answering them.

The mapping (`raw_after_sales`, `to_after_sales`) is pure. `fetch_after_sales` and
`answer_after_sales` take the `TaobaoConnector` and use its signed `_call`, so pacing,
signing and error translation are the order connector's own (reference §5, §11.1).
Taobao opens one refund per sub-order; exchanges live in Tmall's separate exchange API
and are not read here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from connectors.after_sales import buyer_ref, checked_amount, once_per_window, refusal_reason
from connectors.base import AfterSalesDecision, AfterSalesLine, AfterSalesRequest, PushResult, RawAfterSales
from connectors.taobao_mapping import CURRENCY, PLATFORM, parse_china_time
from oms.domain.errors import MappingError, Rejected, Unavailable

if TYPE_CHECKING:
    from connectors.taobao import TaobaoConnector

RECEIVE = "taobao.refunds.receive.get"  # [H]
AGREE = "taobao.rp.refunds.agree"  # [M]
RETURN_AGREE = "taobao.rp.returngoods.agree"  # [M]
REFUSE = "taobao.refund.refuse"  # [M]
REFUND_FIELDS = ("refund_id,tid,oid,title,num,outer_id,sku,total_fee,refund_fee,payment,status,"
                 "order_status,has_good_return,good_status,reason,desc,created,modified,"
                 "refund_version,refund_phase,buyer_open_uid,refund_remind_timeout,"
                 "company_name,sid")
PAGE_SIZE = 100  # [M] the most receive.get serves

# Taobao's refund status [M, SDK field docs] -> ours.
STATUS_TABLE = {
    "WAIT_SELLER_AGREE": "requested",
    "WAIT_BUYER_RETURN_GOODS": "agreed",
    "WAIT_SELLER_CONFIRM_GOODS": "goods_returned",
    "SELLER_REFUSE_BUYER": "refused",
    "CLOSED": "closed",
    "SUCCESS": "refunded",
}
# Taobao's reason is free text the buyer picked from a list; these are its usual texts
# [L]. Anything else is kept as text under "unrecognised", not refused: the approver
# reads it.
REASON_CODES = {
    "质量问题": "quality", "商品与页面描述不符": "not_as_described", "描述不符": "not_as_described",
    "卖家发错货": "wrong_item", "商品破损": "damaged", "尺码不合适": "size",
    "不想要了": "no_longer_wanted", "七天无理由退换货": "no_longer_wanted", "未收到货": "not_received",
}
UNRECOGNISED_REASON = "unrecognised"
AGREE_FAILED = "OP_FAILURE_UE"


# ---- mapping (pure) ---------------------------------------------------------------------


def raw_after_sales(refund: Any) -> RawAfterSales:
    payload = refund if isinstance(refund, dict) else {"unreadable": refund}
    request_id = payload.get("refund_id")
    return RawAfterSales(
        platform_request_id=str(request_id) if request_id not in (None, "") else None,
        platform_updated_at=parse_china_time(payload.get("modified")), payload=payload)


def _text(payload: dict, name: str, reasons: list[str]) -> str:
    value = payload.get(name)
    if value in (None, ""):
        reasons.append(f"{name}: missing")
        return ""
    return str(value)


def _yuan(payload: dict, name: str, reasons: list[str]) -> Decimal:
    value = payload.get(name)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, AttributeError):
        amount = None
    if value in (None, "") or amount is None or not amount.is_finite() or amount < 0:
        reasons.append(f"{name}: {'missing' if value in (None, '') else f'not an amount: {value!r}'}")
        return Decimal("0")
    return amount


def _time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = parse_china_time(payload.get(name))
    if moment is None:
        reasons.append(f"{name}: not a time: {payload.get(name)!r}")
    return moment or datetime.min


def _deadline(payload: dict) -> datetime | None:
    timeout = payload.get("refund_remind_timeout")
    if isinstance(timeout, dict) and timeout.get("exist_timeout") in (True, "true"):
        return parse_china_time(timeout.get("timeout"))
    return None


def to_after_sales(raw: RawAfterSales, shop_code: str) -> AfterSalesRequest:
    """A Taobao refund as our request; every field that is wrong is named together."""
    payload, reasons = raw.payload, []
    request_id = _text(payload, "refund_id", reasons)
    order_id = _text(payload, "tid", reasons)
    line_id = _text(payload, "oid", reasons)
    platform_status = _text(payload, "status", reasons)
    status = STATUS_TABLE.get(platform_status)
    if platform_status and status is None:
        reasons.append(f"status: unknown refund status {platform_status!r}")
    amount = _yuan(payload, "refund_fee", reasons)
    created, updated = _time(payload, "created", reasons), _time(payload, "modified", reasons)
    try:
        quantity = int(payload.get("num"))
    except (TypeError, ValueError):
        quantity = 0
    if quantity < 1:
        reasons.append(f"num: not a quantity: {payload.get('num')!r}")
    if reasons:
        raise MappingError([f"refund {request_id or '?'}: {reason}" for reason in reasons])
    reason_text = str(payload.get("reason") or "")
    good_return = payload.get("has_good_return") in (True, "true")
    return AfterSalesRequest(
        platform=PLATFORM, shop_code=shop_code, platform_request_id=request_id,
        platform_order_id=order_id,
        kind="return_and_refund" if good_return else "refund_only",
        status=status, platform_status=platform_status, amount=amount, currency=CURRENCY,
        reason_code=REASON_CODES.get(reason_text, UNRECOGNISED_REASON), reason_text=reason_text,
        lines=(AfterSalesLine(line_id, str(payload.get("outer_id") or "") or None, quantity, amount),),
        created_at=created, updated_at=updated, respond_by=_deadline(payload),
        buyer_ref=buyer_ref(PLATFORM, payload.get("buyer_open_uid")),
        return_carrier=payload.get("company_name") or None,
        return_tracking=payload.get("sid") or None,
        version=str(payload.get("refund_version") or ""),
    )


def fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


# ---- the wire (through the connector) ---------------------------------------------------


def fetch_after_sales(connector: TaobaoConnector, start: datetime, end: datetime
                      ) -> Iterator[list[RawAfterSales]]:
    """Refunds modified in [start, end), in day slices, each refund once."""
    from connectors.taobao import WIDEST_SLICE, _window, modified_slices

    def pages() -> Iterator[list[RawAfterSales]]:
        for slice_start, slice_end in modified_slices(start, end, WIDEST_SLICE):
            window, page_no, has_next = _window(slice_start, slice_end), 1, True
            while has_next:
                body = connector._call(RECEIVE, {"fields": REFUND_FIELDS, **window,
                                                  "page_no": page_no, "page_size": PAGE_SIZE,
                                                  "use_has_next": True})
                wrapped = body.get("refunds", {"refund": []})
                refunds = wrapped.get("refund") if isinstance(wrapped, dict) else None
                has_next = body.get("has_next")
                if not isinstance(refunds, list) or not isinstance(has_next, bool):
                    raise Unavailable(f"{RECEIVE} answered without refunds or has_next",
                                      platform=PLATFORM, body=body)
                yield [raw for raw in map(raw_after_sales, refunds)
                       if raw.platform_updated_at is None
                       or slice_start <= raw.platform_updated_at < slice_end]
                page_no += 1

    return once_per_window(pages())


def answer_after_sales(connector: TaobaoConnector, request: AfterSalesRequest,
                       decision: AfterSalesDecision) -> PushResult:
    if decision.agree and request.kind == "refund_only":
        return _agree_refund(connector, request, checked_amount(request, decision))
    if decision.agree and request.kind == "return_and_refund":
        checked_amount(request, decision)
        sent = {"refund_id": request.platform_request_id, "refund_version": request.version,
                "refund_phase": "aftersale", "memo": decision.note}
        return PushResult(request=sent, response=connector._call(RETURN_AGREE, sent))
    if decision.agree:
        raise Rejected(f"taobao after-sales {request.platform_request_id}: exchanges are "
                       "answered in Tmall's exchange API, not here", platform=PLATFORM,
                       code="unsupported_kind")
    sent = {"refund_id": request.platform_request_id, "refund_version": request.version,
            "refund_phase": "aftersale", "refuse_message": refusal_reason(request, decision)}
    if decision.refuse_reason_code:
        sent["refuse_reason_id"] = decision.refuse_reason_code
    return PushResult(request=sent, response=connector._call(REFUSE, sent))


def _agree_refund(connector: TaobaoConnector, request: AfterSalesRequest,
                  amount: Decimal) -> PushResult:
    info = f"{request.platform_request_id}|{fen(amount)}|{request.version}|aftersale"
    sent = {"refund_infos": info}
    answer = connector._call(AGREE, sent)
    results = (answer.get("results") or {}).get("refund_mapping_result") or []
    mine = next((r for r in results if str(r.get("refund_id")) == request.platform_request_id), None)
    if answer.get("msg_code") == AGREE_FAILED or (mine is not None and not mine.get("succ")):
        why = (mine or {}).get("message") or answer.get("message") or AGREE_FAILED
        raise Rejected(f"{AGREE}: refund {request.platform_request_id} not agreed: {why}",
                       platform=PLATFORM, code=why, body=answer)
    return PushResult(request=sent, response=answer)
