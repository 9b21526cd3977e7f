"""Douyin shop (抖店) after-sales on the Doudian gateway simulator.

* `afterSale/List` [H, Go SDK structs]: requests by `update_start_time`/`update_end_time`
  (unix seconds, both ends included), `page` from 0, `size` at most 100, `order_by` like
  `["update_time asc"]`; answers `{items[{aftersale_info, order_info, text_part}],
  has_more, total, page, size}` with amounts in fen and the node's `status_deadline`.
* `afterSale/operate` [H fields]: `type` and `items[{aftersale_id, reason, remark,
  reject_reason_code, logistics{receiver_address_id}, update_time}]`; a refusal needs its
  reason, remark and reject_reason_code, agreeing a return or an exchange needs the
  return address, a stale `update_time` is refused. Answers `{items[{aftersale_id,
  status_code, status_msg}]}`; one failing item fails the call [M].

`sandbox.douyin` imports this module, which adds both APIs to its SHOP_APIS.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sandbox.douyin as doudian
from sandbox import after_sales as neutral
from sandbox.douyin_render import STATUS_CODES, fen, seconds, shop_order_id, sku_order_id

LIST, OPERATE = "afterSale.List", "afterSale.operate"
MAX_PAGE_SIZE = 100  # [H]
MAX_OPERATE_ITEMS = 20  # [M] "每次最多支持对20个售后单进行操作"
ORDER_BY = {"update_time asc": False, "update_time desc": True}  # [H] field + direction
# aftersale_type [H]: refund-only is 1 once shipped, 2 before.
RETURN_AND_REFUND_TYPE, SHIPPED_REFUND_TYPE, UNSHIPPED_REFUND_TYPE, EXCHANGE_TYPE = 0, 1, 2, 3
# aftersale_status [H values]; which node each neutral status shows is ours [M].
REQUESTED_CODE, AWAIT_RETURN_CODE, SECOND_APPROVAL_CODE, SUCCESS_CODE = 6, 7, 11, 12
SELLER_SHIPS_EXCHANGE_CODE, REFUSED_CODE, FAILED_CODE = 8, 27, 28
# afterSale/operate type -> (kind, agree) [M/L, see connectors.douyin_after_sales]
OPERATE_TYPES = {201: (neutral.REFUND_ONLY, True), 202: (neutral.REFUND_ONLY, False),
                 101: (neutral.RETURN_AND_REFUND, True), 102: (neutral.RETURN_AND_REFUND, False),
                 301: (neutral.EXCHANGE, True), 302: (neutral.EXCHANGE, False)}
NEEDS_ADDRESS = frozenset({101, 301})  # [H]
TYPE_TEXT = {0: "退货退款", 1: "已发货仅退款", 2: "未发货仅退款", 3: "换货"}
STATUS_TEXT = {6: "待商家同意", 7: "待买家退货", 8: "待商家发货", 11: "待商家二次同意",
               12: "售后成功", 27: "商家一次拒绝", 28: "售后失败"}

# --- UNVERIFIED [L]: reason texts, the sub-codes of refusals other than a wrong status ---
REASON_TEXT = {
    "quality": "质量问题", "not_as_described": "商品与描述不符", "wrong_item": "商家发错货",
    "damaged": "商品破损", "size": "尺码不合适", "no_longer_wanted": "七天无理由退货",
    "not_received": "未收到货", neutral.UNKNOWN_REASON: "沙箱里的其他原因",
}
FAILED = doudian.BUSINESS_FAILED
WRONG_STATUS = doudian.DoudianError(50002, FAILED, "isv.business-failed:20309541", "售后状态错误")  # [M]
ERRORS = {
    neutral.ALREADY_ANSWERED: WRONG_STATUS,
    neutral.PAST_DEADLINE: doudian.DoudianError(50002, FAILED, "isv.business-failed:aftersale-overdue",
                                                "售后单已超过商家处理时效"),
    neutral.AMOUNT_TOO_HIGH: doudian.DoudianError(50002, FAILED, "isv.business-failed:11005", "操作失败"),
    neutral.WRONG_VERSION: doudian.DoudianError(50002, FAILED, "isv.business-failed:aftersale-version",
                                                "售后单已变更，请获取最新售后单后重试"),
}
NOT_FOUND = doudian.DoudianError(20000, "系统错误", "isp.service-error:10000", "存在无效的售后单")  # [M]
# --- end UNVERIFIED


def type_code(request: neutral.SimAfterSale) -> int:
    if request.kind == neutral.RETURN_AND_REFUND:
        return RETURN_AND_REFUND_TYPE
    if request.kind == neutral.EXCHANGE:
        return EXCHANGE_TYPE
    shipped = request.order.status in ("shipped", "delivered")
    return SHIPPED_REFUND_TYPE if shipped else UNSHIPPED_REFUND_TYPE


def status_code(request: neutral.SimAfterSale) -> int:
    if request.status == neutral.AGREED:
        # refund-only is paid on agreeing; a return or exchange first waits for the goods
        return SUCCESS_CODE if request.kind == neutral.REFUND_ONLY else AWAIT_RETURN_CODE
    if request.status == neutral.GOODS_RETURNED:
        return SELLER_SHIPS_EXCHANGE_CODE if request.kind == neutral.EXCHANGE else SECOND_APPROVAL_CODE
    return {neutral.REQUESTED: REQUESTED_CODE, neutral.REFUSED: REFUSED_CODE,
            neutral.REFUNDED: SUCCESS_CODE, neutral.CLOSED: FAILED_CODE}[request.status]


def render_item(request: neutral.SimAfterSale) -> dict:
    order, line = request.order, request.line
    status = status_code(request)
    waiting_on_seller = status in (REQUESTED_CODE, SECOND_APPROVAL_CODE, SELLER_SHIPS_EXCHANGE_CODE)
    info = {
        "aftersale_id": str(request.request_id), "aftersale_order_type": 1,
        "aftersale_type": type_code(request), "aftersale_status": status,
        "related_id": sku_order_id(line), "apply_time": seconds(request.created_at),
        "create_time": seconds(request.created_at), "update_time": seconds(request.updated_at),
        "status_deadline": seconds(request.respond_by) if waiting_on_seller else 0,
        "refund_post_amount": 0, "aftersale_num": request.quantity, "refund_status": 1,
        "arbitrate_status": 0, "got_pkg": int(order.status == "delivered"),
        "return_logistics_code": request.return_tracking or "",
        "return_logistics_company_name": "", "remark": "",
    }
    if request.amount is not None:
        info["refund_amount"] = fen(request.amount)  # fen [H]
    sub_order = {
        "sku_order_id": sku_order_id(line), "order_status": STATUS_CODES[order.status],
        "pay_amount": fen(line.unit_price * line.quantity), "item_num": line.quantity,
        "price": fen(line.unit_price), "product_name": line.title, "shop_sku_code": line.sku or "",
        "aftersale_pay_amount": fen(request.asked), "aftersale_item_num": request.quantity,
    }
    return {
        "aftersale_info": info,
        "order_info": {"shop_order_id": shop_order_id(order), "related_order_info": [sub_order],
                       "order_flag": 0},
        "text_part": {"reason_text": REASON_TEXT[request.reason],
                      "aftersale_type_text": TYPE_TEXT[info["aftersale_type"]],
                      "aftersale_status_text": STATUS_TEXT[status]},
    }


def aftersale_list(timeline, shop: str, params: dict) -> dict:
    start = doudian._int(params, "update_start_time", 0)
    end = doudian._int(params, "update_end_time", 2**40)
    if end < start or (end < 2**40 and end - start > doudian.SEARCH_WINDOW_LIMIT_SECONDS):
        hours = doudian.SEARCH_WINDOW_LIMIT_SECONDS // 3600  # the orders' limit [L]
        raise doudian.Refusal(doudian.BAD_PARAMETER,
                              f"update_start_time与update_end_time的跨度不能超过{hours}小时")
    page = doudian._int(params, "page", 0)
    size = doudian._int(params, "size", doudian.DEFAULT_PAGE_SIZE)
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise doudian.Refusal(doudian.BAD_PARAMETER, f"page从0开始, size须为1到{MAX_PAGE_SIZE}")
    order_by = params.get("order_by") or ["update_time asc"]
    if not isinstance(order_by, list) or any(o not in ORDER_BY for o in order_by):
        raise doudian.Refusal(doudian.BAD_PARAMETER, "order_by不合法")
    begin = datetime.fromtimestamp(start, timezone.utc)
    finish = datetime.fromtimestamp(end, timezone.utc) + timedelta(seconds=1)  # end included
    with timeline.state.lock:
        listed = neutral.updated_between(timeline.state, shop, begin, finish, include_end=False)
        if ORDER_BY[order_by[0]]:
            listed = listed[::-1]
        chosen = [render_item(r) for r in listed[page * size:(page + 1) * size]]
    return {"items": chosen, "has_more": (page + 1) * size < len(listed), "total": len(listed),
            "page": page, "size": len(chosen)}


def _check_item(operate_type: int, item: dict) -> None:
    agree = OPERATE_TYPES[operate_type][1]
    given = all(str(item.get(name) or "").strip() for name in ("reason", "remark"))
    if not agree and not (given and doudian._int(item, "reject_reason_code", 0) > 0):
        raise doudian.Refusal(doudian.BAD_PARAMETER, "拒绝时reason、remark、reject_reason_code必填")
    if operate_type in NEEDS_ADDRESS:
        logistics = item.get("logistics") if isinstance(item.get("logistics"), dict) else {}
        if doudian._int(logistics, "receiver_address_id", 0) <= 0:
            raise doudian.Refusal(doudian.BAD_PARAMETER, "同意退货/换货须传logistics.receiver_address_id")


def operate(timeline, shop: str, params: dict) -> dict:
    operate_type = doudian._int(params, "type")
    items = params.get("items")
    if operate_type not in OPERATE_TYPES:
        raise doudian.Refusal(doudian.BAD_PARAMETER, f"type {operate_type}不支持")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_OPERATE_ITEMS:
        raise doudian.Refusal(doudian.BAD_PARAMETER, f"items须为1到{MAX_OPERATE_ITEMS}项")
    items = [item if isinstance(item, dict) else {} for item in items]
    kind, agree = OPERATE_TYPES[operate_type]
    now = datetime.now(timezone.utc)
    with timeline.state.lock:
        targets = []
        for item in items:  # parameters and ids of all first: one bad item fails the call
            _check_item(operate_type, item)
            request = neutral.find(timeline.state, shop, doudian._int(item, "aftersale_id"))
            if request is None:
                raise doudian.Refusal(NOT_FOUND, str(item.get("aftersale_id")))
            if request.kind != kind:
                raise doudian.Refusal(WRONG_STATUS, f"type {operate_type} is not for a {request.kind}")
            echoed = item.get("update_time")
            if echoed not in (None, 0) and echoed != seconds(request.updated_at) \
                    and request.status == neutral.REQUESTED:
                raise doudian.Refusal(ERRORS[neutral.WRONG_VERSION])
            targets.append((request, item))
        for request, item in targets:
            note = str(item.get("remark") or item.get("reason") or "")
            problem = neutral.answer(request, agree=agree, amount=None, note=note, now=now)
            if problem is not None:
                raise doudian.Refusal(ERRORS[problem], problem)
    return {"items": [{"aftersale_id": r.request_id, "status_code": 0, "status_msg": "成功"}
                      for r, _ in targets]}


SHOP_APIS = {LIST: aftersale_list, OPERATE: operate}
doudian.SHOP_APIS.update(SHOP_APIS)
