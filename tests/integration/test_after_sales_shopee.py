"""Shopee returns against the sandbox's v2 gateway: read, deduplicated, mapped, confirmed
and disputed, over real HTTP."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors import shopee_after_sales as after_sales
from connectors.base import AfterSalesDecision, RawAfterSales, ShopAccess
from connectors.shopee import ShopeeConnector
from oms.domain.errors import MappingError, Rejected
from sandbox import after_sales as neutral
from sandbox import shopee as sim
from sandbox.generator import populate
from sandbox.shopee_after_sales import NOT_RECEIVED_DISPUTE_ID, render_item
from sandbox.shopee_render import order_sn

UTC = timezone.utc
SELLER_EMAIL = "returns@shop.example"


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def requests(sandbox, shop_name, now):
    populate(sandbox.state, shop_name, count=60, seed=14, now=now, market=sim.MARKET)
    made = neutral.seed_after_sales(sandbox.state, shop_name, seed=14, now=now, span_hours=30,
                                    kinds=(neutral.REFUND_ONLY, neutral.RETURN_AND_REFUND))
    assert len(made) >= 8 and {r.kind for r in made} == {"refund_only", "return_and_refund"}
    return made


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


class RecordingClient(httpx.Client):
    """Keeps the path, query and body of every request."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append({"path": request.url.path, **dict(request.url.params),
                          **json.loads(request.content or b"{}")})


def connect(sandbox, shop_name, credentials, http=None) -> ShopeeConnector:
    access = ShopAccess(shop_name, "shopee", f"{sandbox.url}/shopee", credentials)
    connector = ShopeeConnector(access, http=http)
    connector.dispute_email = SELLER_EMAIL
    return connector


def fetched(connector, now):
    start, end = now - timedelta(hours=31), now + timedelta(minutes=2)  # answers move update_time
    return [raw for page in connector.fetch_after_sales(start, end) for raw in page]


def mapped(connector, now):
    good, bad = {}, {}
    for raw in fetched(connector, now):
        try:
            good[raw.platform_request_id] = connector.to_after_sales(raw)
        except MappingError as error:
            bad[raw.platform_request_id] = error
    return good, bad


def _first(sandbox, shop_name, credentials, requests, now, kind):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.kind == kind and r.amount is not None
                       and r.status == neutral.REQUESTED)
    return sim_request, good[str(sim_request.request_id)]


def test_every_return_comes_once_even_on_two_pages_and_in_two_windows(
    sandbox, shop_name, credentials, requests, now, monkeypatch
):
    monkeypatch.setattr(after_sales, "PAGE_SIZE", 2)
    monkeypatch.setattr(after_sales, "MAX_WINDOW", timedelta(hours=12))
    http = RecordingClient()
    ids = Counter(raw.platform_request_id
                  for raw in fetched(connect(sandbox, shop_name, credentials, http), now))
    assert any("duplicate_on_pages" in r.defects for r in requests)
    assert set(ids) == {str(r.request_id) for r in requests} and max(ids.values()) == 1
    windows = {sent["update_time_from"] for sent in http.sent}
    assert len(windows) == 3 and max(int(sent["page_no"]) for sent in http.sent) >= 1


def test_returns_map_kind_amount_lines_order_deadline_and_the_shops_currency(
    sandbox, shop_name, credentials, requests, now
):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    for sim_request in requests:
        if sim_request.amount is None:
            continue
        request = good[str(sim_request.request_id)]
        assert request.platform_order_id == order_sn(sim_request.order)
        assert (request.kind, request.status, request.platform_status) == (
            sim_request.kind, "requested", "REQUESTED")
        assert request.amount == sim_request.amount and request.currency == "SGD"
        assert request.respond_by == sim_request.respond_by  # Shopee's own due_date
        [line] = request.lines
        item = render_item(sim_request)
        assert line.platform_line_id == f"{item['item_id']}:{item['model_id']}"
        assert (line.sku, line.quantity) == (sim_request.line.sku, sim_request.quantity)
        assert request.evidence_urls == tuple(sim_request.evidence)
        assert request.buyer_ref and not request.buyer_ref.startswith("buyer_")
        if "unknown_reason" in sim_request.defects:
            assert request.reason_code == "unrecognised" and request.reason_text


def test_a_return_without_its_amount_is_refused_by_the_mapping_naming_the_field(
    sandbox, shop_name, credentials, requests, now
):
    _, bad = mapped(connect(sandbox, shop_name, credentials), now)
    missing = [str(r.request_id) for r in requests if "missing_amount" in r.defects]
    assert missing and set(bad) == set(missing)
    assert all("refund_amount: missing" in str(bad[i]) for i in missing)


def test_a_dirty_payload_names_every_wrong_field(sandbox, shop_name, credentials):
    payload = {"return_sn": "9", "status": "WAITING", "return_solution": 2, "refund_amount": "x",
               "currency": "", "create_time": 0, "update_time": 1_700_000_000,
               "item": [{"item_id": 5, "amount": 0, "item_price": 1.5}]}
    with pytest.raises(MappingError) as caught:
        connect(sandbox, shop_name, credentials).to_after_sales(RawAfterSales("9", None, payload))
    for field in ("order_sn: missing", "status: unknown return status 'WAITING'",
                  "return_solution", "refund_amount: not money", "currency", "create_time",
                  "item[0].amount"):
        assert field in str(caught.value)


def test_confirming_accepts_the_return_and_a_second_confirm_gets_shopees_error(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "return_and_refund")
    shopee = connect(sandbox, shop_name, credentials)
    result = shopee.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert result.response["response"]["return_sn"] == request.platform_request_id
    assert sim_request.status == neutral.AGREED
    again, _ = mapped(shopee, now)
    assert (again[request.platform_request_id].platform_status,
            again[request.platform_request_id].status) == ("ACCEPTED", "agreed")

    with pytest.raises(Rejected) as caught:
        shopee.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert caught.value.code == "returns.error_status" and not caught.value.retryable
    assert len(sim_request.answers) == 1


def test_an_answer_after_the_due_date_is_refused(sandbox, shop_name, credentials, requests, now):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    sim_request.respond_by = now - timedelta(seconds=5)
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            request, AfterSalesDecision(agree=True))
    assert caught.value.code == "returns.error_due_date"
    assert sim_request.status == neutral.REQUESTED


def test_agreeing_more_than_asked_is_refused_before_any_call(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials, http).answer_after_sales(
            request, AfterSalesDecision(agree=True, amount=request.amount + Decimal("0.01")))
    assert caught.value.code == "amount_out_of_range" and http.sent == []


def test_a_dispute_needs_a_note_a_reason_id_and_the_sellers_email(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    shopee = connect(sandbox, shop_name, credentials, http)
    for decision in (AfterSalesDecision(agree=False, refuse_reason_code="1"),
                     AfterSalesDecision(agree=False, note="Parcel never came back")):
        with pytest.raises(Rejected) as caught:
            shopee.answer_after_sales(request, decision)
        assert caught.value.code == "refuse_reason_required"
    shopee.dispute_email = None
    with pytest.raises(Rejected) as caught:
        shopee.answer_after_sales(request, AfterSalesDecision(
            agree=False, note="Parcel never came back", refuse_reason_code="1"))
    assert caught.value.code == "dispute_email_required" and http.sent == []

    shopee.dispute_email = SELLER_EMAIL
    result = shopee.answer_after_sales(request, AfterSalesDecision(
        agree=False, note="Parcel never came back", refuse_reason_code=str(NOT_RECEIVED_DISPUTE_ID)))
    assert result.request["email"] == SELLER_EMAIL
    assert sim_request.status == neutral.REFUSED
    again, _ = mapped(shopee, now)
    assert again[request.platform_request_id].status == "refused"


def test_a_dispute_that_needs_proof_images_is_refused_by_shopee(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            request, AfterSalesDecision(agree=False, note="Item was used", refuse_reason_code="2"))
    assert caught.value.code == "error_param" and "image_list" in str(caught.value)
    assert sim_request.status == neutral.REQUESTED


def test_confirming_less_than_asked_is_refused_before_any_call_since_confirm_has_no_amount(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials, http).answer_after_sales(
            request, AfterSalesDecision(agree=True, amount=request.amount - Decimal("0.01")))
    assert caught.value.code == "partial_not_supported" and http.sent == []
    assert sim_request.status == neutral.REQUESTED
