"""JD refund applications: reading `refundapply.queryPageList`, answering with `replyRefund`.

The mapping is pure; the wire functions take the `JdConnector` and use its signed `_call`
(reference §7, §11.3). A refund application is JD's refund-only request (mostly a buyer
cancelling after payment); returns and exchanges are JD's afsService and not read here.
The list filters by application time only, so a window finds new applications; their
later states come from our own answers or a detail read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from connectors.after_sales import buyer_ref, full_amount_only, once_per_window, refusal_reason
from connectors.base import AfterSalesDecision, AfterSalesLine, AfterSalesRequest, PushResult, RawAfterSales
from connectors.jd_mapping import parse_china_time
from oms.domain.errors import MappingError, Rejected, Unavailable

if TYPE_CHECKING:
    from connectors.jd import JdConnector

PLATFORM = "jd"
CURRENCY = "CNY"
QUERY = "jingdong.pop.afs.soa.refundapply.queryPageList"  # [M]
REPLY = "jingdong.pop.afs.soa.refundapply.replyRefund"  # [M]
PAGE_SIZE = 50  # [L]
WINDOW = timedelta(days=1)  # [L] no documented limit; a day keeps pages few
AGREE_STATUS, REFUSE_STATUS = 1, 2  # [M] replyRefund status
REJECT_OTHER = "5"  # [M] rejectType 5 = 其他, when the decision names none
CHECK_USER = "oms"  # [M] checkUserName: who audited, shown in JD's back office
AGREE_REMARK = "同意退款"  # remark is required for an agreement too [M]
# RefundApplyVo.status [L] -> ours.
STATUS_TABLE = {0: "requested", 1: "agreed", 2: "refused", 3: "refunded", 4: "refused",
                5: "agreed", 6: "agreed", 7: "agreed", 8: "requested", 9: "closed", 10: "agreed"}
# JD gives no deadline in the list [L: its rules speak of a day for a refund application].
RESPONSE_WINDOW = timedelta(hours=24)
UNRECOGNISED_REASON = "unrecognised"
KNOWN_REASONS = frozenset({"quality", "not_as_described", "wrong_item", "damaged", "size",
                           "no_longer_wanted", "not_received"})


def raw_after_sales(application: Any) -> RawAfterSales:
    payload = application if isinstance(application, dict) else {"unreadable": application}
    request_id = payload.get("id")
    moment = parse_china_time(payload.get("checkTime")) or parse_china_time(payload.get("applyTime"))
    return RawAfterSales(str(request_id) if request_id not in (None, "") else None, moment, payload)


def to_after_sales(raw: RawAfterSales, shop_code: str) -> AfterSalesRequest:
    payload, reasons = raw.payload, []
    request_id, order_id = str(payload.get("id") or ""), str(payload.get("orderId") or "")
    if not request_id:
        reasons.append("id: missing")
    if not order_id:
        reasons.append("orderId: missing")
    status = payload.get("status")
    if status not in STATUS_TABLE:
        reasons.append(f"status: unknown code {status!r}")
    value = payload.get("applyRefundSum")
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        amount = None
    if value in (None, "") or amount is None or amount < 0:
        reasons.append("applyRefundSum: " + ("missing" if value in (None, "") else f"not an amount: {value!r}"))
    applied = parse_china_time(payload.get("applyTime"))
    if applied is None:
        reasons.append(f"applyTime: not a time: {payload.get('applyTime')!r}")
    try:
        quantity = int(payload.get("num") or 1)
    except (TypeError, ValueError):
        quantity = 0
    if quantity < 1:
        reasons.append(f"num: not a quantity: {payload.get('num')!r}")
    if reasons:
        raise MappingError([f"refund application {request_id or '?'}: {r}" for r in reasons])
    reason = str(payload.get("reason") or "")
    return AfterSalesRequest(
        platform=PLATFORM, shop_code=shop_code, platform_request_id=request_id,
        platform_order_id=order_id, kind="refund_only", status=STATUS_TABLE[status],
        platform_status=str(status), amount=amount, currency=CURRENCY,
        reason_code=reason if reason in KNOWN_REASONS else UNRECOGNISED_REASON, reason_text=reason,
        lines=(AfterSalesLine(str(payload.get("skuId") or ""), str(payload.get("outerId") or "") or None,
                              quantity, amount),),
        created_at=applied, updated_at=parse_china_time(payload.get("checkTime")) or applied,
        respond_by=applied + RESPONSE_WINDOW, buyer_ref=buyer_ref(PLATFORM, payload.get("buyerId")),
    )


def fetch_after_sales(connector: JdConnector, start: datetime, end: datetime
                      ) -> Iterator[list[RawAfterSales]]:
    """Applications made in [start, end), in day slices, each once."""
    from connectors.jd import china_time, second_slices

    def pages() -> Iterator[list[RawAfterSales]]:
        for first, last in second_slices(start, end, WINDOW):
            window = {"applyTimeStart": china_time(first), "applyTimeEnd": china_time(last)}
            page, more = 1, True
            while more:
                body = connector._call(QUERY, {**window, "pageIndex": page, "pageSize": PAGE_SIZE})
                result = body.get("queryResult")
                if not isinstance(result, dict) or not isinstance(result.get("result"), list):
                    raise Unavailable(f"{QUERY} answered without queryResult.result",
                                      platform=PLATFORM, body=body)
                if result.get("success") not in (True, "true"):
                    raise Rejected(f"{QUERY}: {result.get('errorMessage')}", platform=PLATFORM,
                                   code=result.get("errorCode"), body=result)
                yield [raw_after_sales(a) for a in result["result"]]
                more = page * PAGE_SIZE < int(result.get("totalCount") or 0)
                page += 1

    return once_per_window(pages())


def answer_after_sales(connector: JdConnector, request: AfterSalesRequest,
                       decision: AfterSalesDecision) -> PushResult:
    sent: dict[str, object] = {"id": int(request.platform_request_id), "checkUserName": CHECK_USER}
    if decision.agree:
        full_amount_only(request, decision)  # JD refunds the applied sum; no amount parameter
        sent.update(status=AGREE_STATUS, remark=decision.note.strip() or AGREE_REMARK)
    else:
        sent.update(status=REFUSE_STATUS, remark=refusal_reason(request, decision),
                    rejectType=int(decision.refuse_reason_code or REJECT_OTHER))
    answer = connector._call(REPLY, sent)
    result = answer.get("replyResult") or {}
    if result.get("success") not in (True, "true"):
        raise Rejected(f"{REPLY}: application {request.platform_request_id}: "
                       f"{result.get('errorMessage') or 'refused'}", platform=PLATFORM,
                       code=result.get("errorCode"), body=answer)
    return PushResult(request=sent, response=answer)
