"""Taobao / Tmall refunds on the TOP gateway simulator (reference §11.1).

* `taobao.refunds.receive.get` [H name, params M]: the seller's refunds modified between
  `start_modified` and `end_modified` (China time), `page_no`/`page_size` (≤ 100,
  default 40), `use_has_next`, an optional `status`; a list under `refunds.refund`.
  One refund per sub-order (oid), so each carries one line.
* `taobao.rp.refunds.agree` [M]: agree to refund-only requests in a batch;
  `refund_infos` = "refund_id|amount in fen|refund_version|phase" joined by commas;
  answers `msg_code` OP_SUCC / SOME_OP_SUCC / OP_FAILURE_UE and per-refund `results`.
* `taobao.rp.returngoods.agree` [M name]: agree that the buyer sends the goods back.
* `taobao.refund.refuse` [M]: refuse with `refuse_message` (required).

Sandbox state is `sandbox.after_sales`; `sandbox.taobao` imports this module, which adds
its methods to the gateway's HANDLERS.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import sandbox.taobao as top
from sandbox import after_sales as neutral
from sandbox.taobao_render import china_time, oid, tid, yuan

RECEIVE = "taobao.refunds.receive.get"  # [H]
REFUND_GET = "taobao.refund.get"  # [H]
AGREE = "taobao.rp.refunds.agree"  # [M]
RETURN_AGREE = "taobao.rp.returngoods.agree"  # [M]
REFUSE = "taobao.refund.refuse"  # [M]
MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 100, 40  # [M] receive.get
MAX_AGREE_BATCH = 20  # [M] 淘宝 at most 20 refunds per agree call

# Refund statuses [M, SDK field docs]: ours -> Taobao's, by kind where they differ.
STATUS_TEXT = {
    neutral.REQUESTED: "WAIT_SELLER_AGREE",
    neutral.REFUSED: "SELLER_REFUSE_BUYER",
    neutral.GOODS_RETURNED: "WAIT_SELLER_CONFIRM_GOODS",
    neutral.REFUNDED: "SUCCESS",
    neutral.CLOSED: "CLOSED",
}
AGREED_STATUS = {neutral.REFUND_ONLY: "SUCCESS",  # agreeing a refund-only pays at once
                 neutral.RETURN_AND_REFUND: "WAIT_BUYER_RETURN_GOODS"}
REFUND_STATUSES = frozenset(STATUS_TEXT.values()) | frozenset(AGREED_STATUS.values())

# --- UNVERIFIED [L]: reason texts, error sub_codes, deadline field, phase -----------------
REASON_TEXT = {
    "quality": "质量问题", "not_as_described": "商品与页面描述不符", "wrong_item": "卖家发错货",
    "damaged": "商品破损", "size": "尺码不合适", "no_longer_wanted": "不想要了",
    "not_received": "未收到货", neutral.UNKNOWN_REASON: "其他原因（沙箱）",
}
ERRORS = {
    neutral.ALREADY_ANSWERED: "isv.refund-status-not-support",
    neutral.PAST_DEADLINE: "isv.refund-timeout",
    neutral.AMOUNT_TOO_HIGH: "isv.refund-fee-error",
    neutral.WRONG_VERSION: "isv.refund-version-not-match",
}
REFUND_NOT_FOUND = top.TopError(15, "Remote service error", "isv.refund-not-exist")
PHASE = "aftersale"  # refund_phase of a shipped order; "onsale" before
BUYER_OPEN_UID_PREFIX = "AAH"
# --- end UNVERIFIED


def _uid(request: neutral.SimAfterSale) -> str:
    digest = hashlib.sha1(f"buyer|{request.order.order_id}".encode()).hexdigest()[:24]
    return BUYER_OPEN_UID_PREFIX + digest


def refund_status(request: neutral.SimAfterSale) -> str:
    if request.status == neutral.AGREED:
        return AGREED_STATUS.get(request.kind, "WAIT_BUYER_RETURN_GOODS")
    return STATUS_TEXT[request.status]


def render_refund(request: neutral.SimAfterSale) -> dict:
    order, line = request.order, request.line
    refund = {
        "refund_id": str(request.request_id), "tid": tid(order), "oid": oid(order, line),
        "title": line.title, "num": request.quantity, "sku": "", "outer_id": line.sku or "",
        "total_fee": yuan(line.unit_price * line.quantity), "payment": yuan(order.total),
        "status": refund_status(request), "order_status": "WAIT_BUYER_CONFIRM_GOODS"
        if order.status != "paid" else "WAIT_SELLER_SEND_GOODS",
        "has_good_return": request.kind == neutral.RETURN_AND_REFUND,
        "good_status": "BUYER_RECEIVED" if order.status == "delivered" else "BUYER_NOT_RECEIVED",
        "reason": REASON_TEXT[request.reason], "desc": request.description,
        "created": china_time(request.created_at), "modified": china_time(request.updated_at),
        "refund_version": request.version, "refund_phase": PHASE if order.status != "paid" else "onsale",
        "buyer_open_uid": _uid(request), "buyer_nick": "t***",
        "refund_remind_timeout": {"remind_type": 1, "exist_timeout": True,
                                  "timeout": china_time(request.respond_by)},
        "refund_fee": yuan(request.amount) if request.amount is not None else None,
    }
    if request.amount is None:
        del refund["refund_fee"]
    return refund


def receive_get(index, shop: str, params: dict) -> dict:
    fields = top._fields(params)
    start, end = top._time(params, "start_modified"), top._time(params, "end_modified")
    if end < start:
        raise top.Refusal(top.INVALID_ARGUMENT, "end_modified must not be before start_modified")
    page_no = top._int(params, "page_no", 1, 1, 10**6)
    size = top._int(params, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    wanted = params.get("status", "")
    if wanted and wanted not in REFUND_STATUSES:
        raise top.Refusal(top.INVALID_ARGUMENT, f"status {wanted} is not a refund status")
    with index.state.lock:
        listed = neutral.updated_between(index.state, shop, start, end)
        rendered = [render_refund(r) for r in listed]
    if wanted:
        rendered = [r for r in rendered if r["status"] == wanted]
    page = [{k: v for k, v in r.items() if k in fields}
            for r in rendered[(page_no - 1) * size: page_no * size]]
    body: dict = {"request_id": uuid.uuid4().hex}
    if params.get("use_has_next") == "true":
        body["has_next"] = page_no * size < len(rendered)
    else:
        body["total_results"] = len(rendered)
    if page:
        body["refunds"] = {"refund": page}
    return body


def _request(index, shop: str, refund_id: str) -> neutral.SimAfterSale:
    found = neutral.find(index.state, shop, int(refund_id)) if refund_id.isdigit() else None
    if found is None:
        raise top.Refusal(REFUND_NOT_FOUND, f"refund {refund_id} does not exist")
    return found


def refund_get(index, shop: str, params: dict) -> dict:
    fields = top._fields(params)
    with index.state.lock:
        refund = render_refund(_request(index, shop, top._required(params, "refund_id")))
    return {"refund": {k: v for k, v in refund.items() if k in fields},
            "request_id": uuid.uuid4().hex}


def _fen(text: str) -> Decimal | None:
    try:
        return Decimal(int(text)) / 100
    except (ValueError, InvalidOperation):
        return None


def refunds_agree(index, shop: str, params: dict) -> dict:
    infos = [part for part in top._required(params, "refund_infos").split(",") if part]
    if len(infos) > MAX_AGREE_BATCH:
        raise top.Refusal(top.INVALID_ARGUMENT, f"at most {MAX_AGREE_BATCH} refunds per call")
    now = datetime.now(timezone.utc)
    results = []
    with index.state.lock:
        for info in infos:
            results.append(_agree_one(index, shop, info, now))
    succeeded = sum(1 for r in results if r["succ"])
    code = "OP_SUCC" if succeeded == len(results) else ("SOME_OP_SUCC" if succeeded else "OP_FAILURE_UE")
    return {"msg_code": code, "succ": succeeded == len(results),
            "message": "操作成功" if succeeded else results[0]["message"],
            "results": {"refund_mapping_result": results}, "request_id": uuid.uuid4().hex}


def _agree_one(index, shop: str, info: str, now: datetime) -> dict:
    parts = info.split("|")
    if len(parts) != 4 or not parts[0].isdigit() or _fen(parts[1]) is None or not parts[2].isdigit():
        return {"refund_id": parts[0], "succ": False,
                "message": "refund_infos: refund_id|amount(分)|version|phase"}
    request = neutral.find(index.state, shop, int(parts[0]))
    if request is None or request.kind != neutral.REFUND_ONLY:
        return {"refund_id": parts[0], "succ": False, "message": "isv.refund-not-exist"}
    problem = neutral.answer(request, agree=True, amount=_fen(parts[1]), note="",
                             now=now, version=int(parts[2]))
    if problem is None:
        return {"refund_id": parts[0], "succ": True, "message": "操作成功"}
    return {"refund_id": parts[0], "succ": False, "message": ERRORS[problem]}


def _answer(index, shop: str, params: dict, agree: bool, note: str) -> dict:
    now = datetime.now(timezone.utc)
    version = params.get("refund_version", "")
    with index.state.lock:
        request = _request(index, shop, top._required(params, "refund_id"))
        if agree and request.kind != neutral.RETURN_AND_REFUND:
            raise top.Refusal(top.INVALID_ARGUMENT, "not a return-and-refund request")
        problem = neutral.answer(request, agree=agree, amount=None, note=note, now=now,
                                 version=int(version) if version.isdigit() else None)
    if problem is not None:
        raise top.Refusal(top.TopError(15, "Remote service error", ERRORS[problem]), problem)
    return {"is_success": True, "request_id": uuid.uuid4().hex}


def returngoods_agree(index, shop: str, params: dict) -> dict:
    return _answer(index, shop, params, agree=True, note=params.get("memo", ""))


def refund_refuse(index, shop: str, params: dict) -> dict:
    note = top._required(params, "refuse_message")
    return _answer(index, shop, params, agree=False, note=note)


HANDLERS = {
    RECEIVE: receive_get,
    REFUND_GET: refund_get,
    AGREE: refunds_agree,
    RETURN_AGREE: returngoods_agree,
    REFUSE: refund_refuse,
}
top.HANDLERS.update(HANDLERS)
