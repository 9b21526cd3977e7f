"""Shopify after-sales: customers' return requests read and answered through the GraphQL
Admin API.

Shopify has no REST resource for returns and no buyer-initiated "refund only" request: a
buyer asks to send items back (a `Return` in status REQUESTED), the merchant approves
(`returnApproveRequest`) or declines (`returnDeclineRequest`), and refunds are the
merchant's own later act. Returns hang off orders only (`Order.returns`), so requests are
read as the returns of orders updated in the window. The calls go through the REST
connector's `_call` (same token header, pacing and error translation) to `graphql.json`.
Facts and their confidence are in docs/after-sales-apis.md ("Shopify").

Shopify states no asked amount and no answer deadline: the amount is what the returned
line items cost (unit price times quantity, in the shop's currency, before discounts and
fees), and `respond_by` is None.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from connectors.after_sales import buyer_ref, checked_amount, once_per_window, refusal_reason
from connectors.base import (
    AfterSalesDecision,
    AfterSalesLine,
    AfterSalesRequest,
    PushResult,
    RawAfterSales,
)
from connectors.shopify_mapping import PLATFORM
from oms.domain.errors import MappingError, Rejected, Unavailable

if TYPE_CHECKING:
    from connectors.shopify import ShopifyConnector

GRAPHQL_PATH = "/graphql.json"  # [H] POST /admin/api/{version}/graphql.json
ORDERS_PER_PAGE = 50  # [M] first ≤ 250; returns are nested, so pages stay small
RETURNS_PER_ORDER, LINES_PER_RETURN = 20, 50  # nested page sizes [L: ours]

# [H] ReturnStatus values -> ours; OPEN is an approved return still in progress.
STATUS_TABLE = {"REQUESTED": "requested", "OPEN": "agreed", "DECLINED": "refused",
                "CLOSED": "closed", "CANCELED": "closed"}
# [M] ReturnReason values (deprecated in newer versions for returnReasonDefinition [L]).
REASON_CODES = {"DEFECTIVE": "quality", "NOT_AS_DESCRIBED": "not_as_described",
                "WRONG_ITEM": "wrong_item", "SIZE_TOO_SMALL": "size", "SIZE_TOO_LARGE": "size",
                "UNWANTED": "no_longer_wanted", "STYLE": "no_longer_wanted",
                "COLOR": "no_longer_wanted"}
UNRECOGNISED_REASON = "unrecognised"
# [M] ReturnDeclineReason values; OTHER when the decision names none.
DECLINE_REASONS = frozenset({"RETURN_PERIOD_ENDED", "FINAL_SALE", "OTHER"})
DEFAULT_DECLINE_REASON = "OTHER"
DECLINE_NOTE_LIMIT = 500  # [H] ReturnDecline.note "Maximum length: 500 characters"

# `createdAt` on Return is [L] (not confirmed in the stored material); `exchangeLineItems`
# and `decline{reason note}` [M]; the order search syntax is [M].
LIST_QUERY = """
query AfterSalesReturns($first: Int!, $after: String, $search: String!) {
  orders(first: $first, after: $after, query: $search, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id updatedAt customer { id }
      returns(first: %d) {
        nodes {
          id name status createdAt totalQuantity decline { reason note }
          exchangeLineItems(first: %d) { nodes { id } }
          returnLineItems(first: %d) {
            nodes {
              ... on ReturnLineItem {
                id quantity returnReason returnReasonNote customerNote
                fulfillmentLineItem { lineItem {
                  id sku originalUnitPriceSet { shopMoney { amount currencyCode } } } }
              }
            }
          }
        }
      }
    }
  }
}
""" % (RETURNS_PER_ORDER, LINES_PER_RETURN, LINES_PER_RETURN)
APPROVE_MUTATION = """
mutation AfterSalesApprove($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) { return { id status } userErrors { code field message } }
}
"""
DECLINE_MUTATION = """
mutation AfterSalesDecline($input: ReturnDeclineRequestInput!) {
  returnDeclineRequest(input: $input) { return { id status } userErrors { code field message } }
}
"""


# ---- mapping (pure) ---------------------------------------------------------------------


def _nodes(holder: Any, name: str) -> list:
    connection = holder.get(name) if isinstance(holder, dict) else None
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    return nodes if isinstance(nodes, list) else []


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def raw_returns_of(order: Any) -> list[RawAfterSales]:
    """One payload per return of an order node; the order's id, update time and customer
    ride along because the return does not carry them."""
    order = order if isinstance(order, dict) else {}
    context = {key: order.get(key) for key in ("id", "updatedAt", "customer")}
    raws = []
    for node in _nodes(order, "returns"):
        payload = {**(node if isinstance(node, dict) else {"unreadable": node}), "order": context}
        request_id = payload.get("id")
        raws.append(RawAfterSales(
            platform_request_id=str(request_id) if request_id else None,
            platform_updated_at=_instant(order.get("updatedAt")), payload=payload))
    return raws


def _line(node: Any, where: str, reasons: list[str]) -> tuple[AfterSalesLine, Decimal, str]:
    node = node if isinstance(node, dict) else {}
    fulfilled = _dict(node.get("fulfillmentLineItem"))
    item = _dict(fulfilled.get("lineItem"))
    quantity = node.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        reasons.append(f"{where}.quantity: not a quantity: {quantity!r}")
        quantity = 0
    if not item.get("id"):
        reasons.append(f"{where}.fulfillmentLineItem.lineItem.id: missing")
    price = item.get("originalUnitPriceSet")
    money = price.get("shopMoney") if isinstance(price, dict) else None
    if not isinstance(money, dict):
        reasons.append(f"{where}.fulfillmentLineItem.lineItem.originalUnitPriceSet: missing")
        money = {}
    try:
        unit = Decimal(str(money.get("amount")))
    except InvalidOperation:
        unit = Decimal(0)
        if money:
            reasons.append(f"{where}...shopMoney.amount: not money: {money.get('amount')!r}")
    amount = unit * quantity
    line = AfterSalesLine(_legacy_id(item.get("id")), item.get("sku") or None, quantity, amount)
    return line, amount, str(money.get("currencyCode") or "")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _legacy_id(gid: Any) -> str:
    """`gid://shopify/LineItem/123` -> "123", the REST id our orders carry."""
    return str(gid or "").rsplit("/", 1)[-1]


def to_after_sales(raw: RawAfterSales, shop_code: str) -> AfterSalesRequest:
    """A Shopify return as our request; every wrong field is named together."""
    payload, reasons = raw.payload, []
    order = _dict(payload.get("order"))
    request_id = str(payload.get("id") or "")
    if not request_id:
        reasons.append("id: missing")
    if not order.get("id"):
        reasons.append("order.id: missing")
    platform_status = str(payload.get("status") or "")
    if platform_status not in STATUS_TABLE:
        reasons.append(f"status: unknown return status {platform_status!r}")
    created, updated = _instant(payload.get("createdAt")), _instant(order.get("updatedAt"))
    if created is None:
        reasons.append(f"createdAt: not a time: {payload.get('createdAt')!r}")
    if updated is None:
        reasons.append(f"order.updatedAt: not a time: {order.get('updatedAt')!r}")
    nodes = _nodes(payload, "returnLineItems")
    if not nodes:
        reasons.append("returnLineItems: none")
    read = [_line(node, f"returnLineItems[{n}]", reasons) for n, node in enumerate(nodes)]
    currencies = {currency for _, _, currency in read if currency}
    if read and len(currencies) != 1:
        reasons.append(f"returnLineItems: no single currency: {sorted(currencies)}")
    if reasons:
        raise MappingError([f"return {request_id or '?'}: {reason}" for reason in reasons])
    first = nodes[0] if isinstance(nodes[0], dict) else {}
    reason = str(first.get("returnReason") or "")
    customer = _dict(order.get("customer"))
    exchanging = bool(_nodes(payload, "exchangeLineItems"))
    return AfterSalesRequest(
        platform=PLATFORM, shop_code=shop_code, platform_request_id=request_id,
        platform_order_id=_legacy_id(order.get("id")),
        kind="exchange" if exchanging else "return_and_refund",
        status=STATUS_TABLE[platform_status], platform_status=platform_status,
        amount=sum((amount for _, amount, _ in read), Decimal(0)), currency=currencies.pop(),
        reason_code=REASON_CODES.get(reason, UNRECOGNISED_REASON),
        # the buyer's own words where given, else Shopify's reason code
        reason_text=str(first.get("customerNote") or first.get("returnReasonNote") or reason),
        lines=tuple(line for line, _, _ in read), created_at=created, updated_at=updated,
        respond_by=None,  # Shopify sets the merchant no deadline [M]
        buyer_ref=buyer_ref(PLATFORM, customer.get("id")),
    )


# ---- the wire (through the connector) ---------------------------------------------------


def _graphql(connector: ShopifyConnector, query: str, variables: dict) -> dict:
    _, body = connector._call("POST", GRAPHQL_PATH, json={"query": query, "variables": variables})
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:  # a query Shopify could not run (throttled, unknown field, …) [H shape]
        code = None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = (errors[0].get("extensions") or {}).get("code")
        kind = Unavailable if code in ("THROTTLED", "INTERNAL_SERVER_ERROR") else Rejected
        raise kind(f"graphql.json: {errors}", platform=PLATFORM, code=code, body=body)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise Unavailable("graphql.json answered without data", platform=PLATFORM, body=body)
    return data


def _search(start: datetime, end: datetime) -> str:
    """Shopify's order search over update time [M syntax], whole seconds widened outwards;
    what falls outside [start, end) is dropped after reading."""
    first = start.astimezone(timezone.utc).replace(microsecond=0)
    last = end.astimezone(timezone.utc)
    if last.microsecond:
        last = last.replace(microsecond=0) + timedelta(seconds=1)
    return (f"updated_at:>='{first.isoformat().replace('+00:00', 'Z')}' "
            f"AND updated_at:<'{last.isoformat().replace('+00:00', 'Z')}'")


def fetch_after_sales(connector: ShopifyConnector, start: datetime, end: datetime
                      ) -> Iterator[list[RawAfterSales]]:
    """Returns of the orders updated in [start, end), each return once."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("windows must be timezone-aware")

    def pages() -> Iterator[list[RawAfterSales]]:
        variables: dict[str, Any] = {"first": ORDERS_PER_PAGE, "after": None,
                                     "search": _search(start, end)}
        while True:
            orders = _graphql(connector, LIST_QUERY, variables).get("orders")
            nodes = orders.get("nodes") if isinstance(orders, dict) else None
            info = orders.get("pageInfo") if isinstance(orders, dict) else None
            if not isinstance(nodes, list) or not isinstance(info, dict):
                raise Unavailable("orders answered without nodes or pageInfo", platform=PLATFORM)
            yield [raw for order in nodes for raw in raw_returns_of(order)
                   if raw.platform_updated_at is None or start <= raw.platform_updated_at < end]
            if not info.get("hasNextPage"):
                return
            variables = {**variables, "after": info.get("endCursor")}

    return once_per_window(pages())


def answer_after_sales(connector: ShopifyConnector, request: AfterSalesRequest,
                       decision: AfterSalesDecision) -> PushResult:
    if decision.agree:
        # Approving takes no amount: the refund is a later, separate act [M]. We still
        # refuse an agreement for more than the goods cost.
        checked_amount(request, decision)
        sent = {"input": {"id": request.platform_request_id, "notifyCustomer": True}}
        field = "returnApproveRequest"
        data = _graphql(connector, APPROVE_MUTATION, sent)
    else:
        note = refusal_reason(request, decision)
        reason = decision.refuse_reason_code or DEFAULT_DECLINE_REASON
        if reason not in DECLINE_REASONS:
            raise Rejected(f"shopify return {request.platform_request_id}: {reason!r} is not a "
                           f"decline reason ({', '.join(sorted(DECLINE_REASONS))})",
                           platform=PLATFORM, code="refuse_reason_required")
        sent = {"input": {"id": request.platform_request_id, "declineReason": reason,
                          "declineNote": note[:DECLINE_NOTE_LIMIT], "notifyCustomer": True}}
        field = "returnDeclineRequest"
        data = _graphql(connector, DECLINE_MUTATION, sent)
    result = data.get(field) if isinstance(data.get(field), dict) else {}
    user_errors = result.get("userErrors") or []
    if user_errors:  # HTTP 200 with the refusal inside [H]
        first = user_errors[0] if isinstance(user_errors[0], dict) else {}
        raise Rejected(f"{field}: {first.get('message') or user_errors}", platform=PLATFORM,
                       code=first.get("code"), body=data)
    return PushResult(request=sent, response=result)
