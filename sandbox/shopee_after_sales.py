"""Shopee returns on the v2 gateway simulator (docs/after-sales-apis.md, "Shopee").

* `GET /api/v2/returns/get_return_list` [H schema]: `page_no` from 0 [L: the doc reads
  as page or offset], `page_size` ≤ 100, `update_time_from`/`update_time_to` unix seconds
  at most 15 days apart (both ends included here [L]); answers `response{more, return[]}`
  with the return's currency, `refund_amount` as a float, `due_date`, `return_solution`
  (0 return and refund, 1 refund only) and `item[]{item_id, model_id, amount, item_price,
  item_sku, variation_sku}`. Exchanges do not exist on Shopee and are not served.
* `POST /api/v2/returns/confirm` [H]: `{return_sn}` accepts the return.
* `POST /api/v2/returns/dispute` [H]: `{return_sn, email, dispute_reason_id,
  dispute_text_reason, image_list}`; images are required for every reason except "did
  not receive the returned item" [H].

The gateway's one catch-all route answers unknown APIs with 404, so this module wraps
`sandbox.shopee.build_router` and puts its own route in front of that one; faults,
signature and token are checked by the gateway's own `authenticate`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

import sandbox.shopee as gateway
from sandbox import after_sales as neutral
from sandbox.model import SandboxState
from sandbox.shopee_render import (
    ShopeeError,
    bad_parameter,
    item_has_models,
    item_id_of,
    item_of,
    model_id_of,
    order_sn,
    seconds,
)

LIST, CONFIRM, DISPUTE = ("/api/v2/returns/get_return_list", "/api/v2/returns/confirm",
                          "/api/v2/returns/dispute")
METHODS = {LIST: "GET", CONFIRM: "POST", DISPUTE: "POST"}
SERVED_KINDS = (neutral.REFUND_ONLY, neutral.RETURN_AND_REFUND)
SOLUTION = {neutral.RETURN_AND_REFUND: 0, neutral.REFUND_ONLY: 1}  # [H]
STATUS = {neutral.REQUESTED: "REQUESTED", neutral.AGREED: "ACCEPTED",
          neutral.GOODS_RETURNED: "ACCEPTED", neutral.REFUSED: "JUDGING",
          neutral.REFUNDED: "COMPLETED", neutral.CLOSED: "CANCELLED"}  # [M]/[L]
MAX_WINDOW_SECONDS, MAX_PAGE_SIZE = 15 * 86400, 100  # [H]

# --- UNVERIFIED [L]: reason values, dispute reason ids, the business errors ---------------
REASONS = {"quality": "FUNCTIONAL_DMG", "not_as_described": "DIFF_DESC", "wrong_item": "WRONG_ITEM",
           "damaged": "PHYSICAL_DMG", "size": "DIFF_DESC", "no_longer_wanted": "CHANGE_MIND",
           "not_received": "NOT_RECEIPT", neutral.UNKNOWN_REASON: "SANDBOX_OTHER"}
NOT_RECEIVED_DISPUTE_ID = 1  # "did not receive the returned item": needs no images
DISPUTE_REASON_IDS = {1, 2, 3, 4}
ERRORS = {
    neutral.ALREADY_ANSWERED: ShopeeError("returns.error_status",
                                          "The return status does not allow this action."),
    neutral.PAST_DEADLINE: ShopeeError("returns.error_due_date", "The return is past its due date."),
    neutral.AMOUNT_TOO_HIGH: ShopeeError("returns.error_amount", "Amount is invalid."),
    neutral.WRONG_VERSION: ShopeeError("returns.error_status",
                                       "The return status does not allow this action."),
}
NOT_FOUND = ShopeeError("returns.error_not_found", "Return not found.")
# --- end UNVERIFIED


def return_sn(request: neutral.SimAfterSale) -> str:
    return str(request.request_id)


def render_item(request: neutral.SimAfterSale) -> dict:
    line, shop = request.line, request.shop
    key = line.sku or line.title
    has_models = item_has_models(item_of(key))
    return {"item_id": item_id_of(shop, item_of(key)),
            "model_id": model_id_of(shop, key) if has_models else 0, "name": line.title,
            "images": [], "amount": request.quantity, "item_price": float(line.unit_price),
            "is_add_on_deal": False, "is_main_item": False, "add_on_deal_id": 0,
            "item_sku": "" if has_models else (line.sku or ""),
            "variation_sku": (line.sku or "") if has_models else ""}


def buyer_nickname(order) -> str:
    """A made-up, stable nickname: Shopee names buyers by nickname only."""
    digest = hashlib.sha1(f"shopee-buyer|{order.buyer_id or order.order_id}".encode()).hexdigest()
    return f"buyer_{digest[:8]}"


def render_return(request: neutral.SimAfterSale) -> dict:
    order = request.order
    entry = {
        "return_sn": return_sn(request), "order_sn": order_sn(order),
        "status": STATUS[request.status], "return_solution": SOLUTION[request.kind],
        "needs_logistics": request.kind == neutral.RETURN_AND_REFUND,
        "currency": order.currency, "create_time": seconds(request.created_at),
        "update_time": seconds(request.updated_at), "due_date": seconds(request.respond_by),
        "reason": REASONS[request.reason], "text_reason": request.description,
        "image": list(request.evidence), "tracking_number": request.return_tracking or "",
        "amount_before_discount": float(request.asked),
        "user": {"username": buyer_nickname(order),
                 "email": "****", "portrait": ""},
        "item": [render_item(request)], "negotiation_status": "PENDING_RESPOND",
        "seller_proof_status": "PENDING", "seller_compensation_status": "PENDING_REQUEST",
        "return_refund_type": "RRBOC", "validation_type": "seller_validation",
        "dispute_reason": [], "dispute_text_reason": [],
    }
    if request.amount is not None:
        entry["refund_amount"] = float(request.amount)
    return entry


def _served(state: SandboxState, shop: str, wanted: str) -> neutral.SimAfterSale | None:
    return next((r for r in neutral.requests_of(state).get(shop, ())
                 if r.kind in SERVED_KINDS and return_sn(r) == wanted), None)


def return_list(state: SandboxState, shop: str, params: dict, body: dict) -> dict:
    time_from = gateway._int(params, "update_time_from")
    time_to = gateway._int(params, "update_time_to")
    if time_from > time_to or time_to - time_from > MAX_WINDOW_SECONDS:
        raise gateway.Refusal(bad_parameter("The period between update_time_from and "
                                            "update_time_to must not more than 15 days"))
    page_no, size = gateway._int(params, "page_no", 0), gateway._int(params, "page_size", 40)
    if page_no < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise gateway.Refusal(bad_parameter(f"page_size should be 1-{MAX_PAGE_SIZE}"))
    begin = datetime.fromtimestamp(time_from, timezone.utc)
    end = datetime.fromtimestamp(time_to + 1, timezone.utc)  # both ends included
    with state.lock:
        listed = [r for r in neutral.updated_between(state, shop, begin, end, include_end=False)
                  if r.kind in SERVED_KINDS]
        page = [render_return(r) for r in listed[page_no * size:(page_no + 1) * size]]
    return {"response": {"more": (page_no + 1) * size < len(listed), "return": page}}


def _answer(state: SandboxState, shop: str, body: dict, agree: bool, note: str) -> dict:
    wanted = str(body.get("return_sn") or "")
    if not wanted:
        raise gateway.Refusal(bad_parameter("return_sn is required"))
    with state.lock:
        request = _served(state, shop, wanted)
        if request is None:
            raise gateway.Refusal(NOT_FOUND)
        problem = neutral.answer(request, agree=agree, amount=None, note=note,
                                 now=datetime.now(timezone.utc))
    if problem is not None:
        raise gateway.Refusal(ERRORS[problem])
    return {"response": {"return_sn": wanted} if agree else
            {"return_sn": wanted, "msg": "dispute return success"}}


def confirm(state: SandboxState, shop: str, params: dict, body: dict) -> dict:
    return _answer(state, shop, body, agree=True, note="")


def dispute(state: SandboxState, shop: str, params: dict, body: dict) -> dict:
    if not str(body.get("email") or "").strip():
        raise gateway.Refusal(bad_parameter("email is required"))
    reason_id = body.get("dispute_reason_id")
    if reason_id not in DISPUTE_REASON_IDS:
        raise gateway.Refusal(bad_parameter("dispute_reason_id is invalid"))
    if reason_id != NOT_RECEIVED_DISPUTE_ID and not body.get("image_list"):
        raise gateway.Refusal(bad_parameter("image_list is required for this dispute reason"))
    return _answer(state, shop, body, agree=False, note=str(body.get("dispute_text_reason") or ""))


HANDLERS = {LIST: return_list, CONFIRM: confirm, DISPUTE: dispute}


def add_returns_route(router: APIRouter, state: SandboxState) -> None:
    async def shopee_returns(name: str, request: Request) -> Response:
        api_path = f"{gateway.API_PREFIX}/returns/{name}"
        fault = state.faults.take(gateway.PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        if METHODS.get(api_path) != request.method:
            return JSONResponse({"request_id": uuid.uuid4().hex, "error": "error_not_found",
                                 "message": "Wrong parameters, detail: api not found."}, 404)
        params = {key: ",".join(request.query_params.getlist(key)) for key in request.query_params}
        try:
            if kind == "rate_limit":
                raise gateway.Refusal(gateway.THROTTLED)
            shop = gateway.authenticate(state, api_path, params, False, kind == "expired_token")
            body = json.loads(await request.body() or b"{}") if request.method == "POST" else {}
            result = HANDLERS[api_path](state, shop, params, body if isinstance(body, dict) else {})
        except gateway.Refusal as refusal:
            return gateway.error_response(refusal)
        except ValueError:
            return gateway.error_response(gateway.Refusal(bad_parameter("body is not JSON")))
        return JSONResponse({"request_id": uuid.uuid4().hex, "error": "", "message": "", **result})

    router.add_api_route(gateway.ROUTE_PREFIX + gateway.API_PREFIX + "/returns/{name}",
                         shopee_returns, methods=["GET", "POST"])
    # The gateway's catch-all would answer first with "api not found": ours goes in front.
    router.routes.insert(0, router.routes.pop())


_build_gateway_router = gateway.build_router


def build_router(state: SandboxState) -> APIRouter:
    """The gateway's router with the returns APIs in front of its catch-all route."""
    router = _build_gateway_router(state)
    add_returns_route(router, state)
    return router


gateway.build_router = build_router
