"""The Pinduoduo connector against the sandbox's PDD router simulator, over real HTTP."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.base import ShopAccess
from connectors.pinduoduo import (
    LOGISTICS_IDS,
    RATE_LIMIT_WAIT_SECONDS,
    PinduoduoConnector,
    sign_params,
)
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import pinduoduo as sim
from sandbox.generator import advance, populate
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc
_order_ids = itertools.count(900_000_001)  # far above the generator's ids


class RecordingClient(httpx.Client):
    """An httpx client that keeps the form of every request it sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append(dict(parse_qsl(request.content.decode())))


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


@pytest.fixture
def http():
    with RecordingClient() as client:
        yield client


def connect(
    sandbox, shop_name, credentials, http=None, page_size=100, **changed
) -> PinduoduoConnector:
    access = ShopAccess(shop_name, "pdd", f"{sandbox.url}/pdd", {**credentials, **changed})
    return PinduoduoConnector(access, http=http, page_size=page_size)


def raw_call(
    sandbox, credentials, api: str, secret: str | None = None, **business
) -> httpx.Response:
    params = {"type": api, "client_id": credentials["client_id"],
              "access_token": credentials["access_token"], "timestamp": str(int(time.time())),
              "data_type": "JSON", "version": "V1", **{k: str(v) for k, v in business.items()}}
    params["sign"] = sign_params(params, secret or credentials["client_secret"])
    return httpx.post(f"{sandbox.url}/pdd/api/router", data=params, timeout=10)


def add_order(sandbox, shop: str, status: str, updated_at: datetime, created_at=None) -> SimOrder:
    order = SimOrder(
        order_id=next(_order_ids), shop=shop, status=status, currency="CNY",
        created_at=created_at or updated_at, updated_at=updated_at,
        lines=[SimLine("SKU-1", "保温杯 白色", 1, Decimal("59.90"), 1)], shipping_fee=Decimal("0"),
        receiver_name="林小坤", phone="13800138000", province="广东省", city="深圳市",
        district="南山区", address="科技园路1号",
    )
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


# ---- the gateway's checks ------------------------------------------------------------


def test_a_wrong_client_secret_gets_pdds_error_body_and_a_rejection(
    sandbox, shop_name, credentials, now
):
    answer = raw_call(sandbox, credentials, "pdd.logistics.companies.get", secret="wrong")
    assert answer.status_code == 200
    error = answer.json()["error_response"]
    assert error["error_code"] == sim.BAD_SIGN.code
    assert {"error_msg", "sub_code", "sub_msg", "request_id"} <= set(error)

    pdd = connect(sandbox, shop_name, credentials, client_secret="wrong")
    with pytest.raises(Rejected) as caught:
        list(pdd.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == sim.BAD_SIGN.code and not caught.value.retryable


def test_an_unknown_client_and_a_stale_timestamp_are_refused(sandbox, credentials):
    api = "pdd.logistics.companies.get"
    unknown = raw_call(sandbox, {**credentials, "client_id": "nobody"}, api)
    assert unknown.json()["error_response"]["error_code"] == sim.UNKNOWN_CLIENT.code
    stale = raw_call(sandbox, credentials, api, timestamp=int(time.time()) - 660)
    assert stale.json()["error_response"]["error_code"] == sim.STALE_TIMESTAMP.code


def test_an_expired_access_token_raises_token_expired(sandbox, shop_name, credentials, now):
    sandbox.state.tokens[credentials["access_token"]].expires_at = now - timedelta(seconds=1)
    pdd = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired) as caught:
        list(pdd.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == 10019


def test_an_armed_expired_token_fault_raises_token_expired_once(
    sandbox, shop_name, credentials, now
):
    sandbox.state.faults.arm("pdd", "expired_token")
    pdd = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        list(pdd.fetch_orders(now - timedelta(minutes=5), now))
    assert list(pdd.fetch_orders(now - timedelta(minutes=5), now)) == []


# ---- windows and paging --------------------------------------------------------------


def test_the_simulator_refuses_an_order_list_window_over_24_hours(sandbox, credentials, now):
    end = int(now.timestamp())
    query = dict(order_status=5, refund_status=5, page=1, page_size=100, end_confirm_at=end)
    api = "pdd.order.list.get"
    too_wide = raw_call(sandbox, credentials, api, start_confirm_at=end - 86401, **query)
    assert too_wide.json()["error_response"]["error_code"] == sim.BAD_PARAMETER.code
    widest = raw_call(sandbox, credentials, api, start_confirm_at=end - 86400, **query)
    assert "order_list_get_response" in widest.json()


def test_a_backfill_over_60_hours_is_split_and_gets_every_deal(
    sandbox, shop_name, credentials, http, now
):
    orders = populate(sandbox.state, shop_name, count=150, seed=11, now=now, span_hours=60)
    start = now - timedelta(hours=61)
    pdd = connect(sandbox, shop_name, credentials, http=http, page_size=40)

    got = served(pdd.backfill_orders(start, now))

    shop_orders = sandbox.state.shop_orders(shop_name)
    deals = [o for o in shop_orders if o.status in ("paid", "shipped", "delivered")]
    assert got == Counter(sim.order_sn(o) for o in deals)
    assert len({sim.order_sn(o) for o in orders}) == 150 and sum(got.values()) > 100
    spans = {int(r["end_confirm_at"]) - int(r["start_confirm_at"]) for r in http.sent}
    assert max(spans) < 86400 and len({r["start_confirm_at"] for r in http.sent}) == 3


def test_fetching_3_hours_in_30_minute_slices_serves_each_update_as_often_as_the_platform_does(
    sandbox, shop_name, credentials, http, now
):
    populate(sandbox.state, shop_name, count=120, seed=5, now=now, span_hours=4)
    start = now - timedelta(hours=3)
    on_a_boundary = add_order(sandbox, shop_name, "paid", start + timedelta(minutes=30))
    add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))  # just before
    add_order(sandbox, shop_name, "shipped", now)  # the window's end is excluded
    unpaid = add_order(sandbox, shop_name, "unpaid", start + timedelta(minutes=40))
    pdd = connect(sandbox, shop_name, credentials, http=http, page_size=7)

    got = served(pdd.fetch_orders(start, now))

    expected = Counter(
        sim.order_sn(o) for o in sandbox.state.shop_orders(shop_name)
        if o.status != "unpaid" and start <= o.updated_at < now
    )
    assert got == expected and sum(got.values()) > 20
    assert got[sim.order_sn(on_a_boundary)] == 1 and sim.order_sn(unpaid) not in got
    windows = {(r["start_updated_at"], r["end_updated_at"]) for r in http.sent}
    assert len(windows) == 6
    assert all(int(end) - int(begin) < 1800 for begin, end in windows)


def test_an_order_updated_while_we_page_does_not_hide_another_order(
    sandbox, shop_name, credentials, now
):
    start = now - timedelta(minutes=20)
    orders = [add_order(sandbox, shop_name, "paid", start + timedelta(minutes=m)) for m in range(6)]
    moved = orders[0]

    def update_the_first_order_after_the_first_request(request: httpx.Request) -> None:
        if len(client.sent) == 2:  # the platform moves it on while we read the next pages
            moved.updated_at = now + timedelta(minutes=1)

    with RecordingClient() as client:
        client.event_hooks["request"].append(update_the_first_order_after_the_first_request)
        pdd = connect(sandbox, shop_name, credentials, http=client, page_size=2)
        got = served(pdd.fetch_orders(start, now))

    assert {sim.order_sn(o) for o in orders[1:]} <= set(got)


def test_an_order_updated_twice_is_fetched_with_its_latest_update_time(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=20))
    order.updated_at = now - timedelta(minutes=2)
    pdd = connect(sandbox, shop_name, credentials)

    [[raw]] = list(pdd.fetch_orders(now - timedelta(minutes=30), now))

    assert raw.platform_updated_at == order.updated_at


def test_orders_the_platform_changes_after_a_fetch_are_served_in_their_new_window(
    sandbox, shop_name, credentials, now
):
    populate(sandbox.state, shop_name, count=60, seed=21, now=now, span_hours=4)
    pdd = connect(sandbox, shop_name, credentials)
    list(pdd.fetch_orders(now - timedelta(hours=5), now))  # the simulator has sorted them

    changed = advance(sandbox.state, shop_name, seed=21, now=now, fraction=0.5)
    latest = {raw.platform_order_id: raw
              for page in pdd.fetch_orders(now - timedelta(minutes=10), now + timedelta(minutes=1))
              for raw in page}

    assert len(changed) >= 5
    for order in changed:
        raw = latest[sim.order_sn(order)]
        assert raw.platform_updated_at == order.updated_at
        if order.status == "cancelled":
            assert pdd.to_order(raw).status == OrderStatus.CANCELLED


def test_an_order_shipped_through_the_api_leaves_its_old_window_for_the_newest(
    sandbox, shop_name, credentials, now
):
    order_sn = sim.order_sn(add_order(sandbox, shop_name, "paid", now - timedelta(hours=2)))
    pdd = connect(sandbox, shop_name, credentials)
    old_window = (now - timedelta(hours=3), now - timedelta(hours=1))
    assert order_sn in served(pdd.fetch_orders(*old_window))

    pdd.push_tracking(order_sn, "SF", "SF0000000001")

    assert order_sn not in served(pdd.fetch_orders(*old_window))
    newest = pdd.fetch_orders(now - timedelta(minutes=5), now + timedelta(minutes=1))
    recent = [raw for page in newest for raw in page if raw.platform_order_id == order_sn]
    assert [pdd.to_order(raw).status for raw in recent] == [OrderStatus.SHIPPED]


# ---- faults --------------------------------------------------------------------------


def test_an_armed_rate_limit_raises_rate_limited_with_the_default_wait(
    sandbox, shop_name, credentials, now
):
    sandbox.state.faults.arm("pdd", "rate_limit")
    pdd = connect(sandbox, shop_name, credentials)
    with pytest.raises(RateLimited) as caught:
        list(pdd.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == 52101 and caught.value.retry_after == RATE_LIMIT_WAIT_SECONDS


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials, now):
    sandbox.state.faults.arm("pdd", "server_error")
    pdd = connect(sandbox, shop_name, credentials)
    with pytest.raises(Unavailable) as caught:
        list(pdd.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == 502 and caught.value.retryable


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials, now):
    sandbox.state.faults.arm("pdd", "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        pdd = connect(sandbox, shop_name, credentials, http=impatient)
        with pytest.raises(Unavailable):
            list(pdd.fetch_orders(now - timedelta(minutes=5), now))


def test_a_malformed_order_arrives_unkeyed_and_fails_mapping_with_its_reasons(
    sandbox, shop_name, credentials, now
):
    for minutes in (3, 2, 1):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm("pdd", "malformed")
    pdd = connect(sandbox, shop_name, credentials)

    [page] = list(pdd.fetch_orders(now - timedelta(minutes=5), now))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1
    with pytest.raises(MappingError) as caught:
        pdd.to_order(broken[0])
    assert any("order_sn" in r for r in caught.value.reasons)
    assert any("item_list" in r for r in caught.value.reasons)


def test_generated_orders_map_unless_they_carry_dirt_mapping_must_refuse(
    sandbox, shop_name, credentials, now
):
    populate(sandbox.state, shop_name, count=300, seed=3, now=now, span_hours=20)
    pdd = connect(sandbox, shop_name, credentials)
    refused = []
    for page in pdd.backfill_orders(now - timedelta(hours=21), now):
        for raw in page:
            try:
                order = pdd.to_order(raw)
            except MappingError as error:
                refused.append(error.reasons)
            else:
                assert order.receiver.masked and order.total_amount > 0
    zero_quantity = {
        sim.order_sn(o) for o in sandbox.state.shop_orders(shop_name)
        if "zero_quantity" in o.defects and o.status in ("paid", "shipped", "delivered")
    }
    assert len(refused) >= len(zero_quantity)
    assert all(any("goods_count" in r for r in reasons) for reasons in refused)


# ---- tracking write-back -------------------------------------------------------------


def test_push_tracking_records_the_tracking_on_the_order(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    pdd = connect(sandbox, shop_name, credentials)

    result = pdd.push_tracking(sim.order_sn(order), "SF", "SF1234567890")

    assert result.response == {"is_success": True}
    assert result.request["logistics_id"] == LOGISTICS_IDS["SF"]
    assert order.status == "shipped"
    assert order.tracking[-1]["tracking_number"] == "SF1234567890"
    detail = pdd.fetch_order(sim.order_sn(order)).payload
    shown = (detail["order_status"], detail["tracking_number"], detail["receiver_name"])
    assert shown == (2, "SF1234567890", "")  # shipped, tracked, and no ciphertext any more


def test_pushing_the_same_tracking_again_succeeds_but_a_different_one_is_rejected(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    pdd = connect(sandbox, shop_name, credentials)
    pdd.push_tracking(sim.order_sn(order), "ZTO", "7300000000001")

    again = pdd.push_tracking(sim.order_sn(order), "ZTO", "7300000000001")

    assert again.response["already_shipped_with_this_tracking"] is True
    assert len(order.tracking) == 1
    with pytest.raises(Rejected) as caught:
        pdd.push_tracking(sim.order_sn(order), "ZTO", "7300000000002")
    assert caught.value.code == sim.NOT_SHIPPABLE.code


def test_an_unmapped_carrier_is_rejected_before_any_request(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    pdd = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected):
        pdd.push_tracking(sim.order_sn(order), "DHL", "123")
    assert http.sent == [] and order.status == "paid"


def test_the_simulator_refuses_an_unknown_logistics_id(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    answer = raw_call(sandbox, credentials, "pdd.logistics.online.send",
                      order_sn=sim.order_sn(order), logistics_id=999999, tracking_number="X1")
    assert answer.json()["error_response"]["error_code"] == sim.UNKNOWN_LOGISTICS.code
    assert order.status == "paid"


def test_every_carrier_we_map_is_one_the_platform_lists(sandbox, shop_name, credentials):
    listed = {c["id"] for c in connect(sandbox, shop_name, credentials).logistics_companies()}
    assert set(LOGISTICS_IDS.values()) <= listed


def test_decrypt_batch_opens_the_ciphertexts_of_an_order_awaiting_shipment(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    detail = connect(sandbox, shop_name, credentials).fetch_order(sim.order_sn(order)).payload
    data_list = [{"data_tag": detail["order_sn"], "encrypted_data": detail[field]}
                 for field in ("receiver_name", "receiver_phone")]
    answer = raw_call(sandbox, credentials, "pdd.open.decrypt.batch",
                      data_list=json.dumps(data_list))
    opened = answer.json()["open_decrypt_batch_response"]["data_decrypt_list"]
    assert [item["decrypted_data"] for item in opened] == ["林小坤", "13800138000"]


def test_a_lapsed_token_is_refreshed_with_the_refresh_token_and_the_next_call_goes_through(
    sandbox, shop_name, credentials
):
    connector = connect(sandbox, shop_name, credentials)
    sandbox.state.expire(credentials["access_token"])
    with pytest.raises(TokenExpired):
        connector.probe()
    grant = connector.refresh_access(credentials["refresh_token"])
    assert grant.access_token != credentials["access_token"]
    assert grant.access_expires_at > datetime.now(UTC) and grant.refresh_token
    connector.probe()


def test_an_unknown_refresh_token_is_rejected(sandbox, shop_name, credentials):
    with pytest.raises(Rejected, match="refresh_token"):
        connect(sandbox, shop_name, credentials).refresh_access("not-a-refresh-token")
