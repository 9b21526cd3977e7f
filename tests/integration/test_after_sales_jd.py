"""JD refund applications against the sandbox's JOS gateway: read, deduplicated, answered."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from connectors import jd_after_sales as after_sales
from connectors.base import AfterSalesDecision, ShopAccess
from connectors.jd import JdConnector
from oms.domain.errors import MappingError, Rejected
from sandbox import after_sales as neutral
from sandbox import jd as sim
from sandbox.generator import populate
from sandbox.jd_render import jd_order_id

UTC = timezone.utc


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def requests(sandbox, shop_name, now):
    populate(sandbox.state, shop_name, count=60, seed=5, now=now)
    made = neutral.seed_after_sales(sandbox.state, shop_name, seed=5, now=now,
                                    kinds=(neutral.REFUND_ONLY,))
    assert len(made) >= 8
    return made


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


def connect(sandbox, shop_name, credentials) -> JdConnector:
    return JdConnector(ShopAccess(shop_name, "jd", f"{sandbox.url}/jd", credentials))


def mapped(connector, now):
    good, bad, ids = {}, {}, Counter()
    for page in connector.fetch_after_sales(now - timedelta(days=2), now + timedelta(minutes=2)):
        for raw in page:
            ids[raw.platform_request_id] += 1
            try:
                good[raw.platform_request_id] = connector.to_after_sales(raw)
            except MappingError as error:
                bad[raw.platform_request_id] = error
    return good, bad, ids


def test_applications_come_once_and_map_to_their_order(
    sandbox, shop_name, credentials, requests, now, monkeypatch
):
    monkeypatch.setattr(after_sales, "PAGE_SIZE", 3)
    good, bad, ids = mapped(connect(sandbox, shop_name, credentials), now)
    assert set(ids) == {str(r.request_id) for r in requests} and max(ids.values()) == 1
    for sim_request in requests:
        key = str(sim_request.request_id)
        if sim_request.amount is None:
            assert "applyRefundSum: missing" in str(bad[key])
            continue
        request = good[key]
        assert request.platform_order_id == jd_order_id(sim_request.order)
        assert (request.kind, request.status, request.amount) == ("refund_only", "requested",
                                                                 sim_request.amount)
        assert request.respond_by == sim_request.created_at + after_sales.RESPONSE_WINDOW


def test_agree_then_agree_again_is_refused_with_jds_error(sandbox, shop_name, credentials, requests, now):
    good, _, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.amount is not None)
    jd = connect(sandbox, shop_name, credentials)
    jd.answer_after_sales(good[str(sim_request.request_id)], AfterSalesDecision(agree=True))
    assert sim_request.status == neutral.AGREED and sim_request.answers[-1]["note"]
    with pytest.raises(Rejected) as caught:
        jd.answer_after_sales(good[str(sim_request.request_id)], AfterSalesDecision(agree=True))
    assert caught.value.code == "10200001"


def test_a_refusal_needs_a_reason_and_carries_jds_reject_type(
    sandbox, shop_name, credentials, requests, now
):
    good, _, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.amount is not None)
    request = good[str(sim_request.request_id)]
    jd = connect(sandbox, shop_name, credentials)
    with pytest.raises(Rejected) as caught:
        jd.answer_after_sales(request, AfterSalesDecision(agree=False))
    assert caught.value.code == "refuse_reason_required"
    sent = jd.answer_after_sales(request, AfterSalesDecision(agree=False, note="商品已签收",
                                                             refuse_reason_code="2"))
    assert sent.request["rejectType"] == 2 and sim_request.status == neutral.REFUSED


def test_an_answer_after_the_deadline_is_refused(sandbox, shop_name, credentials, requests, now):
    good, _, _ = mapped(connect(sandbox, shop_name, credentials), now)
    sim_request = next(r for r in requests if r.amount is not None)
    sim_request.respond_by = now - timedelta(seconds=1)
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).answer_after_sales(
            good[str(sim_request.request_id)], AfterSalesDecision(agree=True))
    assert caught.value.code == "10200002" and sim_request.status == neutral.REQUESTED
