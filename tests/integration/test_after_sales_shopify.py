"""Shopify return requests against the sandbox's Admin simulator (graphql.json): read,
deduplicated, mapped, approved and declined, over real HTTP."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors import shopify_after_sales as after_sales
from connectors.base import AfterSalesDecision, RawAfterSales, ShopAccess
from connectors.shopify import ShopifyConnector
from oms.domain.errors import MappingError, Rejected
from sandbox import after_sales as neutral
from sandbox.generator import populate
from sandbox.markets import UNITED_STATES
from sandbox.shopify import register_shop, shop_base_url
from sandbox.shopify_after_sales import line_item_id, return_gid

UTC = timezone.utc


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def requests(sandbox, shop_name, now):
    orders = populate(sandbox.state, shop_name, count=60, seed=22, now=now, market=UNITED_STATES)
    for order in orders:  # only delivered goods can be sent back on Shopify
        if order.status == "paid" and all(line.quantity > 0 for line in order.lines):
            order.status = "shipped"
    made = neutral.seed_after_sales(sandbox.state, shop_name, seed=22, now=now, span_hours=30,
                                    kinds=(neutral.RETURN_AND_REFUND, neutral.EXCHANGE))
    served = [r for r in made if r.order.status in ("shipped", "delivered")]
    assert len(served) >= 8 and {r.kind for r in served} == {"return_and_refund", "exchange"}
    return served


@pytest.fixture
def token(sandbox, shop_name, now):
    return register_shop(sandbox.state, shop_name, now)["access_token"]


class RecordingClient(httpx.Client):
    """Keeps the GraphQL variables of every request."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append(json.loads(request.content or b"{}"))


def connect(sandbox, shop_name, token, http=None) -> ShopifyConnector:
    access = ShopAccess(shop_name, "shopify", shop_base_url(sandbox.url, shop_name),
                        {"access_token": token})
    return ShopifyConnector(access, http=http)


def fetched(connector, now):
    start, end = now - timedelta(hours=31), now + timedelta(minutes=2)  # answers move updatedAt
    return [raw for page in connector.fetch_after_sales(start, end) for raw in page]


def mapped(connector, now):
    good, bad = {}, {}
    for raw in fetched(connector, now):
        try:
            good[raw.platform_request_id] = connector.to_after_sales(raw)
        except MappingError as error:
            bad[raw.platform_request_id] = error
    return good, bad


def _first(sandbox, shop_name, token, requests, now, kind="return_and_refund"):
    good, _ = mapped(connect(sandbox, shop_name, token), now)
    sim_request = next(r for r in requests if r.kind == kind and r.amount is not None
                       and r.status == neutral.REQUESTED)
    return sim_request, good[return_gid(sim_request)]


def test_every_return_comes_once_even_when_its_order_is_served_on_two_pages(
    sandbox, shop_name, token, requests, now, monkeypatch
):
    monkeypatch.setattr(after_sales, "ORDERS_PER_PAGE", 2)
    http = RecordingClient()
    ids = Counter(raw.platform_request_id
                  for raw in fetched(connect(sandbox, shop_name, token, http), now))
    assert any("duplicate_on_pages" in r.defects for r in requests)
    assert set(ids) == {return_gid(r) for r in requests} and max(ids.values()) == 1
    assert len(http.sent) > len(requests) // 2  # several pages, followed by cursor
    assert http.sent[1]["variables"]["after"] == "2"


def test_returns_map_kind_amount_lines_order_currency_and_no_deadline(
    sandbox, shop_name, token, requests, now
):
    good, _ = mapped(connect(sandbox, shop_name, token), now)
    for sim_request in requests:
        if sim_request.amount is None:
            continue
        request = good[return_gid(sim_request)]
        assert request.platform_order_id == str(sim_request.order.order_id)
        assert (request.kind, request.status, request.platform_status) == (
            sim_request.kind, "requested", "REQUESTED")
        # Shopify states no asked amount: what the returned goods cost, in the shop's currency
        assert request.amount == sim_request.line.unit_price * sim_request.quantity
        assert request.currency == "USD"
        assert request.respond_by is None and request.created_at == sim_request.created_at
        [line] = request.lines
        assert line.platform_line_id == str(line_item_id(sim_request.order, sim_request.line))
        assert (line.sku, line.quantity) == (sim_request.line.sku, sim_request.quantity)
        assert request.reason_text == sim_request.description
        assert request.buyer_ref and sim_request.order.buyer_id not in request.buyer_ref
        if "unknown_reason" in sim_request.defects:
            assert request.reason_code == "unrecognised"


def test_a_return_without_its_price_is_refused_by_the_mapping_naming_the_field(
    sandbox, shop_name, token, requests, now
):
    _, bad = mapped(connect(sandbox, shop_name, token), now)
    missing = [return_gid(r) for r in requests if "missing_amount" in r.defects]
    assert missing and set(bad) == set(missing)
    assert all("originalUnitPriceSet: missing" in str(bad[i]) for i in missing)


def test_a_dirty_payload_names_every_wrong_field(sandbox, shop_name, token):
    payload = {"id": "gid://shopify/Return/1", "status": "PENDING", "createdAt": "yesterday",
               "returnLineItems": {"nodes": [{"quantity": 0, "fulfillmentLineItem": {"lineItem": {}}}]},
               "order": {"updatedAt": "2026-12-01T10:00:00+08:00"}}
    with pytest.raises(MappingError) as caught:
        connect(sandbox, shop_name, token).to_after_sales(RawAfterSales("1", None, payload))
    for field in ("order.id: missing", "status: unknown return status 'PENDING'", "createdAt",
                  "returnLineItems[0].quantity", "lineItem.id: missing"):
        assert field in str(caught.value)


def test_approving_opens_the_return_and_a_second_approval_gets_shopifys_user_error(
    sandbox, shop_name, token, requests, now
):
    sim_request, request = _first(sandbox, shop_name, token, requests, now)
    shopify = connect(sandbox, shop_name, token)
    result = shopify.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert result.response["return"]["status"] == "OPEN"
    assert sim_request.status == neutral.AGREED
    again, _ = mapped(shopify, now)
    assert (again[request.platform_request_id].platform_status,
            again[request.platform_request_id].status) == ("OPEN", "agreed")

    with pytest.raises(Rejected) as caught:
        shopify.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert caught.value.code == "INVALID_STATE" and not caught.value.retryable
    assert len(sim_request.answers) == 1


def test_an_exchange_is_read_as_one_and_approved_the_same_way(sandbox, shop_name, token, requests, now):
    sim_request, request = _first(sandbox, shop_name, token, requests, now, kind="exchange")
    assert request.kind == "exchange"
    connect(sandbox, shop_name, token).answer_after_sales(request, AfterSalesDecision(agree=True))
    assert sim_request.status == neutral.AGREED


def test_shopify_sets_no_deadline_so_a_late_answer_is_still_taken(
    sandbox, shop_name, token, requests, now
):
    sim_request, request = _first(sandbox, shop_name, token, requests, now)
    sim_request.respond_by = now - timedelta(days=3)  # a deadline other platforms would enforce
    connect(sandbox, shop_name, token).answer_after_sales(request, AfterSalesDecision(agree=True))
    assert sim_request.status == neutral.AGREED


def test_agreeing_more_than_the_goods_cost_is_refused_before_any_call(
    sandbox, shop_name, token, requests, now
):
    sim_request, request = _first(sandbox, shop_name, token, requests, now)
    http = RecordingClient()
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, token, http).answer_after_sales(
            request, AfterSalesDecision(agree=True, amount=request.amount + Decimal("0.01")))
    assert caught.value.code == "amount_out_of_range" and http.sent == []


def test_a_decline_needs_a_note_and_a_known_reason_then_declines(
    sandbox, shop_name, token, requests, now
):
    sim_request, request = _first(sandbox, shop_name, token, requests, now)
    http = RecordingClient()
    shopify = connect(sandbox, shop_name, token, http)
    for decision in (AfterSalesDecision(agree=False),
                     AfterSalesDecision(agree=False, note="Worn", refuse_reason_code="WORN")):
        with pytest.raises(Rejected) as caught:
            shopify.answer_after_sales(request, decision)
        assert caught.value.code == "refuse_reason_required"
    assert http.sent == []

    result = shopify.answer_after_sales(request, AfterSalesDecision(
        agree=False, note="Final sale item", refuse_reason_code="FINAL_SALE"))
    assert result.request["input"]["declineReason"] == "FINAL_SALE"
    assert sim_request.status == neutral.REFUSED
    again, _ = mapped(shopify, now)
    assert again[request.platform_request_id].status == "refused"
    assert sim_request.answers[-1] == {"agree": False, "amount": None, "note": "Final sale item",
                                       "decline_reason": "FINAL_SALE"}


def test_the_other_rest_endpoints_still_answer_beside_graphql(sandbox, shop_name, token, requests):
    response = httpx.get(f"{shop_base_url(sandbox.url, shop_name)}/admin/api/2025-01/orders/count.json",
                         params={"status": "any"}, headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 200 and response.json()["count"] >= len(requests)
