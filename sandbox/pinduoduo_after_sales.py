"""Pinduoduo after-sales on the POP router simulator (reference §11.2).

* `pdd.refund.list.increment.get` [M, SDK docs]: requests by update time,
  `start_updated_at`/`end_updated_at` unix seconds at most 30 minutes apart (both ends
  included), `after_sales_status` and `after_sales_type` required (1 = all types),
  `page`/`page_size` ≤ 100; answers `refund_increment_get_response` with `refund_list`
  and `total_count`. One request per SKU of an order.
* `pdd.refund.agree` [M]: `after_sales_id`, `order_sn`, `operate_desc`; answers
  `{"response": {"result": {after_sales_id, order_sn, succ, message}}}`.
* `pdd.refund.refuse` [L name]: the same ids and a `reject_reason` that must not be empty.

`sandbox.pinduoduo` imports this module, which adds its APIs to the router's HANDLERS.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import sandbox.pinduoduo as pop
from sandbox import after_sales as neutral
from sandbox.pinduoduo_render import china_time, order_sn

LIST = "pdd.refund.list.increment.get"  # [M]
AGREE = "pdd.refund.agree"  # [M]
REFUSE = "pdd.refund.refuse"  # [L]
ALL_TYPES = 1  # [M] after_sales_type 1 = every type
TYPE_CODES = {neutral.REFUND_ONLY: 2, neutral.RETURN_AND_REFUND: 3, neutral.EXCHANGE: 4}  # [M]
# after_sales_status [M]: ours -> PDD's, by kind where they differ.
REQUESTED_CODE = {neutral.REFUND_ONLY: 2, neutral.RETURN_AND_REFUND: 3, neutral.EXCHANGE: 14}
AGREED_CODE = {neutral.REFUND_ONLY: 4, neutral.RETURN_AND_REFUND: 7, neutral.EXCHANGE: 15}
OTHER_CODES = {neutral.REFUSED: 6, neutral.GOODS_RETURNED: 3, neutral.REFUNDED: 10,
               neutral.CLOSED: 11}
STATUS_FILTER_ALL = 1  # [L] the value that lists every status

# --- UNVERIFIED [L]: reason texts, error codes --------------------------------------------
REASON_TEXT = {
    "quality": "质量问题", "not_as_described": "商品与描述不符", "wrong_item": "发错货",
    "damaged": "商品破损/少件", "size": "尺码不合适", "no_longer_wanted": "不想要了",
    "not_received": "未收到货", neutral.UNKNOWN_REASON: "沙箱里的其他原因",
}
ERRORS = {
    neutral.ALREADY_ANSWERED: pop.PddError(30201, "售后单当前状态不允许该操作"),
    neutral.PAST_DEADLINE: pop.PddError(30202, "售后单已超过商家处理时效"),
    neutral.AMOUNT_TOO_HIGH: pop.PddError(30203, "退款金额不能大于申请金额"),
    neutral.WRONG_VERSION: pop.PddError(30201, "售后单当前状态不允许该操作"),
}
AFTER_SALES_NOT_FOUND = pop.PddError(30200, "售后单不存在")
MISSING_REASON = pop.PddError(10000, "参数错误")
# --- end UNVERIFIED


def status_code(request: neutral.SimAfterSale) -> int:
    if request.status == neutral.REQUESTED:
        return REQUESTED_CODE[request.kind]
    if request.status == neutral.AGREED:
        return AGREED_CODE[request.kind]
    return OTHER_CODES[request.status]


def render_refund(request: neutral.SimAfterSale) -> dict:
    order, line = request.order, request.line
    refund = {
        "id": request.request_id, "order_sn": order_sn(order),
        "after_sales_type": TYPE_CODES[request.kind], "after_sales_status": status_code(request),
        "after_sale_reason": REASON_TEXT[request.reason],
        "goods_id": 600_000 + int(hashlib.sha1(line.title.encode()).hexdigest()[:6], 16) % 100_000,
        "sku_id": 900_000_000 + line.line_id, "outer_id": line.sku or "", "outer_goods_id": "",
        "goods_name": line.title, "goods_number": request.quantity,
        "goods_price": int(line.unit_price * 100), "order_amount": int(order.total * 100),
        "created_time": china_time(request.created_at),
        "updated_time": china_time(request.updated_at),
        "confirm_time": china_time(order.created_at),
        "tracking_number": request.return_tracking or "",
        "buyer_id_hash": hashlib.sha1(f"pdd-buyer|{order.order_id}".encode()).hexdigest()[:20],
        "speed_refund_status": "",
    }
    if request.amount is not None:
        refund["refund_amount"] = int(request.amount * 100)  # fen [M]
    return refund


def refund_increment(index, shop: str, params: dict) -> dict:
    start, end = pop._window(params, "start_updated_at", "end_updated_at",
                             pop.UPDATE_WINDOW_LIMIT_SECONDS)
    wanted_type = pop._int_param(params, "after_sales_type")
    wanted_status = pop._int_param(params, "after_sales_status")
    page, size = pop._int_param(params, "page", 1), pop._int_param(params, "page_size", 100)
    if page < 1 or not 1 <= size <= pop.MAX_PAGE_SIZE:
        raise pop.Refusal(pop.BAD_PARAMETER, f"page从1开始, page_size不能超过{pop.MAX_PAGE_SIZE}")
    begin = datetime.fromtimestamp(start, timezone.utc)
    finish = datetime.fromtimestamp(end + 1, timezone.utc)  # both ends are whole seconds, included
    with index.state.lock:
        listed = neutral.updated_between(index.state, shop, begin, finish, include_end=False)
        rendered = [render_refund(r) for r in listed]
    rendered = [r for r in rendered
                if wanted_type in (ALL_TYPES, r["after_sales_type"])
                and wanted_status in (STATUS_FILTER_ALL, r["after_sales_status"])]
    return {"refund_increment_get_response": {
        "total_count": len(rendered), "refund_list": rendered[(page - 1) * size: page * size]}}


def _target(index, shop: str, params: dict) -> neutral.SimAfterSale:
    wanted = pop._int_param(params, "after_sales_id")
    request = neutral.find(index.state, shop, wanted)
    if request is None or order_sn(request.order) != params.get("order_sn"):
        raise pop.Refusal(AFTER_SALES_NOT_FOUND, f"after_sales_id {wanted}")
    return request


def _answer(index, shop: str, params: dict, agree: bool, note: str) -> dict:
    now = datetime.now(timezone.utc)
    with index.state.lock:
        request = _target(index, shop, params)
        problem = neutral.answer(request, agree=agree, amount=None, note=note, now=now)
    if problem is not None:
        raise pop.Refusal(ERRORS[problem], problem)
    return {"response": {"result": {"after_sales_id": request.request_id,
                                    "order_sn": params["order_sn"], "succ": True,
                                    "message": "操作成功"}}}


def refund_agree(index, shop: str, params: dict) -> dict:
    return _answer(index, shop, params, agree=True, note=params.get("operate_desc", ""))


def refund_refuse(index, shop: str, params: dict) -> dict:
    note = params.get("reject_reason", "").strip()
    if not note:
        raise pop.Refusal(MISSING_REASON, "缺少参数reject_reason")
    return _answer(index, shop, params, agree=False, note=note)


HANDLERS = {LIST: refund_increment, AGREE: refund_agree, REFUSE: refund_refuse}
pop.HANDLERS.update(HANDLERS)
