"""Douyin (抖店) after-sales against the sandbox's Doudian gateway: read, deduplicated,
mapped, answered, over real HTTP."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors import douyin_after_sales as after_sales
from connectors.base import AfterSalesDecision, RawAfterSales, ShopAccess
from connectors.douyin import DouyinConnector
from oms.domain.errors import MappingError, Rejected
from sandbox import after_sales as neutral
from sandbox import douyin as sim
from sandbox.douyin_render import shop_order_id, sku_order_id
from sandbox.generator import populate

UTC = timezone.utc
RETURN_ADDRESS_ID = 7_001


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def requests(sandbox, shop_name, now):
    populate(sandbox.state, shop_name, count=60, seed=37, now=now)
    made = neutral.seed_after_sales(sandbox.state, shop_name, seed=37, now=now, span_hours=30)
    assert len(made) >= 8 and {r.kind for r in made} >= {"refund_only", "return_and_refund", "exchange"}
    return made


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


class RecordingClient(httpx.Client):
    """Keeps the method and business parameters of every request."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append({"method": request.url.params.get("method"),
                          **json.loads(request.content or b"{}")})


def connect(sandbox, shop_name, credentials, http=None) -> DouyinConnector:
    access = ShopAccess(shop_name, "douyin", f"{sandbox.url}/douyin", credentials)
    connector = DouyinConnector(access, http=http)
    connector.return_address_id = RETURN_ADDRESS_ID
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
    sim_request = next(r for r in requests if r.kind == kind and r.amount is not None)
    return sim_request, good[str(sim_request.request_id)]


def test_every_request_comes_once_even_when_served_on_two_pages_and_two_windows(
    sandbox, shop_name, credentials, requests, now, monkeypatch
):
    monkeypatch.setattr(after_sales, "PAGE_SIZE", 2)
    http = RecordingClient()
    ids = Counter(raw.platform_request_id
                  for raw in fetched(connect(sandbox, shop_name, credentials, http), now))
    assert any("duplicate_on_pages" in r.defects for r in requests)
    assert set(ids) == {str(r.request_id) for r in requests} and max(ids.values()) == 1
    lists = [sent for sent in http.sent if sent["method"] == after_sales.LIST]
    assert len({sent["update_start_time"] for sent in lists}) == 2  # 31 h: two 24 h windows
    assert max(sent["page"] for sent in lists) >= 1


def test_requests_map_kind_amount_lines_order_deadline_and_currency(
    sandbox, shop_name, credentials, requests, now
):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    for sim_request in requests:
        if sim_request.amount is None:
            continue
        request = good[str(sim_request.request_id)]
        assert request.platform_order_id == shop_order_id(sim_request.order)
        assert (request.kind, request.status, request.platform_status) == (
            sim_request.kind, "requested", "6")
        assert request.amount == sim_request.amount and request.currency == "CNY"
        assert request.respond_by == sim_request.respond_by  # Doudian's own status_deadline
        [line] = request.lines
        assert line.platform_line_id == sku_order_id(sim_request.line)
        assert (line.sku, line.quantity) == (sim_request.line.sku, sim_request.quantity)
        assert request.version == str(int(sim_request.updated_at.timestamp()))
        if "unknown_reason" in sim_request.defects:
            assert request.reason_code == "unrecognised" and request.reason_text


def test_a_request_without_its_amount_is_refused_by_the_mapping_naming_the_field(
    sandbox, shop_name, credentials, requests, now
):
    _, bad = mapped(connect(sandbox, shop_name, credentials), now)
    missing = [str(r.request_id) for r in requests if "missing_amount" in r.defects]
    assert missing and set(bad) == set(missing)
    assert all("aftersale_info.refund_amount: missing" in str(bad[i]) for i in missing)


def test_a_dirty_payload_names_every_wrong_field(sandbox, shop_name, credentials):
    payload = {"aftersale_info": {"aftersale_id": "8001", "aftersale_type": 6,
                                  "aftersale_status": "6", "refund_amount": 990,
                                  "apply_time": 0, "update_time": 1_700_000_000},
               "order_info": {"shop_order_id": "", "related_order_info": [{"sku_order_id": "9"}]}}
    with pytest.raises(MappingError) as caught:
        connect(sandbox, shop_name, credentials).to_after_sales(
            RawAfterSales("8001", None, payload))
    text = str(caught.value)
    for field in ("aftersale_type: 6 is not", "aftersale_status: not a code", "apply_time",
                  "order_info.shop_order_id: missing", "aftersale_item_num"):
        assert field in text


def test_agreeing_a_refund_only_pays_it_and_a_second_agree_gets_doudians_error(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    douyin = connect(sandbox, shop_name, credentials, http)
    result = douyin.answer_after_sales(request, AfterSalesDecision(agree=True, note="同意退款"))
    assert result.request["type"] == 201 and result.response["items"][0]["status_code"] == 0
    assert http.sent[-1]["items"][0]["update_time"] == int(request.version)
    assert sim_request.status == neutral.AGREED
    again, _ = mapped(douyin, now)
    assert (again[request.platform_request_id].platform_status,
            again[request.platform_request_id].status) == ("12", "refunded")

    with pytest.raises(Rejected) as caught:
        douyin.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert caught.value.code == "isv.business-failed:20309541" and not caught.value.retryable
    assert len(sim_request.answers) == 1


def test_agreeing_a_return_sends_the_return_address_and_waits_for_the_goods(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "return_and_refund")
    douyin = connect(sandbox, shop_name, credentials)
    result = douyin.answer_after_sales(request, AfterSalesDecision(agree=True, note="请寄回"))
    assert result.request["type"] == 101
    assert result.request["items"][0]["logistics"] == {"receiver_address_id": RETURN_ADDRESS_ID}
    again, _ = mapped(douyin, now)
    assert (again[request.platform_request_id].platform_status,
            again[request.platform_request_id].status) == ("7", "agreed")


def test_agreeing_a_return_without_a_return_address_is_refused_before_any_call(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "exchange")
    http = RecordingClient()
    douyin = connect(sandbox, shop_name, credentials, http)
    douyin.return_address_id = None
    with pytest.raises(Rejected) as caught:
        douyin.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert caught.value.code == "return_address_required" and http.sent == []
    assert sim_request.status == neutral.REQUESTED


def test_agreeing_more_than_the_buyer_asked_is_refused_before_any_call(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials, http).answer_after_sales(
            request, AfterSalesDecision(agree=True, amount=request.amount + Decimal("0.01")))
    assert caught.value.code == "amount_out_of_range" and http.sent == []


def test_an_answer_after_the_deadline_is_refused(sandbox, shop_name, credentials, requests, now):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    sim_request.respond_by = now - timedelta(seconds=5)
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            request, AfterSalesDecision(agree=True))
    assert caught.value.code == "isv.business-failed:aftersale-overdue"
    assert sim_request.status == neutral.REQUESTED


def test_an_answer_to_a_request_that_changed_since_it_was_read_is_refused(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    sim_request.updated_at += timedelta(seconds=30)  # the buyer edited it meanwhile
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            request, AfterSalesDecision(agree=True))
    assert caught.value.code == "isv.business-failed:aftersale-version"
    assert sim_request.status == neutral.REQUESTED


def test_a_refusal_needs_a_note_and_a_reject_reason_code(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "return_and_refund")
    http = RecordingClient()
    douyin = connect(sandbox, shop_name, credentials, http)
    for decision in (AfterSalesDecision(agree=False, refuse_reason_code="3"),
                     AfterSalesDecision(agree=False, note="商品已使用")):
        with pytest.raises(Rejected) as caught:
            douyin.answer_after_sales(request, decision)
        assert caught.value.code == "refuse_reason_required"
    assert http.sent == []

    result = douyin.answer_after_sales(
        request, AfterSalesDecision(agree=False, note="商品已使用", refuse_reason_code="3"))
    assert result.request["type"] == 102
    assert result.request["items"][0]["reject_reason_code"] == 3
    assert sim_request.status == neutral.REFUSED and sim_request.answers[-1]["note"] == "商品已使用"


def test_the_gateway_itself_refuses_a_refusal_without_reject_reason_code(
    sandbox, shop_name, credentials, requests, now
):
    target = next(r for r in requests if r.kind == "refund_only")
    douyin = connect(sandbox, shop_name, credentials)
    with pytest.raises(Rejected) as caught:
        douyin._call(after_sales.OPERATE, {"type": 202, "items": [
            {"aftersale_id": str(target.request_id), "reason": "x", "remark": "x"}]})
    assert caught.value.code == "isv.parameter-invalid"
    assert target.status == neutral.REQUESTED


def test_agreeing_less_than_asked_is_refused_before_any_call_since_operate_has_no_amount(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials, http).answer_after_sales(
            request, AfterSalesDecision(agree=True, amount=request.amount - Decimal("0.01")))
    assert caught.value.code == "partial_not_supported" and http.sent == []
    assert sim_request.status == neutral.REQUESTED
