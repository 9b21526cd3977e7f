"""Pinduoduo after-sales against the sandbox's POP router: read, deduplicated, mapped, answered."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors import pinduoduo_after_sales as after_sales
from connectors.base import AfterSalesDecision, ShopAccess
from connectors.pinduoduo import PinduoduoConnector
from oms.domain.errors import MappingError, Rejected
from sandbox import after_sales as neutral
from sandbox import pinduoduo as sim
from sandbox.generator import populate

UTC = timezone.utc


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def requests(sandbox, shop_name, now):
    populate(sandbox.state, shop_name, count=60, seed=23, now=now)
    made = neutral.seed_after_sales(sandbox.state, shop_name, seed=23, now=now, span_hours=3)
    assert len(made) >= 8 and {r.kind for r in made} >= {"refund_only", "return_and_refund"}
    return made


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


class RecordingClient(httpx.Client):
    def __init__(self) -> None:
        self.types: list[str] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.types.append(httpx.QueryParams(request.content.decode())["type"])


def connect(sandbox, shop_name, credentials, http=None) -> PinduoduoConnector:
    access = ShopAccess(shop_name, "pdd", f"{sandbox.url}/pdd", credentials)
    return PinduoduoConnector(access, http=http)


def fetched(connector, now):
    start, end = now - timedelta(hours=4), now + timedelta(minutes=2)  # answers move updated_at
    return [raw for page in connector.fetch_after_sales(start, end) for raw in page]


def mapped(connector, now):
    good, bad = {}, {}
    for raw in fetched(connector, now):
        try:
            good[raw.platform_request_id] = connector.to_after_sales(raw)
        except MappingError as error:
            bad[raw.platform_request_id] = error
    return good, bad


def test_every_request_comes_once_even_when_served_on_two_pages(
    sandbox, shop_name, credentials, requests, now, monkeypatch
):
    monkeypatch.setattr(after_sales, "PAGE_SIZE", 2)
    http = RecordingClient()
    ids = Counter(raw.platform_request_id for raw in fetched(connect(sandbox, shop_name, credentials, http), now))
    assert set(ids) == {str(r.request_id) for r in requests} and max(ids.values()) == 1
    assert http.types.count(after_sales.LIST) > 8  # 30-minute slices, several pages


def test_requests_map_kind_amount_line_order_and_deadline(sandbox, shop_name, credentials, requests, now):
    good, bad = mapped(connect(sandbox, shop_name, credentials), now)
    for sim_request in requests:
        if sim_request.amount is None:
            assert "refund_amount: missing" in str(bad[str(sim_request.request_id)])
            continue
        request = good[str(sim_request.request_id)]
        assert request.platform_order_id == sim.order_sn(sim_request.order)
        assert (request.kind, request.status, request.amount) == (
            sim_request.kind, "requested", sim_request.amount)
        assert request.respond_by == sim_request.created_at + after_sales.RESPONSE_WINDOW
        assert request.lines[0].quantity == sim_request.quantity
        if "unknown_reason" in sim_request.defects:
            assert request.reason_code == "unrecognised"


def test_agree_moves_the_request_and_a_second_agree_gets_pdds_error(
    sandbox, shop_name, credentials, requests, now
):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.kind == "return_and_refund" and r.amount is not None)
    request = good[str(sim_request.request_id)]
    pdd = connect(sandbox, shop_name, credentials)
    result = pdd.answer_after_sales(request, AfterSalesDecision(agree=True, note="同意退货"))
    assert result.response["result"]["succ"] is True
    assert sim_request.status == neutral.AGREED
    again, _ = mapped(pdd, now)
    assert again[request.platform_request_id].platform_status == "7"

    with pytest.raises(Rejected) as caught:
        pdd.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert caught.value.code == 30201 and not caught.value.retryable


def test_an_answer_after_the_deadline_is_refused(sandbox, shop_name, credentials, requests, now):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.amount is not None)
    sim_request.respond_by = now - timedelta(seconds=5)
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            good[str(sim_request.request_id)], AfterSalesDecision(agree=True))
    assert caught.value.code == 30202 and sim_request.status == neutral.REQUESTED


def test_a_refusal_needs_a_reason(sandbox, shop_name, credentials, requests, now):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.kind == "refund_only" and r.amount is not None)
    request = good[str(sim_request.request_id)]
    http = RecordingClient()
    pdd = connect(sandbox, shop_name, credentials, http)
    with pytest.raises(Rejected) as caught:
        pdd.answer_after_sales(request, AfterSalesDecision(agree=False))
    assert caught.value.code == "refuse_reason_required" and http.types == []
    pdd.answer_after_sales(request, AfterSalesDecision(agree=False, note="已发货，请拒收"))
    assert sim_request.status == neutral.REFUSED
