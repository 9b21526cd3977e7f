"""Shopify return requests on the Admin simulator, through `graphql.json`.

Shopify serves returns only in the GraphQL Admin API (docs/after-sales-apis.md,
"Shopify"): `Order.returns`, `returnApproveRequest` and `returnDeclineRequest`. This is
not a GraphQL engine: it recognises the three operations by their root fields in the
query text, reads their variables and answers in the shape the connector's query asks
for. Any other query gets a GraphQL error.

* Orders are chosen by the `updated_at:>='…' AND updated_at:<'…'` search; an order's
  `updatedAt` moves with its returns (the simulator's choice [L]). An order listed twice
  while the seller pages (the `duplicate_on_pages` dirt) comes twice.
* Only requests to send goods back exist on Shopify: the neutral refund-only requests
  (on unshipped orders) are not served.
* Approving moves REQUESTED to OPEN, declining to DECLINED with its reason and note;
  anything else not REQUESTED is refused in `userErrors` with HTTP 200. Shopify sets no
  answer deadline, so none is enforced.

`sandbox.shopify` imports this module, which wraps its `build_router` to add the route.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import sandbox.shopify as shopify
from sandbox import after_sales as neutral
from sandbox.model import SandboxState, SimOrder
from sandbox.shopify_render import ID_FACTOR, SHOP_TIMEZONE, aware
from sandbox.shopify_render import _stable_id as stable_id  # the ids the REST payloads carry

SERVED_KINDS = (neutral.RETURN_AND_REFUND, neutral.EXCHANGE)
STATUS = {neutral.REQUESTED: "REQUESTED", neutral.AGREED: "OPEN", neutral.GOODS_RETURNED: "OPEN",
          neutral.REFUSED: "DECLINED", neutral.REFUNDED: "CLOSED", neutral.CLOSED: "CANCELED"}
DECLINE_REASONS = ("RETURN_PERIOD_ENDED", "FINAL_SALE", "OTHER")  # [M]
REASONS = {"quality": "DEFECTIVE", "damaged": "DEFECTIVE", "not_as_described": "NOT_AS_DESCRIBED",
           "wrong_item": "WRONG_ITEM", "size": "SIZE_TOO_SMALL", "no_longer_wanted": "UNWANTED",
           "not_received": "OTHER", neutral.UNKNOWN_REASON: "UNKNOWN"}  # [M] ReturnReason
_WINDOW = re.compile(r"updated_at:>='([^']+)'\s+AND\s+updated_at:<'([^']+)'")

# --- UNVERIFIED [L]: the userErrors codes and wording, the GraphQL error of a bad enum ---
NOT_REQUESTED = {"code": "INVALID_STATE", "field": ["input", "id"],
                 "message": "Return is not in a state that allows this action."}
NOT_FOUND = {"code": "NOT_FOUND", "field": ["input", "id"], "message": "Return does not exist."}
# --- end UNVERIFIED


def return_gid(request: neutral.SimAfterSale) -> str:
    return f"gid://shopify/Return/{request.request_id}"


def line_item_id(order: SimOrder, line) -> int:
    """The id `sandbox.shopify_render` gives the line on the order's REST payload."""
    return line.line_id or order.order_id * ID_FACTOR + order.lines.index(line) + 1


def _time(moment: datetime) -> str:
    return aware(moment).astimezone(SHOP_TIMEZONE).isoformat(timespec="seconds")


def _served(state: SandboxState, shop: str) -> list[neutral.SimAfterSale]:
    return [r for r in neutral.requests_of(state).get(shop, ())
            if r.kind in SERVED_KINDS and r.order.status in ("shipped", "delivered")]


def render_return(request: neutral.SimAfterSale) -> dict:
    order, line = request.order, request.line
    price = None if request.amount is None else {  # no price: the `missing_amount` dirt
        "shopMoney": {"amount": str(line.unit_price), "currencyCode": order.currency}}
    decline = next(({"reason": a.get("decline_reason", "OTHER"), "note": a["note"]}
                    for a in request.answers if not a["agree"]), None)
    return {
        "id": return_gid(request), "name": f"#{order.order_id}-R1",
        "status": STATUS[request.status], "createdAt": _time(request.created_at),
        "totalQuantity": request.quantity, "decline": decline,
        "exchangeLineItems": {"nodes": [{"id": f"gid://shopify/ExchangeLineItem/{request.request_id}"}]
                              if request.kind == neutral.EXCHANGE else []},
        "returnLineItems": {"nodes": [{
            "id": f"gid://shopify/ReturnLineItem/{request.request_id}", "quantity": request.quantity,
            "returnReason": REASONS[request.reason], "returnReasonNote": "",
            "customerNote": request.description,
            "fulfillmentLineItem": {"lineItem": {
                "id": f"gid://shopify/LineItem/{line_item_id(order, line)}", "sku": line.sku,
                "originalUnitPriceSet": price}},
        }]},
    }


def _order_updated(order: SimOrder, returns: list[neutral.SimAfterSale]) -> datetime:
    return max([aware(order.updated_at)] + [aware(r.updated_at) for r in returns])


def render_order(order: SimOrder, returns: list[neutral.SimAfterSale]) -> dict:
    customer = None
    if order.buyer_id:
        customer = {"id": f"gid://shopify/Customer/{stable_id('customer:' + order.buyer_id)}"}
    return {"id": f"gid://shopify/Order/{order.order_id}",
            "updatedAt": _time(_order_updated(order, returns)), "customer": customer,
            "returns": {"nodes": [render_return(r) for r in returns]}}


def list_orders(state: SandboxState, shop: str, variables: dict) -> dict:
    found = _WINDOW.search(str(variables.get("search") or ""))
    if not found:
        return {"errors": [{"message": "the sandbox reads only an updated_at window search",
                            "extensions": {"code": "BAD_SEARCH"}}]}
    begin, end = (aware(datetime.fromisoformat(text)) for text in found.groups())
    first, offset = int(variables.get("first") or 50), int(variables.get("after") or 0)
    with state.lock:
        by_order: dict[int, list[neutral.SimAfterSale]] = {}
        for request in _served(state, shop):
            by_order.setdefault(request.order.order_id, []).append(request)
        chosen = [(returns[0].order, returns) for returns in by_order.values()
                  if begin <= _order_updated(returns[0].order, returns) < end]
        chosen.sort(key=lambda pair: (_order_updated(*pair), pair[0].order_id))
        listed, pending = [], []
        for pair in chosen:  # an order with a request that changed while paging: twice
            listed.append(pair)
            listed.extend(pending)
            pending = [pair] if any("duplicate_on_pages" in r.defects for r in pair[1]) else []
        listed += pending
        page = [render_order(*pair) for pair in listed[offset:offset + first]]
    more = offset + first < len(listed)
    return {"data": {"orders": {"nodes": page, "pageInfo": {
        "hasNextPage": more, "endCursor": str(offset + first) if more else None}}}}


def _answer(state: SandboxState, shop: str, field: str, given: dict, agree: bool) -> dict:
    reason = given.get("declineReason")
    if not agree and reason not in DECLINE_REASONS:
        return {"errors": [{"message": f"Variable $input of type ReturnDeclineRequestInput! was "
                                       f"provided invalid value for declineReason ({reason!r})",
                            "extensions": {"code": "INVALID_VARIABLE"}}]}
    wanted = str(given.get("id") or "").rsplit("/", 1)[-1]
    now = datetime.now(timezone.utc)
    with state.lock:
        request = next((r for r in _served(state, shop) if str(r.request_id) == wanted), None)
        if request is None:
            problem = NOT_FOUND
        else:
            note = str(given.get("declineNote") or "")
            refused = neutral.answer(request, agree=agree, amount=None, note=note, now=now,
                                     deadline=False)
            problem = NOT_REQUESTED if refused else None
            if refused is None and not agree:
                request.answers[-1]["decline_reason"] = reason
    if problem is not None:
        return {"data": {field: {"return": None, "userErrors": [problem]}}}
    return {"data": {field: {"return": {"id": return_gid(request), "status": STATUS[request.status]},
                             "userErrors": []}}}


def run(state: SandboxState, shop: str, raw_body: bytes) -> dict:
    try:
        body = json.loads(raw_body or b"{}")
    except ValueError:
        return {"errors": [{"message": "body is not JSON", "extensions": {"code": "BAD_REQUEST"}}]}
    query, variables = str(body.get("query") or ""), body.get("variables") or {}
    given = variables.get("input") if isinstance(variables.get("input"), dict) else {}
    if "returnApproveRequest" in query:
        return _answer(state, shop, "returnApproveRequest", given, agree=True)
    if "returnDeclineRequest" in query:
        return _answer(state, shop, "returnDeclineRequest", given, agree=False)
    if "orders(" in query and "returns(" in query:
        return list_orders(state, shop, variables)
    return {"errors": [{"message": "the sandbox simulates only the after-sales operations",
                        "extensions": {"code": "UNSUPPORTED_BY_SANDBOX"}}]}


def add_graphql_route(router: APIRouter, state: SandboxState) -> None:
    door = shopify._FrontDoor(state)

    def answer(shop: str, request: Request, raw_body: bytes) -> Response:
        refusal, _ = door.admit(request, shop)
        if refusal:
            return refusal
        return door.reply(shop, 200, run(state, shop, raw_body))

    @router.post(shopify.PREFIX + "/graphql.json")
    async def graphql(shop: str, version: str, request: Request) -> Response:
        raw_body = await request.body()
        return await run_in_threadpool(answer, shop, request, raw_body)


_build_rest_router = shopify.build_router


def build_router(state: SandboxState) -> APIRouter:
    """The REST router with the GraphQL route of the after-sales operations added."""
    router = _build_rest_router(state)
    add_graphql_route(router, state)
    return router


shopify.build_router = build_router
