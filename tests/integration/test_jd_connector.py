"""The JD connector against the sandbox's JOS simulator, over real HTTP."""

from __future__ import annotations

import time

import itertools
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.base import ShopAccess
from connectors.jd import (
    CARRIER_CODES,
    RATE_LIMIT_WAIT_SECONDS,
    JdConnector,
    china_time,
    sign_params,
)
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import jd as sim
from sandbox.generator import populate
from sandbox.jd_render import ORDER_STATES, jd_order_id
from sandbox.model import SimLine, SimOrder

PACING_SLACK = 0.005  # sleep and clock granularity

UTC = timezone.utc
_order_ids = itertools.count(950_000_001)  # far above the generator's ids


class RecordingClient(httpx.Client):
    """An httpx client that keeps every request it sends: URL path, form and business JSON."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        form = dict(parse_qsl(request.content.decode()))
        business = json.loads(form.get(sim.PARAM_JSON, "{}"))
        self.sent.append({"path": request.url.path, "form": form, "business": business})


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


def connect(sandbox, shop_name, credentials, http=None, **options) -> JdConnector:
    changed = {k: options.pop(k) for k in list(options) if k in credentials}
    access = ShopAccess(shop_name, "jd", f"{sandbox.url}/jd", {**credentials, **changed})
    return JdConnector(access, http=http, **options)


def raw_call(sandbox, credentials, method: str, secret: str | None = None, **business) -> dict:
    params = {"method": method, "app_key": credentials["app_key"],
              "access_token": credentials["access_token"], "v": "2.0",
              "timestamp": china_time(datetime.now(UTC)),
              sim.PARAM_JSON: json.dumps(business, ensure_ascii=False)}
    params["sign"] = sign_params(params, secret or credentials["app_secret"])
    return httpx.post(f"{sandbox.url}/jd/routerjson", data=params, timeout=10).json()


def add_order(sandbox, shop: str, status: str, updated_at: datetime, **changes) -> SimOrder:
    values = dict(
        order_id=next(_order_ids), shop=shop, status=status, currency="CNY",
        created_at=updated_at, updated_at=updated_at,
        lines=[SimLine("SKU-1", "保温杯 白色", 2, Decimal("59.90"), 1)], shipping_fee=Decimal("8"),
        receiver_name="林小坤", phone="13800138000", province="广东省", city="深圳市",
        district="南山区", address="科技园路1号", buyer_id="buyer-00000001",
    )
    values.update(changes)
    order = SimOrder(**values)
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


def recent(jd: JdConnector, now: datetime):
    return list(jd.fetch_orders(now - timedelta(minutes=10), now + timedelta(seconds=1)))


# ---- windows and paging --------------------------------------------------------------


def test_a_70_day_fetch_is_split_into_30_day_windows_and_serves_every_order_once(
    sandbox, shop_name, credentials, http, now
):
    populate(sandbox.state, shop_name, count=180, seed=11, now=now, span_hours=24 * 69)
    start = now - timedelta(days=70)
    on_a_boundary = add_order(sandbox, shop_name, "paid", start + sim.WINDOW_LIMIT)
    add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))  # just before
    add_order(sandbox, shop_name, "shipped", now)  # the window's end is excluded
    unpaid = add_order(sandbox, shop_name, "unpaid", start + timedelta(days=3))
    jd = connect(sandbox, shop_name, credentials, http=http, page_size=40)

    got = served(jd.fetch_orders(start, now))

    expected = Counter(jd_order_id(o) for o in sandbox.state.shop_orders(shop_name)
                       if o.status != "unpaid" and start <= o.updated_at < now)
    assert got == expected and sum(got.values()) > 120
    assert got[jd_order_id(on_a_boundary)] == 1 and jd_order_id(unpaid) not in got
    windows = {(r["business"]["start_date"], r["business"]["end_date"]) for r in http.sent}
    assert len(windows) == 3
    spans = [sim.parse_jd_time(end) - sim.parse_jd_time(begin) for begin, end in windows]
    assert all(span < sim.WINDOW_LIMIT for span in spans)
    assert {r["business"]["page_size"] for r in http.sent} == {"40"}


def test_the_simulator_refuses_a_window_over_30_days_in_its_api_result(sandbox, credentials, now):
    def search(days: float) -> dict:
        return raw_call(sandbox, credentials, "jingdong.pop.order.search",
                        start_date=china_time(now - timedelta(days=days)), end_date=china_time(now),
                        order_state="WAIT_SELLER_STOCK_OUT", page="1", page_size="100")

    refused = search(30 + 1 / 86400)["jingdong_pop_order_search_responce"]
    assert refused["code"] == "0"
    assert refused["searchorderinfo_result"]["apiResult"]["success"] is False
    assert refused["searchorderinfo_result"]["apiResult"]["numberCode"] == sim.BAD_WINDOW.code
    widest = search(30)["jingdong_pop_order_search_responce"]["searchorderinfo_result"]
    assert widest["apiResult"]["success"] is True


def test_a_refused_window_raises_rejected_with_jds_business_code(
    sandbox, shop_name, credentials, now
):
    jd = connect(sandbox, shop_name, credentials)
    with pytest.raises(Rejected) as caught:  # older than the modification-time horizon
        list(jd.fetch_orders(now - sim.MODIFIED_VISIBILITY - timedelta(days=1), now))
    assert caught.value.code == sim.BAD_WINDOW.code


def test_an_order_modified_while_we_page_does_not_hide_another_order(
    sandbox, shop_name, credentials, now
):
    start = now - timedelta(minutes=20)
    orders = [add_order(sandbox, shop_name, "paid", start + timedelta(minutes=m)) for m in range(6)]

    def move_the_first_order_after_two_requests(request: httpx.Request) -> None:
        if len(client.sent) == 3:  # JD moves it on while we read the other pages
            orders[0].updated_at = now + timedelta(minutes=1)

    with RecordingClient() as client:
        client.event_hooks["request"].append(move_the_first_order_after_two_requests)
        jd = connect(sandbox, shop_name, credentials, http=client, page_size=2)
        got = served(jd.fetch_orders(start, now))

    assert {jd_order_id(o) for o in orders[1:]} <= set(got)


# ---- the gateway's checks ------------------------------------------------------------


def test_a_wrong_app_secret_gets_jds_error_body_and_a_rejection(sandbox, shop_name, credentials):
    answer = raw_call(sandbox, credentials, "jingdong.pop.order.get", secret="wrong", order_id="1")
    error = answer["error_response"]
    assert error["code"] == sim.INVALID_SIGN.code and error["en_desc"] == sim.INVALID_SIGN.en_desc
    assert error["zh_desc"]

    jd = connect(sandbox, shop_name, credentials, app_secret="wrong")
    with pytest.raises(Rejected) as caught:
        jd.probe()
    assert caught.value.code == sim.INVALID_SIGN.code and not caught.value.retryable


def test_an_expired_access_token_raises_token_expired(sandbox, shop_name, credentials):
    sandbox.state.expire(credentials["access_token"])
    with pytest.raises(TokenExpired) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == sim.INVALID_TOKEN.code and caught.value.retryable


def test_an_armed_expired_token_fault_raises_token_expired_once(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("jd", "expired_token")
    jd = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        jd.probe()
    jd.probe()


# ---- faults --------------------------------------------------------------------------


def test_throttling_raises_rate_limited_and_a_retry_succeeds(sandbox, shop_name, credentials, now):
    add_order(sandbox, shop_name, "paid", now - timedelta(minutes=2))
    sandbox.state.faults.arm("jd", "rate_limit")
    jd = connect(sandbox, shop_name, credentials)
    with pytest.raises(RateLimited) as caught:
        recent(jd, now)
    assert caught.value.code == sim.THROTTLED.code
    assert caught.value.retry_after == RATE_LIMIT_WAIT_SECONDS
    assert sum(served(recent(jd, now)).values()) == 1


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("jd", "server_error")
    with pytest.raises(Unavailable) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == 502 and caught.value.retryable


def test_a_cut_off_body_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("jd", "malformed")  # an empty page: the body is cut instead
    with pytest.raises(Unavailable, match="not JSON"):
        connect(sandbox, shop_name, credentials).probe()


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("jd", "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        with pytest.raises(Unavailable):
            connect(sandbox, shop_name, credentials, http=impatient).probe()


def test_a_malformed_order_arrives_unkeyed_and_fails_mapping_with_its_reasons(
    sandbox, shop_name, credentials, now
):
    for minutes in (3, 2, 1):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm("jd", "malformed")
    jd = connect(sandbox, shop_name, credentials)

    [page] = recent(jd, now)

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1
    with pytest.raises(MappingError) as caught:
        jd.to_order(broken[0])
    assert any("orderId" in r for r in caught.value.reasons)
    assert any("itemInfoList" in r for r in caught.value.reasons)


# ---- statuses and receiver data ------------------------------------------------------


def test_every_state_the_simulator_serves_maps_to_the_matching_status(
    sandbox, shop_name, credentials, now
):
    expected = {"paid": ("WAIT_SELLER_STOCK_OUT", OrderStatus.PAID),
                "shipped": ("WAIT_GOODS_RECEIVE_CONFIRM", OrderStatus.SHIPPED),
                "delivered": ("FINISHED_L", OrderStatus.DELIVERED),
                "cancelled": ("TRADE_CANCELED", OrderStatus.CANCELLED)}
    orders = {status: add_order(sandbox, shop_name, status, now - timedelta(minutes=3))
              for status in [*expected, "unpaid"]}
    jd = connect(sandbox, shop_name, credentials)

    mapped = {raw.platform_order_id: jd.to_order(raw) for page in recent(jd, now) for raw in page}

    assert set(expected) == set(ORDER_STATES)  # every state the simulator can serve
    for status, (state, internal) in expected.items():
        order = mapped[jd_order_id(orders[status])]
        assert (order.platform_status, order.status) == (state, internal)
    assert jd_order_id(orders["unpaid"]) not in mapped  # JD shows sellers no unpaid orders


def test_generated_orders_map_unless_they_carry_dirt_mapping_must_refuse(
    sandbox, shop_name, credentials, now
):
    populate(sandbox.state, shop_name, count=300, seed=3, now=now, span_hours=20)
    jd = connect(sandbox, shop_name, credentials)
    refused, mapped = [], 0
    for page in jd.fetch_orders(now - timedelta(hours=21), now):
        for raw in page:
            try:
                order = jd.to_order(raw)
            except MappingError as error:
                refused.append(error.reasons)
            else:
                mapped += 1
                assert order.receiver.masked and order.total_amount > 0
    zero_quantity = {jd_order_id(o) for o in sandbox.state.shop_orders(shop_name)
                     if "zero_quantity" in o.defects and o.status != "unpaid"}
    assert mapped > 200 and len(refused) == len(zero_quantity)
    assert all(any("itemTotal" in r for r in reasons) for reasons in refused)


def test_receiver_data_stays_masked_and_no_plaintext_leaves_the_simulator(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=2))
    jd = connect(sandbox, shop_name, credentials)

    [[raw]] = recent(jd, now)
    receiver = jd.to_order(raw).receiver

    assert receiver.masked and receiver.encrypted == {}
    assert (receiver.name, receiver.phone, receiver.address) == ("林**", "138****8000", "科技****")
    assert (receiver.province, receiver.city, receiver.district) == ("广东省", "深圳市", "南山区")
    wire = json.dumps(raw.payload, ensure_ascii=False)
    assert not any(secret in wire for secret in (order.receiver_name, order.phone, order.address))


# ---- tracking write-back -------------------------------------------------------------


def test_push_tracking_ships_the_order_and_a_repeat_succeeds_without_a_second_record(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    jd = connect(sandbox, shop_name, credentials)

    result = jd.push_tracking(jd_order_id(order), "SF", "SF1234567890")
    again = jd.push_tracking(jd_order_id(order), "SF", "SF1234567890")

    assert result.response["success"] is True
    assert result.request["logiCoprId"] == str(CARRIER_CODES["SF"])
    assert order.status == "shipped" and len(order.tracking) == 1
    assert order.tracking[0]["tracking_number"] == "SF1234567890"
    assert again.response["already_shipped_with_this_tracking"] is True
    detail = jd.fetch_order(jd_order_id(order)).payload
    assert (detail["orderState"], detail["waybill"], detail["logisticsId"]) == (
        "WAIT_GOODS_RECEIVE_CONFIRM", "SF1234567890", str(CARRIER_CODES["SF"]))


def test_a_different_waybill_for_a_shipped_order_is_rejected(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    jd = connect(sandbox, shop_name, credentials)
    jd.push_tracking(jd_order_id(order), "ZTO", "7300000000001")
    with pytest.raises(Rejected) as caught:
        jd.push_tracking(jd_order_id(order), "ZTO", "7300000000002")
    assert caught.value.code == sim.NOT_SHIPPABLE.code and len(order.tracking) == 1


@pytest.mark.parametrize("carrier", ["JT", "DHL"])
def test_an_unmapped_carrier_is_rejected_before_any_request(
    sandbox, shop_name, credentials, http, now, carrier
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    jd = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected) as caught:
        jd.push_tracking(jd_order_id(order), carrier, "123")
    assert caught.value.code == "unmapped_carrier"
    assert http.sent == [] and order.status == "paid"


def test_the_simulator_refuses_an_unknown_carrier_id(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    answer = raw_call(sandbox, credentials, "jingdong.pop.order.shipment",
                      orderId=jd_order_id(order), logiCoprId="999999", logiNo="X1")
    result = answer["jingdong_pop_order_shipment_responce"]["sopjosshipment_result"]
    assert result["success"] is False and result["numberCode"] == sim.UNKNOWN_CARRIER.code
    assert set(CARRIER_CODES.values()) <= set(sim.LOGISTICS_COMPANIES)
    assert order.status == "paid"


# ---- tokens and pacing ---------------------------------------------------------------


def test_a_refreshed_token_replaces_the_expired_one(sandbox, shop_name, credentials, now):
    jd = connect(sandbox, shop_name, credentials)
    sandbox.state.expire(credentials["access_token"])

    grant = jd.refresh_access(credentials["refresh_token"])

    assert grant.access_token != credentials["access_token"] and grant.refresh_token
    assert grant.access_expires_at > now + timedelta(hours=23)
    assert grant.refresh_expires_at and grant.refresh_expires_at > now + timedelta(days=29)
    jd.probe()  # the connector now signs with the new token
    connect(sandbox, shop_name, credentials, access_token=grant.access_token).probe()


def test_an_app_that_cannot_refresh_is_told_to_reauthorise_without_a_request(
    sandbox, shop_name, http, now
):
    fixed = sim.register_shop(sandbox.state, shop_name, now, refreshable=False)
    jd = connect(sandbox, shop_name, fixed, http=http)
    with pytest.raises(Rejected, match="re-authorised") as caught:
        jd.refresh_access(fixed["refresh_token"])
    assert fixed["refresh_token"] == "" and caught.value.code == "refresh_unavailable"
    assert http.sent == []


def test_a_refresh_token_jd_no_longer_accepts_asks_for_reauthorisation(
    sandbox, shop_name, credentials
):
    jd = connect(sandbox, shop_name, credentials)
    with pytest.raises(Rejected, match="re-authorised") as caught:
        jd.refresh_access("not-a-refresh-token")
    assert caught.value.code == str(sim.OAUTH_BAD_REFRESH[0])


def test_every_request_waits_on_the_shops_pacing_bucket(sandbox, shop_name, credentials, now):
    slow = RequestRate(per_second=5, burst=1)
    jd = connect(sandbox, shop_name, credentials, request_rate=slow)
    bucket = shop_bucket("jd", shop_name, slow)

    started = time.perf_counter()
    for _ in range(3):
        jd.probe()
    jd.refresh_access(credentials["refresh_token"])

    # Four calls, refresh included, never fit in less than three intervals of 1/5 s.
    assert time.perf_counter() - started >= 3 / slow.per_second - PACING_SLACK
    assert bucket.waited_seconds > 0
