"""JD refund applications (退款审核单) on the JOS gateway simulator (reference §11.3).

* `jingdong.pop.afs.soa.refundapply.queryPageList` [M, SDK]: business parameters
  `ids`, `status`, `orderId`, `applyTimeStart`/`applyTimeEnd` (China time),
  `checkTimeStart`/`checkTimeEnd`, `pageIndex`, `pageSize` (≤ 50 here [L]); answers
  `queryResult` {success, totalCount, result: [RefundApplyVo]} with `id`, `orderId`,
  `buyerId`, `applyTime`, `applyRefundSum` (yuan), `status`, `checkTime`,
  `checkUserName`, `checkRemark`.
* `jingdong.pop.afs.soa.refundapply.replyRefund` [M, SDK]: `id`, `status` (1 agree,
  2 refuse, 6 agree and intercept, 9 force close, 10 logistics to follow), `checkUserName`,
  `remark` (required except for 9), `rejectType` (1..6, only and always for a refusal),
  `outWareStatus`; answers `replyResult` {success, errorCode, errorMessage}.

These are refund-only applications (mostly a cancellation after payment); JD's returns
and exchanges run through its separate afsService APIs, not simulated. `sandbox.jd`
imports this module, which adds the two methods to the gateway's HANDLERS.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import sandbox.jd as jos
from sandbox import after_sales as neutral
from sandbox.jd_render import china_time, jd_order_id, parse_jd_time

QUERY = "jingdong.pop.afs.soa.refundapply.queryPageList"  # [M]
REPLY = "jingdong.pop.afs.soa.refundapply.replyRefund"  # [M]
MAX_PAGE_SIZE = 50  # [L]
AGREE, REFUSE = 1, 2  # [M] replyRefund status
REPLY_STATUSES = frozenset({1, 2, 6, 9, 10})  # [M]
REJECT_TYPES = frozenset(range(1, 7))  # [M]
# RefundApplyVo.status [L: 0 未审核, 1 审核通过, 2 审核不通过, 3/4 京东财务审核通过/不通过, ...]
STATUS_CODES = {neutral.REQUESTED: 0, neutral.AGREED: 1, neutral.REFUSED: 2,
                neutral.REFUNDED: 3, neutral.CLOSED: 9, neutral.GOODS_RETURNED: 1}

# --- UNVERIFIED [L]: business error codes ------------------------------------------------
ERRORS = {
    neutral.ALREADY_ANSWERED: ("10200001", "退款单已审核，不能重复审核"),
    neutral.PAST_DEADLINE: ("10200002", "退款单已超过审核时效"),
    neutral.AMOUNT_TOO_HIGH: ("10200003", "退款金额不合法"),
    neutral.WRONG_VERSION: ("10200001", "退款单已审核，不能重复审核"),
}
NOT_FOUND = ("10200004", "退款单不存在")
BAD_REPLY = ("10200005", "审核参数不合法")
# --- end UNVERIFIED


def render_application(request: neutral.SimAfterSale) -> dict:
    application = {
        "id": request.request_id, "orderId": jd_order_id(request.order),
        "buyerId": hashlib.sha1(f"jd-buyer|{request.order.order_id}".encode()).hexdigest()[:16],
        "buyerName": "j***", "applyTime": china_time(request.created_at),
        "status": STATUS_CODES[request.status],
        "checkTime": china_time(request.updated_at) if request.answers else "",
        "checkUserName": "", "checkRemark": request.answers[-1]["note"] if request.answers else "",
        "reason": request.reason, "skuId": 100_000_000 + request.line.line_id,
        "outerId": request.line.sku or "", "num": request.quantity,
    }
    if request.amount is not None:
        application["applyRefundSum"] = float(request.amount)
    return application


def _result(success: bool, code: str = "", message: str = "", **more) -> dict:
    return {"success": success, "errorCode": code, "errorMessage": message, **more}


def query_page_list(index, shop: str, business: dict) -> dict:
    start = parse_jd_time(str(business.get("applyTimeStart", "")))
    end = parse_jd_time(str(business.get("applyTimeEnd", "")))
    try:
        page, size = int(business.get("pageIndex", 1)), int(business.get("pageSize", 10))
    except (TypeError, ValueError):
        page, size = 0, 0
    if start is None or end is None or end < start or page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        return {"queryResult": _result(False, *BAD_REPLY, totalCount=0, result=[])}
    with index.state.lock:
        chosen = [r for r in neutral.requests_of(index.state).get(shop, ())
                  if r.kind == neutral.REFUND_ONLY and start <= r.created_at <= end]
        chosen.sort(key=lambda r: (r.created_at, r.request_id))
        listed = neutral.with_repeats(chosen)
        rendered = [render_application(r) for r in listed[(page - 1) * size: page * size]]
    return {"queryResult": _result(True, totalCount=len(listed), result=rendered)}


def reply_refund(index, shop: str, business: dict) -> dict:
    try:
        wanted, status = int(business.get("id")), int(business.get("status"))
    except (TypeError, ValueError):
        return {"replyResult": _result(False, *BAD_REPLY)}
    remark = str(business.get("remark") or "").strip()
    reject_type = business.get("rejectType")
    if status not in REPLY_STATUSES or not business.get("checkUserName") \
            or (status != 9 and not remark) \
            or (status == REFUSE) != (reject_type not in (None, "")) \
            or (status == REFUSE and int(reject_type) not in REJECT_TYPES):
        return {"replyResult": _result(False, *BAD_REPLY)}
    now = datetime.now(timezone.utc)
    with index.state.lock:
        request = neutral.find(index.state, shop, wanted)
        if request is None or request.kind != neutral.REFUND_ONLY:
            return {"replyResult": _result(False, *NOT_FOUND)}
        problem = neutral.answer(request, agree=status != REFUSE, amount=None, note=remark, now=now)
    if problem is not None:
        return {"replyResult": _result(False, *ERRORS[problem])}
    return {"replyResult": _result(True)}


HANDLERS = {QUERY: query_page_list, REPLY: reply_refund}
jos.HANDLERS.update(HANDLERS)
