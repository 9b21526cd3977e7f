"""Douyin shop (抖店) after-sales: reading `afterSale/List`, agreeing and refusing with
`afterSale/operate`.

The mapping is pure; the wire functions take the `DouyinConnector` and use its signed
`_call` (pacing, signing and error translation as for orders). Facts and their confidence
are in docs/after-sales-apis.md ("Douyin"). Doudian states its own deadline for the
seller's answer (`status_deadline`), so `respond_by` is the platform's, not ours, and its
`update_time` is echoed on every answer so a request that changed meanwhile is refused
instead of answered blind.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.after_sales import buyer_ref, full_amount_only, once_per_window, refusal_reason
from connectors.base import (
    AfterSalesDecision,
    AfterSalesLine,
    AfterSalesRequest,
    PushResult,
    RawAfterSales,
    second_slices,
)

# The widest update-time window of afterSale/List is not stored [L]: the orders' 24 h is
# used, both ends whole seconds included.
from connectors.douyin import UPDATE_WINDOW
from connectors.douyin_mapping import PLATFORM, from_unix_seconds, yuan_from_fen
from oms.domain.errors import MappingError, Rejected, Unavailable

if TYPE_CHECKING:
    from connectors.douyin import DouyinConnector

CURRENCY = "CNY"  # Doudian amounts are fen of yuan [H]
# [H] the SDK paths /afterSale/List and /afterSale/operate, as method names
LIST, OPERATE = "afterSale.List", "afterSale.operate"
PAGE_SIZE = 100  # [H] "每页数量，最多100个"; page counts from 0
ORDER_BY_UPDATE = ["update_time asc"]  # [H] "<field> <asc|desc>"

# aftersale_type [H] -> our kind. 6 价保 (price protection), 7 补寄 (resend) and 8 维修
# (repair) are not a buyer's refund, return or exchange: they go to the review queue.
KINDS = {0: "return_and_refund", 1: "refund_only", 2: "refund_only", 3: "exchange"}
# aftersale_status [H values] -> our status [M: our reading of each node]. 8 (the seller
# ships the exchange) and 11 (second approval after the goods came back) both mean the
# buyer's goods are with the seller.
STATUS_TABLE = {
    6: "requested", 7: "agreed", 3: "agreed", 13: "agreed", 8: "goods_returned",
    11: "goods_returned", 12: "refunded", 14: "closed", 27: "refused", 28: "closed",
    29: "refused",
}
# afterSale/operate `type` by (kind, agree) for the first answer to a request. 201/202 [M,
# a PHP SDK's constants]; 101 and 301 [M: the Go SDK says they need the return address];
# 102 and 302 [L].
OPERATE_TYPES = {
    ("refund_only", True): 201, ("refund_only", False): 202,
    ("return_and_refund", True): 101, ("return_and_refund", False): 102,
    ("exchange", True): 301, ("exchange", False): 302,
}
NEEDS_RETURN_ADDRESS = frozenset({101, 301})  # [H] logistics.receiver_address_id
REASON_CODES = {  # text_part.reason_text as buyers pick it [L: texts of the app's menu]
    "质量问题": "quality", "商品与描述不符": "not_as_described", "商家发错货": "wrong_item",
    "商品破损": "damaged", "尺码不合适": "size", "七天无理由退货": "no_longer_wanted",
    "不想要了": "no_longer_wanted", "未收到货": "not_received",
}
UNRECOGNISED_REASON = "unrecognised"


# ---- mapping (pure) ---------------------------------------------------------------------


def _info(payload: dict, part: str) -> dict:
    value = payload.get(part)
    return value if isinstance(value, dict) else {}


def raw_after_sales(item: Any) -> RawAfterSales:
    payload = item if isinstance(item, dict) else {"unreadable": item}
    info = _info(payload, "aftersale_info")
    request_id = info.get("aftersale_id")
    return RawAfterSales(
        platform_request_id=str(request_id) if request_id not in (None, "") else None,
        platform_updated_at=from_unix_seconds(info.get("update_time")), payload=payload)


def _code(info: dict, name: str, reasons: list[str]) -> int | None:
    value = info.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        reasons.append(f"aftersale_info.{name}: missing" if value is None
                       else f"aftersale_info.{name}: not a code: {value!r}")
        return None
    return value


def _time(info: dict, name: str, reasons: list[str]) -> datetime:
    moment = from_unix_seconds(info.get(name))
    if moment is None:
        reasons.append(f"aftersale_info.{name}: not a time: {info.get(name)!r}")
    return moment or datetime.min


def _fen(holder: dict, where: str, name: str, reasons: list[str]) -> Decimal:
    if holder.get(name) is None:
        reasons.append(f"{where}{name}: missing")
        return Decimal(0)
    amount = yuan_from_fen(holder.get(name))
    if amount is None or amount < 0:
        reasons.append(f"{where}{name}: not fen: {holder.get(name)!r}")
        return Decimal(0)
    return amount


def _lines(order_info: dict, reasons: list[str]) -> tuple[AfterSalesLine, ...]:
    related = order_info.get("related_order_info")
    if not isinstance(related, list) or not related:
        reasons.append("order_info.related_order_info: no sub-order")
        return ()
    lines = []
    for position, sub in enumerate(related):
        where = f"order_info.related_order_info[{position}]."
        sub = sub if isinstance(sub, dict) else {}
        quantity = sub.get("aftersale_item_num")
        if not str(sub.get("sku_order_id") or ""):
            reasons.append(f"{where}sku_order_id: missing")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            reasons.append(f"{where}aftersale_item_num: not a quantity: {quantity!r}")
            quantity = 0
        amount = yuan_from_fen(sub.get("aftersale_pay_amount"))
        lines.append(AfterSalesLine(str(sub.get("sku_order_id") or ""),
                                    str(sub.get("shop_sku_code") or "") or None, quantity, amount))
    return tuple(lines)


def to_after_sales(raw: RawAfterSales, shop_code: str) -> AfterSalesRequest:
    """A Doudian after-sales item as our request; every wrong field is named together."""
    payload, reasons = raw.payload, []
    info, order_info = _info(payload, "aftersale_info"), _info(payload, "order_info")
    request_id = str(info.get("aftersale_id") or "")
    if not request_id:
        reasons.append("aftersale_info.aftersale_id: missing")
    order_id = str(order_info.get("shop_order_id") or "")
    if not order_id:
        reasons.append("order_info.shop_order_id: missing")
    type_code = _code(info, "aftersale_type", reasons)
    status_code = _code(info, "aftersale_status", reasons)
    if type_code is not None and type_code not in KINDS:
        reasons.append(f"aftersale_info.aftersale_type: {type_code} is not a refund, return "
                       "or exchange")
    if status_code is not None and status_code not in STATUS_TABLE:
        reasons.append(f"aftersale_info.aftersale_status: unknown code {status_code}")
    amount = _fen(info, "aftersale_info.", "refund_amount", reasons)
    created, updated = _time(info, "apply_time", reasons), _time(info, "update_time", reasons)
    lines = _lines(order_info, reasons)
    if reasons:
        raise MappingError([f"after-sales {request_id or '?'}: {reason}" for reason in reasons])
    reason_text = str(_info(payload, "text_part").get("reason_text") or "")
    return AfterSalesRequest(
        platform=PLATFORM, shop_code=shop_code, platform_request_id=request_id,
        platform_order_id=order_id, kind=KINDS[type_code], status=STATUS_TABLE[status_code],
        platform_status=str(status_code), amount=amount, currency=CURRENCY,
        reason_code=REASON_CODES.get(reason_text, UNRECOGNISED_REASON), reason_text=reason_text,
        lines=lines, created_at=created, updated_at=updated,
        # 0 means the node has no deadline (a request waiting on the buyer)
        respond_by=from_unix_seconds(info.get("status_deadline")),
        buyer_ref=buyer_ref(PLATFORM, None),  # the list names no buyer [H]; nothing to hash
        return_carrier=str(info.get("return_logistics_company_name") or "") or None,
        return_tracking=str(info.get("return_logistics_code") or "") or None,
        version=str(info.get("update_time")),
    )


# ---- the wire (through the connector) ---------------------------------------------------


def _list_page(connector: DouyinConnector, window: dict, page: int) -> tuple[list[RawAfterSales], int]:
    data = connector._call(LIST, {**window, "order_by": ORDER_BY_UPDATE, "page": page,
                                  "size": PAGE_SIZE})
    items = data.get("items") if isinstance(data, dict) else None
    total = data.get("total") if isinstance(data, dict) else None
    if not isinstance(items, list) or isinstance(total, bool) or not isinstance(total, int):
        raise Unavailable(f"{LIST} answered without items or total", platform=PLATFORM, body=data)
    return [raw_after_sales(item) for item in items], total


def fetch_after_sales(connector: DouyinConnector, start: datetime, end: datetime
                      ) -> Iterator[list[RawAfterSales]]:
    """Requests updated in [start, end), each once.

    As for orders, each window is read from its last page back to the first: a request
    answered while we page moves to the end, shifting the later ones onto pages already
    read, which repeats a request (dropped here) instead of skipping one.
    """

    def pages() -> Iterator[list[RawAfterSales]]:
        for slice_start, slice_end in second_slices(start, end, UPDATE_WINDOW):
            window = {"update_start_time": slice_start, "update_end_time": slice_end}
            first, total = _list_page(connector, window, 0)
            last_page = max(-(-total // PAGE_SIZE) - 1, 0)
            read = [_list_page(connector, window, page)[0] for page in range(last_page, 0, -1)]
            yield from (page for page in [first, *reversed(read)] if page)

    return once_per_window(pages())


def answer_after_sales(connector: DouyinConnector, request: AfterSalesRequest,
                       decision: AfterSalesDecision) -> PushResult:
    if request.status != "requested":
        # Later nodes (receipt of the goods, the second approval) take other types.
        raise Rejected(f"douyin after-sales {request.platform_request_id}: only a request "
                       f"waiting for the seller's first answer is answered here, not "
                       f"{request.status}", platform=PLATFORM, code="not_answerable_here")
    operate_type = OPERATE_TYPES[(request.kind, decision.agree)]
    item: dict[str, Any] = {"aftersale_id": request.platform_request_id}
    if request.version.isdigit():
        item["update_time"] = int(request.version)
    if decision.agree:
        full_amount_only(request, decision)  # operate refunds what was asked: no amount field [M]
        if decision.note:
            item["remark"] = decision.note
        if operate_type in NEEDS_RETURN_ADDRESS:
            item["logistics"] = {"receiver_address_id": _return_address(connector, request)}
    else:
        note = refusal_reason(request, decision, needs_code=True)
        if not str(decision.refuse_reason_code).isdigit():
            raise Rejected(f"douyin after-sales {request.platform_request_id}: reject reason "
                           f"code {decision.refuse_reason_code!r} is not one of "
                           "afterSale/rejectReasonCodeList's numbers", platform=PLATFORM,
                           code="refuse_reason_required")
        item.update(reason=note, remark=note, reject_reason_code=int(decision.refuse_reason_code))
    sent = {"type": operate_type, "items": [item]}
    answer = connector._call(OPERATE, sent)
    return PushResult(request=sent, response=answer if isinstance(answer, dict) else {})


def _return_address(connector: DouyinConnector, request: AfterSalesRequest) -> int:
    address_id = getattr(connector, "return_address_id", None)
    if not isinstance(address_id, int) or address_id <= 0:
        raise Rejected(f"douyin after-sales {request.platform_request_id}: agreeing a "
                       f"{request.kind} needs the shop's return address id (address/list)",
                       platform=PLATFORM, code="return_address_required")
    return address_id
