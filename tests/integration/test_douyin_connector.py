"""The Douyin (抖店) connector against the sandbox's Doudian gateway simulator, over real HTTP."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors.base import ShopAccess
from connectors.douyin import (
    CARRIER_CODES,
    RATE_LIMIT_WAIT_SECONDS,
    DouyinConnector,
    canonical_param_json,
    sign_request,
)
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import douyin as sim
from sandbox.generator import populate
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc
_order_ids = itertools.count(910_000_001)  # far above the generator's ids


class RecordingClient(httpx.Client):
    """An httpx client that keeps the method and business parameters of every request."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append({"method": request.url.params.get("method"),
                          **json.loads(request.content or b"{}")})


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


def connect(sandbox, shop_name, credentials, http=None, page_size=100, **changed):
    access = ShopAccess(shop_name, "douyin", f"{sandbox.url}/douyin", {**credentials, **changed})
    return DouyinConnector(access, http=http, page_size=page_size)


def raw_call(sandbox, credentials, method: str, params: dict, secret: str | None = None,
             param_json: str | None = None, **query) -> dict:
    """One hand-signed gateway call; `param_json` sends (and signs) a text of our own."""
    text = param_json if param_json is not None else canonical_param_json(params)
    timestamp = str(int(time.time()))
    signed = {"app_key": credentials["app_key"], "method": method, "timestamp": timestamp,
              "v": "2", "sign_method": "hmac-sha256",
              "access_token": credentials["access_token"], **query}
    signed["sign"] = sign_request(signed["app_key"], secret or credentials["app_secret"], method,
                                  signed["timestamp"], text)
    url = f"{sandbox.url}/douyin/{method.replace('.', '/')}"
    return httpx.post(url, params=signed, content=text.encode(), timeout=10).json()


def add_order(sandbox, shop: str, status: str, updated_at: datetime) -> SimOrder:
    order = SimOrder(
        order_id=next(_order_ids), shop=shop, status=status, currency="CNY",
        created_at=updated_at - timedelta(minutes=1), updated_at=updated_at,
        lines=[SimLine("SKU-9", "保温杯 白色", 2, Decimal("39.90"), next(_order_ids))],
        shipping_fee=Decimal("8"), receiver_name="周晓梅", phone="13912345678",
        province="浙江省", city="杭州市", district="西湖区", address="文三路90号3栋201室",
        buyer_id="buyer-1",
    )
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


# ---- 1. windows and paging -----------------------------------------------------------------


def test_a_60_hour_fetch_is_split_into_24_hour_windows_and_serves_every_order_once(
    sandbox, shop_name, credentials, http, now
):
    populate(sandbox.state, shop_name, count=180, seed=11, now=now, span_hours=60)
    start = now - timedelta(hours=61)
    boundary = add_order(sandbox, shop_name, "paid", start + timedelta(hours=24))
    add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))  # just before
    add_order(sandbox, shop_name, "shipped", now)  # the window's end is excluded
    douyin = connect(sandbox, shop_name, credentials, http=http, page_size=25)

    got = served(douyin.fetch_orders(start, now))

    expected = Counter(sim.shop_order_id(o) for o in sandbox.state.shop_orders(shop_name)
                       if start <= o.updated_at < now)
    assert got == expected and sum(got.values()) > 150
    assert got[sim.shop_order_id(boundary)] == 1
    windows = {(r["update_time_start"], r["update_time_end"]) for r in http.sent}
    assert len(windows) == 3 and all(end - begin < 24 * 3600 for begin, end in windows)
    assert {r["page"] for r in http.sent} >= {0, 1, 2} and max(r["size"] for r in http.sent) == 25


def test_the_simulator_refuses_a_window_over_24_hours_and_pages_over_100(sandbox, credentials):
    end = int(time.time())
    query = {"update_time_end": end, "page": 0, "size": 100}
    too_wide = raw_call(sandbox, credentials, "order.searchList",
                        {**query, "update_time_start": end - 86401})
    assert (too_wide["code"], too_wide["data"]) == (sim.BAD_PARAMETER.code, None)
    widest = raw_call(sandbox, credentials, "order.searchList",
                      {**query, "update_time_start": end - 86400})
    assert widest["code"] == 10000 and widest["data"]["page"] == 0
    too_big = raw_call(sandbox, credentials, "order.searchList", {**query, "size": 101,
                                                                  "update_time_start": end - 60})
    assert too_big["code"] == sim.BAD_PARAMETER.code


def test_an_order_updated_while_we_page_does_not_hide_another_order(
    sandbox, shop_name, credentials, now
):
    start = now - timedelta(minutes=20)
    orders = [add_order(sandbox, shop_name, "paid", start + timedelta(minutes=m)) for m in range(7)]

    def move_the_first_order_out_after_the_second_request(request: httpx.Request) -> None:
        if len(client.sent) == 2:
            orders[0].updated_at = now + timedelta(minutes=1)

    with RecordingClient() as client:
        client.event_hooks["request"].append(move_the_first_order_out_after_the_second_request)
        got = served(connect(sandbox, shop_name, credentials, http=client, page_size=2)
                     .fetch_orders(start, now))

    assert {sim.shop_order_id(o) for o in orders[1:]} <= set(got)


# ---- 2. signature --------------------------------------------------------------------------


def test_a_wrong_secret_gets_doudians_error_body_and_a_rejection(
    sandbox, shop_name, credentials, now
):
    answer = raw_call(sandbox, credentials, "order.logisticsCompanyList", {}, secret="wrong")
    assert (answer["code"], answer["sub_code"]) == (40003, "isv.signature-invalid")
    assert {"msg", "sub_msg", "log_id", "data"} <= set(answer)

    douyin = connect(sandbox, shop_name, credentials, app_secret="wrong")
    with pytest.raises(Rejected) as caught:
        list(douyin.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == "isv.signature-invalid" and not caught.value.retryable


def test_a_signature_over_unsorted_param_json_is_refused(sandbox, credentials):
    unsorted = '{"size":1,"page":0}'
    answer = raw_call(sandbox, credentials, "order.searchList", {}, param_json=unsorted)
    assert answer["sub_code"] == "isv.signature-invalid"
    sorted_text = raw_call(sandbox, credentials, "order.searchList", {},
                           param_json='{"page":0,"size":1}')
    assert sorted_text["code"] == 10000


# ---- 3. expired tokens ---------------------------------------------------------------------


def test_an_expired_access_token_raises_token_expired(sandbox, shop_name, credentials, now):
    sandbox.state.expire(credentials["access_token"])
    douyin = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired) as caught:
        douyin.probe()
    assert caught.value.code == "isv.access-token-expired"
    assert caught.value.body["code"] == 40003


def test_an_armed_expired_token_fault_raises_token_expired_once(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("douyin", "expired_token")
    douyin = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        douyin.probe()
    douyin.probe()


def test_an_unknown_token_also_asks_for_a_refresh(sandbox, shop_name, credentials):
    with pytest.raises(TokenExpired) as caught:
        connect(sandbox, shop_name, credentials, access_token="not-issued").probe()
    assert caught.value.code == "isv.access-token-no-existed"


# ---- 4. throttling -------------------------------------------------------------------------


def test_throttling_raises_rate_limited_with_doudians_code_and_a_retry_succeeds(
    sandbox, shop_name, credentials, now
):
    add_order(sandbox, shop_name, "paid", now - timedelta(minutes=2))
    sandbox.state.faults.arm("douyin", "rate_limit")
    douyin = connect(sandbox, shop_name, credentials)
    window = (now - timedelta(minutes=5), now)
    with pytest.raises(RateLimited) as caught:
        list(douyin.fetch_orders(*window))
    assert caught.value.code == 60000 and caught.value.retry_after == RATE_LIMIT_WAIT_SECONDS
    assert caught.value.body["msg"] == sim.THROTTLED.msg
    assert sum(len(page) for page in douyin.fetch_orders(*window)) == 1


# ---- 5. outages ----------------------------------------------------------------------------


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("douyin", "server_error")
    with pytest.raises(Unavailable) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == 502 and caught.value.retryable


def test_a_cut_off_body_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("douyin", "malformed")  # no orders to spoil: the body is cut
    with pytest.raises(Unavailable, match="not JSON"):
        connect(sandbox, shop_name, credentials).probe()


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("douyin", "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        with pytest.raises(Unavailable):
            connect(sandbox, shop_name, credentials, http=impatient).probe()


def test_a_malformed_order_arrives_unkeyed_and_fails_mapping_with_its_reasons(
    sandbox, shop_name, credentials, now
):
    for minutes in (3, 2, 1):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm("douyin", "malformed")
    douyin = connect(sandbox, shop_name, credentials)

    [page] = list(douyin.fetch_orders(now - timedelta(minutes=5), now))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1
    with pytest.raises(MappingError) as caught:
        douyin.to_order(broken[0])
    assert any("order_id" in r for r in caught.value.reasons)
    assert any("sku_order_list" in r for r in caught.value.reasons)


# ---- 6. statuses end to end ----------------------------------------------------------------


def test_every_status_the_simulator_serves_maps_to_the_expected_internal_status(
    sandbox, shop_name, credentials, now
):
    expected = {"unpaid": OrderStatus.PENDING_PAYMENT, "paid": OrderStatus.PAID,
                "shipped": OrderStatus.SHIPPED, "delivered": OrderStatus.DELIVERED,
                "cancelled": OrderStatus.CANCELLED}
    when = now - timedelta(minutes=9)
    placed = {status: sim.shop_order_id(add_order(sandbox, shop_name, status, when))
              for status in expected}
    douyin = connect(sandbox, shop_name, credentials)

    mapped = {raw.platform_order_id: douyin.to_order(raw)
              for page in douyin.fetch_orders(now - timedelta(minutes=10), now) for raw in page}

    assert {status: mapped[oid].status for status, oid in placed.items()} == expected
    assert {status: mapped[oid].platform_status for status, oid in placed.items()} == {
        status: f"order_status={sim.STATUS_CODES[status]}" for status in expected}


def test_generated_orders_map_unless_they_carry_dirt_mapping_must_refuse(
    sandbox, shop_name, credentials, now
):
    populate(sandbox.state, shop_name, count=300, seed=3, now=now, span_hours=20)
    douyin = connect(sandbox, shop_name, credentials)
    refused = []
    for page in douyin.fetch_orders(now - timedelta(hours=21), now):
        for raw in page:
            try:
                order = douyin.to_order(raw)
            except MappingError as error:
                refused.append((raw.platform_order_id, error.reasons))
            else:
                assert order.receiver.masked and order.total_amount > 0
    zero_quantity = {sim.shop_order_id(o) for o in sandbox.state.shop_orders(shop_name)
                     if "zero_quantity" in o.defects}
    assert zero_quantity and {oid for oid, _ in refused} == zero_quantity
    assert all(any("item_num" in r for r in reasons) for _, reasons in refused)


# ---- 7. tracking write-back ----------------------------------------------------------------


def test_push_tracking_records_it_and_a_repeat_succeeds_without_a_second_record(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    douyin = connect(sandbox, shop_name, credentials)

    result = douyin.push_tracking(sim.shop_order_id(order), "SF", "SF1234567890")
    again = douyin.push_tracking(sim.shop_order_id(order), "SF", "SF1234567890")

    assert result.response == {} and result.request["company_code"] == CARRIER_CODES["SF"]
    assert order.status == "shipped" and len(order.tracking) == 1
    assert order.tracking[0]["tracking_number"] == "SF1234567890"
    assert again.response["already_shipped_with_this_tracking"] is True
    with pytest.raises(Rejected) as caught:
        douyin.push_tracking(sim.shop_order_id(order), "SF", "SF0000000002")
    assert caught.value.code == sim.NOT_SHIPPABLE.sub_code and len(order.tracking) == 1


def test_a_pushed_order_is_served_again_as_shipped_with_its_parcel(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=2))
    douyin = connect(sandbox, shop_name, credentials)
    douyin.push_tracking(sim.shop_order_id(order), "ZTO", "7300000000001")

    [[raw]] = list(douyin.fetch_orders(now - timedelta(minutes=1), now + timedelta(minutes=1)))

    assert douyin.to_order(raw).status == OrderStatus.SHIPPED
    assert [(p["tracking_no"], p["company"]) for p in raw.payload["logistics_info"]] == [
        ("7300000000001", "zhongtong")]


def test_an_unmapped_carrier_is_rejected_before_any_request(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    douyin = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected) as caught:
        douyin.push_tracking(sim.shop_order_id(order), "DHL", "123")
    assert caught.value.code == "unmapped_carrier"
    assert http.sent == [] and order.status == "paid"


def test_the_simulator_refuses_an_unknown_company_code(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    answer = raw_call(sandbox, credentials, "order.logisticsAdd", {
        "order_id": sim.shop_order_id(order), "company_code": "nobody", "logistics_code": "X1"})
    assert answer["sub_code"] == sim.UNKNOWN_COMPANY.sub_code and order.status == "paid"


def test_every_carrier_we_map_is_one_the_platform_lists(sandbox, shop_name, credentials):
    listed = {c["code"] for c in connect(sandbox, shop_name, credentials).logistics_companies()}
    assert set(CARRIER_CODES.values()) <= listed


# ---- 8. token refresh ----------------------------------------------------------------------


def test_refresh_hands_out_a_7_day_token_that_works(sandbox, shop_name, credentials, now):
    douyin = connect(sandbox, shop_name, credentials)
    sandbox.state.expire(credentials["access_token"])

    grant = douyin.refresh_access(credentials["refresh_token"])

    assert grant.access_token != credentials["access_token"]
    assert abs(grant.access_expires_at - (now + timedelta(days=7))) < timedelta(minutes=1)
    assert abs(grant.refresh_expires_at - (now + timedelta(days=14))) < timedelta(minutes=1)
    douyin.probe()  # the connector uses the new token at once
    connect(sandbox, shop_name, credentials, access_token=grant.access_token).probe()


def test_an_expired_or_unknown_refresh_token_is_refused_for_good(
    sandbox, shop_name, credentials, now
):
    douyin = connect(sandbox, shop_name, credentials)
    sandbox.state.refresh_tokens[credentials["refresh_token"]].expires_at = now
    with pytest.raises(Rejected, match="authorise the app again") as expired:
        douyin.refresh_access(credentials["refresh_token"])
    assert expired.value.code == "dop.token-generate-failed:token-expired"
    with pytest.raises(Rejected) as unknown:
        douyin.refresh_access("never-issued")
    assert unknown.value.code == "dop.token-generate-failed:token-invalid"


# ---- 9. receiver data ----------------------------------------------------------------------


def test_receiver_data_stays_masked_and_batch_decrypt_opens_it(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=3))
    douyin = connect(sandbox, shop_name, credentials)
    [[raw]] = list(douyin.fetch_orders(now - timedelta(minutes=5), now))
    mapped = douyin.to_order(raw)

    text = json.dumps(raw.payload, ensure_ascii=False)
    assert not any(secret in text for secret in ("周晓梅", "13912345678", "文三路90号"))
    receiver = mapped.receiver
    assert receiver.masked and (receiver.name, receiver.phone) == ("周**", "139****5678")
    assert set(receiver.encrypted) == {"name", "phone", "address"}

    opened = douyin.decrypt_receiver(mapped.platform_order_id, receiver.encrypted)

    assert opened == {"name": "周晓梅", "phone": "13912345678", "address": order.address}
    with pytest.raises(Rejected):  # a ciphertext opens only with the order it came with
        douyin.decrypt_receiver("6000000000000000000", receiver.encrypted)


# ---- 10. pacing ----------------------------------------------------------------------------


def test_calls_wait_for_the_shops_request_budget(sandbox, shop_name, credentials):
    tiny = RequestRate(per_second=5, burst=1)  # one call now, then one every 0.2 s
    access = ShopAccess(shop_name, "douyin", f"{sandbox.url}/douyin", credentials)
    douyin = DouyinConnector(access, rate=tiny)
    started = time.monotonic()
    for _ in range(3):
        douyin.probe()
    assert time.monotonic() - started >= 0.38
    assert shop_bucket("douyin", shop_name, tiny).waited_seconds > 0.3
