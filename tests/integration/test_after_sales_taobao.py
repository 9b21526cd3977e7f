"""Taobao refunds against the sandbox's TOP gateway: read, deduplicated, mapped, answered."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors import taobao_after_sales as after_sales
from connectors.base import AfterSalesDecision, ShopAccess
from connectors.taobao import TaobaoConnector, china_text, sign_params
from oms.domain.errors import MappingError, Rejected
from sandbox import after_sales as neutral
from sandbox import taobao as sim
from sandbox.generator import populate

UTC = timezone.utc


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def requests(sandbox, shop_name, now):
    populate(sandbox.state, shop_name, count=60, seed=11, now=now)
    made = neutral.seed_after_sales(sandbox.state, shop_name, seed=11, now=now,
                                    kinds=(neutral.REFUND_ONLY, neutral.RETURN_AND_REFUND))
    assert len(made) >= 8  # enough for every kind of dirt
    return made


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


class RecordingClient(httpx.Client):
    def __init__(self) -> None:
        self.methods: list[str] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.methods.append(dict(request.url.params)["method"])


def connect(sandbox, shop_name, credentials, http=None) -> TaobaoConnector:
    access = ShopAccess(shop_name, "taobao", f"{sandbox.url}/taobao", credentials)
    return TaobaoConnector(access, http=http)


def window(now):
    return now - timedelta(days=2), now + timedelta(minutes=2)  # answers move updated_at


def fetched(connector, now):
    return [raw for page in connector.fetch_after_sales(*window(now)) for raw in page]


def mapped(connector, now):
    good, bad = {}, {}
    for raw in fetched(connector, now):
        try:
            good[raw.platform_request_id] = connector.to_after_sales(raw)
        except MappingError as error:
            bad[raw.platform_request_id] = error
    return good, bad


def test_every_refund_comes_once_even_when_taobao_serves_it_on_two_pages(
    sandbox, shop_name, credentials, requests, now, monkeypatch
):
    monkeypatch.setattr(after_sales, "PAGE_SIZE", 3)  # duplicates then straddle pages
    http = RecordingClient()
    ids = Counter(raw.platform_request_id for raw in fetched(connect(sandbox, shop_name, credentials, http), now))
    assert any("duplicate_on_pages" in r.defects for r in requests)
    assert set(ids) == {str(r.request_id) for r in requests}
    assert max(ids.values()) == 1
    assert http.methods.count(after_sales.RECEIVE) > 2  # it really paged


def test_refunds_map_to_their_order_line_amount_kind_and_deadline(
    sandbox, shop_name, credentials, requests, now
):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    for sim_request in requests:
        if sim_request.amount is None:
            continue
        request = good[str(sim_request.request_id)]
        assert request.platform_order_id == str(sim.tid(sim_request.order))
        assert request.kind == sim_request.kind and request.status == "requested"
        assert request.amount == sim_request.amount and request.currency == "CNY"
        assert request.respond_by == sim_request.respond_by
        [line] = request.lines
        assert (line.sku, line.quantity) == (sim_request.line.sku, sim_request.quantity)
        assert request.buyer_ref and "t***" not in request.buyer_ref


def test_a_refund_without_its_amount_is_refused_by_the_mapping_naming_the_field(
    sandbox, shop_name, credentials, requests, now
):
    good, bad = mapped(connect(sandbox, shop_name, credentials), now)
    missing = [str(r.request_id) for r in requests if "missing_amount" in r.defects]
    assert missing and set(bad) == set(missing)
    assert all("refund_fee: missing" in str(bad[i]) for i in missing)


def test_a_reason_no_table_knows_is_kept_as_text(sandbox, shop_name, credentials, requests, now):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    odd = [r for r in requests if "unknown_reason" in r.defects and r.amount is not None]
    assert odd
    for sim_request in odd:
        request = good[str(sim_request.request_id)]
        assert request.reason_code == "unrecognised" and request.reason_text


def _first(sandbox, shop_name, credentials, requests, now, kind):
    good, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.kind == kind and r.amount is not None)
    return sim_request, good[str(sim_request.request_id)]


def test_agreeing_a_refund_only_pays_it_and_a_second_agree_is_refused(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    taobao = connect(sandbox, shop_name, credentials)
    taobao.answer_after_sales(request, AfterSalesDecision(agree=True, amount=request.amount))
    assert sim_request.status == neutral.AGREED
    assert sim_request.answers[-1]["amount"] == request.amount
    again, _ = mapped(taobao, now)
    assert again[request.platform_request_id].status == "refunded"

    with pytest.raises(Rejected) as caught:
        taobao.answer_after_sales(request, AfterSalesDecision(agree=True))
    assert "isv.refund-status-not-support" in str(caught.value) and not caught.value.retryable
    assert len(sim_request.answers) == 1


def test_agreeing_more_than_the_buyer_asked_is_refused_before_any_call(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials, http).answer_after_sales(
            request, AfterSalesDecision(agree=True, amount=request.amount + Decimal("0.01")))
    assert caught.value.code == "amount_out_of_range" and http.methods == []
    assert sim_request.status == neutral.REQUESTED


def test_an_answer_after_the_platform_deadline_gets_taobaos_error(
    sandbox, shop_name, credentials, requests, now
):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    sim_request.respond_by = now - timedelta(minutes=1)
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            request, AfterSalesDecision(agree=True))
    assert "isv.refund-timeout" in str(caught.value)
    assert sim_request.status == neutral.REQUESTED


def test_agreeing_a_return_waits_for_the_goods(sandbox, shop_name, credentials, requests, now):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "return_and_refund")
    taobao = connect(sandbox, shop_name, credentials)
    taobao.answer_after_sales(request, AfterSalesDecision(agree=True, note="请寄回"))
    again, _ = mapped(taobao, now)
    assert again[request.platform_request_id].platform_status == "WAIT_BUYER_RETURN_GOODS"
    assert again[request.platform_request_id].status == "agreed"


def test_a_refusal_needs_a_reason_and_then_refuses(sandbox, shop_name, credentials, requests, now):
    sim_request, request = _first(sandbox, shop_name, credentials, requests, now, "refund_only")
    http = RecordingClient()
    taobao = connect(sandbox, shop_name, credentials, http)
    with pytest.raises(Rejected) as caught:
        taobao.answer_after_sales(request, AfterSalesDecision(agree=False, note="  "))
    assert caught.value.code == "refuse_reason_required" and http.methods == []

    taobao.answer_after_sales(request, AfterSalesDecision(agree=False, note="商品已签收且无质量问题"))
    assert sim_request.status == neutral.REFUSED
    assert sim_request.answers[-1]["note"] == "商品已签收且无质量问题"


def test_the_gateway_itself_refuses_a_refusal_without_refuse_message(
    sandbox, shop_name, credentials, requests, now
):
    target = next(r for r in requests if r.amount is not None)
    system = {"method": after_sales.REFUSE, "app_key": credentials["app_key"],
              "session": credentials["access_token"], "timestamp": china_text(now),
              "format": "json", "v": "2.0", "sign_method": "md5"}
    form = {"refund_id": str(target.request_id)}
    system["sign"] = sign_params({**system, **form}, credentials["app_secret"])
    answer = httpx.post(f"{sandbox.url}/taobao/router/rest", params=system, data=form, timeout=10)
    error = answer.json()["error_response"]
    assert error["code"] == 40 and "refuse_message" in error["sub_msg"]
    assert target.status == neutral.REQUESTED
