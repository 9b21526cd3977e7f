"""The Taobao connector against the sandbox's TOP gateway simulator, over real HTTP."""

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

from connectors import taobao as connector_module
from connectors.base import ShopAccess
from connectors.pacing import RequestRate
from connectors.taobao import (
    CARRIER_CODES,
    RATE_LIMIT_WAIT_SECONDS,
    TaobaoConnector,
    china_text,
    sign_params,
)
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import taobao as sim
from sandbox import taobao_render as render
from sandbox.generator import populate
from sandbox.model import SimLine, SimOrder

PACING_SLACK = 0.005  # sleep and clock granularity

UTC = timezone.utc
_order_ids = itertools.count(800_000_001)  # far above the generator's ids


class RecordingClient(httpx.Client):
    """An httpx client that keeps the query and the form of every request it sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, dict[str, str]]] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append({"query": dict(request.url.params),
                          "form": dict(parse_qsl(request.content.decode()))})

    def calls(self, method: str) -> list[dict[str, str]]:
        return [{**r["query"], **r["form"]} for r in self.sent if r["query"]["method"] == method]


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def credentials(sandbox, shop_name, now):
    return sim.register_shop(sandbox.state, shop_name, now)


@pytest.fixture
def unpaced(monkeypatch):
    """No request budget: for tests that page through a day of slices, not about pacing."""
    monkeypatch.setattr(connector_module, "REQUEST_RATE", RequestRate(per_second=10_000, burst=10_000))


@pytest.fixture
def http():
    with RecordingClient() as client:
        yield client


def connect(sandbox, shop_name, credentials, http=None, page_size=50, **changed) -> TaobaoConnector:
    access = ShopAccess(shop_name, "taobao", f"{sandbox.url}/taobao", {**credentials, **changed})
    return TaobaoConnector(access, http=http, page_size=page_size)


def raw_call(sandbox, credentials, method, secret=None, sign_method="md5", timestamp=None, **business):
    system = {"method": method, "app_key": credentials["app_key"], "session": credentials["access_token"],
              "timestamp": timestamp or china_text(datetime.now(UTC)), "format": "json", "v": "2.0",
              "sign_method": sign_method}
    form = {key: str(value) for key, value in business.items()}
    system["sign"] = sign_params({**system, **form}, secret or credentials["app_secret"], sign_method)
    return httpx.post(f"{sandbox.url}/taobao/router/rest", params=system, data=form, timeout=10)


def add_order(sandbox, shop, status, updated_at, created_at=None, **changes) -> SimOrder:
    order = SimOrder(
        order_id=next(_order_ids), shop=shop, status=status, currency="CNY",
        created_at=created_at or updated_at, updated_at=updated_at,
        lines=[SimLine("SKU-7", "帆布包 黑色", 2, Decimal("59.00"), 1)], shipping_fee=Decimal("8"),
        receiver_name="欧阳娜", phone="13912345678", province="浙江省", city="杭州市",
        district="西湖区", address="文三路 88 号 2 栋 301 室",
    )
    for name, value in changes.items():
        setattr(order, name, value)
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


def tid_of(order: SimOrder) -> str:
    return str(render.tid(order))


def last_minutes(now, minutes=5):
    return now - timedelta(minutes=minutes), now + timedelta(seconds=1)


# ---- the gateway's checks ----------------------------------------------------------------


def test_a_wrong_secret_gets_tops_error_body_and_a_rejection(sandbox, shop_name, credentials, now):
    answer = raw_call(sandbox, credentials, "taobao.logistics.companies.get", secret="wrong", fields="code")
    assert answer.status_code == 200
    error = answer.json()["error_response"]
    assert error["code"] == 25 and {"msg", "request_id"} <= set(error)

    taobao = connect(sandbox, shop_name, credentials, app_secret="wrong")
    with pytest.raises(Rejected) as caught:
        list(taobao.fetch_orders(*last_minutes(now)))
    assert caught.value.code == 25 and not caught.value.retryable


def test_system_parameters_ride_in_the_query_and_business_ones_in_the_body(
    sandbox, shop_name, credentials, http, now
):
    list(connect(sandbox, shop_name, credentials, http=http).fetch_orders(*last_minutes(now)))
    [request] = http.sent
    assert set(request["query"]) == {"method", "app_key", "session", "timestamp", "format", "v",
                                     "sign_method", "sign"}
    assert {"fields", "start_modified", "end_modified", "page_no", "page_size"} <= set(request["form"])
    assert request["query"]["sign_method"] == "md5"
    assert datetime.strptime(request["query"]["timestamp"], "%Y-%m-%d %H:%M:%S")  # China time text


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_the_gateway_checks_each_documented_sign_method(sandbox, credentials, sign_method):
    fine = raw_call(sandbox, credentials, "taobao.logistics.companies.get", sign_method=sign_method,
                    fields="code")
    assert "logistics_companies_get_response" in fine.json()
    wrong = raw_call(sandbox, credentials, "taobao.logistics.companies.get", secret="x",
                     sign_method=sign_method, fields="code")
    assert wrong.json()["error_response"]["code"] == 25


def test_a_skewed_timestamp_and_an_unknown_app_key_are_refused(sandbox, credentials):
    skewed = china_text(datetime.now(UTC) - timedelta(minutes=11))
    stale = raw_call(sandbox, credentials, "taobao.logistics.companies.get", timestamp=skewed, fields="code")
    assert stale.json()["error_response"]["code"] == 31
    stranger = raw_call(sandbox, {**credentials, "app_key": "99999999"}, "taobao.logistics.companies.get",
                        fields="code")
    assert stranger.json()["error_response"]["code"] == 29


# ---- sessions and refresh ---------------------------------------------------------------


def test_an_expired_session_raises_token_expired(sandbox, shop_name, credentials, now):
    sandbox.state.expire(credentials["access_token"])
    taobao = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired) as caught:
        taobao.probe()
    assert caught.value.code == 27 and caught.value.retryable


def test_an_armed_expired_token_fault_raises_token_expired_once(sandbox, shop_name, credentials, now):
    sandbox.state.faults.arm("taobao", "expired_token")
    taobao = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        list(taobao.fetch_orders(*last_minutes(now)))
    assert list(taobao.fetch_orders(*last_minutes(now))) == []


def test_a_service_market_app_refreshes_an_expired_session(sandbox, shop_name, credentials):
    sandbox.state.expire(credentials["access_token"])
    taobao = connect(sandbox, shop_name, credentials)

    grant = taobao.refresh_access(credentials["refresh_token"])

    assert grant.access_token != credentials["access_token"]
    assert timedelta(hours=23) < grant.access_expires_at - datetime.now(UTC) <= timedelta(days=1)
    assert grant.refresh_token and grant.refresh_expires_at > grant.access_expires_at
    connect(sandbox, shop_name, credentials, access_token=grant.access_token).probe()


def test_a_self_use_app_cannot_refresh_so_the_shop_must_be_reauthorised(sandbox, shop_name, now):
    credentials = sim.register_shop(sandbox.state, shop_name, now, app_kind=sim.SELF_USE)
    taobao = connect(sandbox, shop_name, credentials)
    taobao.probe()  # its fixed-length session works meanwhile
    with pytest.raises(Rejected, match="re-authorised") as caught:
        taobao.refresh_access(credentials["refresh_token"])
    assert caught.value.code == sim.NO_ISV_PERMISSION.code


def test_an_unknown_refresh_token_also_asks_for_reauthorisation(sandbox, shop_name, credentials):
    with pytest.raises(Rejected, match="re-authorised"):
        connect(sandbox, shop_name, credentials).refresh_access("6100not-a-token")


# ---- windows and paging ------------------------------------------------------------------


def test_the_simulator_refuses_a_window_over_one_day_and_pages_over_100(sandbox, credentials, now):
    method, end = "taobao.trades.sold.increment.get", china_text(now)
    day_and_a_second = china_text(now - timedelta(days=1, seconds=1))
    too_wide = raw_call(sandbox, credentials, method, fields="tid", start_modified=day_and_a_second,
                        end_modified=end)
    assert too_wide.json()["error_response"]["code"] == 41
    one_day = raw_call(sandbox, credentials, method, fields="tid", end_modified=end,
                       start_modified=china_text(now - timedelta(days=1)))
    assert "trades_sold_increment_get_response" in one_day.json()
    too_big = raw_call(sandbox, credentials, method, fields="tid", end_modified=end, page_size=101,
                       start_modified=china_text(now - timedelta(hours=1)))
    assert too_big.json()["error_response"]["code"] == 41


def test_a_25_hour_window_is_sliced_and_serves_each_trade_as_often_as_taobao_lists_it(
    sandbox, shop_name, credentials, http, now, unpaced
):
    populate(sandbox.state, shop_name, count=400, seed=8, now=now, span_hours=25)
    start, end = now - timedelta(hours=25), now + timedelta(seconds=1)
    taobao = connect(sandbox, shop_name, credentials, http=http, page_size=7)

    got = served(taobao.fetch_orders(start, end))

    expected = Counter(tid_of(o) for o in sandbox.state.shop_orders(shop_name) if start <= o.updated_at < end)
    assert got == expected and sum(got.values()) >= 400
    calls = http.calls("taobao.trades.sold.increment.get")
    spans = [datetime.fromisoformat(c["end_modified"]) - datetime.fromisoformat(c["start_modified"])
             for c in calls]
    assert max(spans) <= timedelta(days=1) and sum(span > timedelta(hours=23) for span in spans) == 1
    slices = {c["start_modified"] for c, span in zip(calls, spans) if span <= timedelta(minutes=30, seconds=1)}
    assert len(slices) >= 50
    assert any(int(c["page_no"]) > 1 for c in calls)


def test_a_quiet_three_day_window_costs_one_call_a_day(sandbox, shop_name, credentials, http, now):
    populate(sandbox.state, shop_name, count=30, seed=9, now=now, span_hours=70)
    start = now - timedelta(hours=71)
    taobao = connect(sandbox, shop_name, credentials, http=http, page_size=100)

    got = served(taobao.fetch_orders(start, now))

    assert sum(got.values()) == len(sandbox.state.shop_orders(shop_name))
    assert len(http.sent) == 3


def test_a_slice_is_read_from_its_last_page_back_to_the_first(sandbox, shop_name, credentials, http, now):
    for minute in range(7):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=20 - minute))
    taobao = connect(sandbox, shop_name, credentials, http=http, page_size=2)

    pages = list(taobao.fetch_orders(now - timedelta(minutes=25), now))

    calls = http.calls("taobao.trades.sold.increment.get")
    assert [(c["page_no"], c["use_has_next"]) for c in calls] == [
        ("1", "false"),  # the count over the whole stretch: more than a page
        ("1", "false"), ("4", "true"), ("3", "true"), ("2", "true"), ("1", "true")]
    times = [raw.platform_updated_at for page in pages for raw in page]
    assert len(times) == 7 and pages[0][0].platform_updated_at == min(times)  # oldest page first


def test_a_trade_on_a_slice_boundary_is_served_once_and_the_windows_end_is_excluded(
    sandbox, shop_name, credentials, now
):
    start = now - timedelta(hours=1, minutes=10)
    on_boundary = add_order(sandbox, shop_name, "paid", start + timedelta(minutes=30))
    before = add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))
    at_end = add_order(sandbox, shop_name, "shipped", now)
    one_a_page = connect(sandbox, shop_name, credentials, page_size=1)  # forces 30-min slices
    got = served(one_a_page.fetch_orders(start, now))
    assert got[tid_of(on_boundary)] == 1
    assert tid_of(before) not in got and tid_of(at_end) not in got


def test_a_trade_modified_while_we_page_does_not_hide_another(sandbox, shop_name, credentials, now):
    start = now - timedelta(minutes=20)
    orders = [add_order(sandbox, shop_name, "paid", start + timedelta(minutes=m)) for m in range(6)]
    newest = orders[-1]

    def modify_the_newest_after_the_count(request: httpx.Request) -> None:
        if len(client.sent) == 3:  # Taobao moves it on while we read the slice's pages
            newest.updated_at = now + timedelta(minutes=1)

    with RecordingClient() as client:
        client.event_hooks["request"].append(modify_the_newest_after_the_count)
        got = served(connect(sandbox, shop_name, credentials, http=client, page_size=2)
                     .fetch_orders(start, now))

    assert {tid_of(o) for o in orders[:-1]} <= set(got)


# ---- faults ------------------------------------------------------------------------------


def test_throttling_raises_rate_limited_with_tops_ban_and_a_retry_succeeds(
    sandbox, shop_name, credentials, now
):
    sandbox.state.faults.arm("taobao", "rate_limit", retry_after=3)
    taobao = connect(sandbox, shop_name, credentials)
    with pytest.raises(RateLimited) as caught:
        taobao.probe()
    assert caught.value.code == 7 and caught.value.retry_after == 3.0
    assert caught.value.body["sub_code"] == sim.THROTTLED.sub_code
    taobao.probe()


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("taobao", "server_error")
    with pytest.raises(Unavailable) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == 502 and caught.value.retryable


def test_a_cut_off_body_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("taobao", "malformed")
    with pytest.raises(Unavailable, match="not JSON"):
        connect(sandbox, shop_name, credentials).logistics_companies()


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("taobao", "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        with pytest.raises(Unavailable):
            connect(sandbox, shop_name, credentials, http=impatient).probe()


@pytest.mark.parametrize("error, expected", [
    ({"code": 15, "msg": "Remote service error", "sub_code": "isp.top-remote-connection-timeout"},
     Unavailable),
    ({"code": 15, "msg": "Remote service error", "sub_code": "isv.invalid-parameter"}, Rejected),
    ({"code": 8, "msg": "App Call Exceeds Limited Frequency"}, RateLimited),
    ({"code": 27, "msg": "Invalid session"}, TokenExpired),
    ({"code": 11, "msg": "Insufficient ISV Permissions"}, Rejected),
])
def test_tops_error_codes_are_translated_by_code_and_sub_code(error, expected):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"error_response": error}))
    access = ShopAccess("mock-shop", "taobao", "http://top.invalid", {"app_key": "1", "app_secret": "s"})
    with httpx.Client(transport=transport) as client:
        with pytest.raises(expected) as caught:
            TaobaoConnector(access, http=client).probe()
    if expected is RateLimited:
        assert caught.value.retry_after == RATE_LIMIT_WAIT_SECONDS


def test_a_malformed_trade_arrives_unkeyed_and_fails_mapping_with_its_reasons(
    sandbox, shop_name, credentials, now
):
    for minutes in (3, 2, 1):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm("taobao", "malformed")
    taobao = connect(sandbox, shop_name, credentials)

    [page] = list(taobao.fetch_orders(*last_minutes(now)))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1 and broken[0].platform_updated_at is None
    with pytest.raises(MappingError) as caught:
        taobao.to_order(broken[0])
    reasons = " ".join(caught.value.reasons)
    assert "tid" in reasons and "orders" in reasons and "modified" in reasons


# ---- statuses and mapping end to end -----------------------------------------------------


def test_every_status_the_simulator_serves_maps_to_the_expected_status(
    sandbox, shop_name, credentials, now
):
    for status in ("unpaid", "paid", "shipped", "delivered", "cancelled", "cancelled"):
        add_order(sandbox, shop_name, status, now - timedelta(minutes=3))
    taobao = connect(sandbox, shop_name, credentials)

    mapped = {(o.platform_status, o.status) for page in taobao.fetch_orders(*last_minutes(now))
              for o in map(taobao.to_order, page)}

    assert mapped == {
        ("WAIT_BUYER_PAY", OrderStatus.PENDING_PAYMENT), ("WAIT_SELLER_SEND_GOODS", OrderStatus.PAID),
        ("WAIT_BUYER_CONFIRM_GOODS", OrderStatus.SHIPPED), ("TRADE_FINISHED", OrderStatus.DELIVERED),
        ("TRADE_CLOSED", OrderStatus.CANCELLED), ("TRADE_CLOSED_BY_TAOBAO", OrderStatus.CANCELLED),
    }


def test_generated_trades_map_unless_they_carry_dirt_mapping_must_refuse(
    sandbox, shop_name, credentials, now, unpaced
):
    orders = populate(sandbox.state, shop_name, count=300, seed=3, now=now, span_hours=6)
    taobao = connect(sandbox, shop_name, credentials)
    refused = []
    for page in taobao.fetch_orders(now - timedelta(hours=7), now):
        for raw in page:
            try:
                order = taobao.to_order(raw)
            except MappingError as error:
                refused.append((raw.platform_order_id, error.reasons))
            else:
                assert order.receiver.masked and order.total_amount > 0 and order.currency == "CNY"
    zero_quantity = {tid_of(o) for o in orders if "zero_quantity" in o.defects}
    assert {tid for tid, _ in refused} == zero_quantity
    assert all(any(".num " in r for r in reasons) for _, reasons in refused)


# ---- tracking write-back -----------------------------------------------------------------


def test_push_tracking_ships_the_trade_and_records_the_waybill(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    taobao = connect(sandbox, shop_name, credentials)

    result = taobao.push_tracking(tid_of(order), "SF", "SF1234567890123")

    assert result.response["shipping"] == {"is_success": True}
    assert result.request["company_code"] == CARRIER_CODES["SF"]
    assert order.status == "shipped" and order.tracking[-1]["tracking_number"] == "SF1234567890123"
    detail = taobao.fetch_order(tid_of(order)).payload
    [line] = detail["orders"]["order"]
    assert (detail["status"], line["invoice_no"], line["logistics_company"]) == (
        "WAIT_BUYER_CONFIRM_GOODS", "SF1234567890123", "顺丰速运")


def test_the_same_waybill_again_succeeds_without_a_second_record_but_another_is_rejected(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    taobao = connect(sandbox, shop_name, credentials)
    taobao.push_tracking(tid_of(order), "ZTO", "73100000000001")

    again = taobao.push_tracking(tid_of(order), "ZTO", "73100000000001")

    assert again.response["already_shipped_with_this_tracking"] is True
    assert len(order.tracking) == 1
    with pytest.raises(Rejected) as caught:
        taobao.push_tracking(tid_of(order), "ZTO", "73100000000002")
    assert caught.value.body["sub_code"] == sim.NOT_SHIPPABLE.sub_code


def test_an_unmapped_carrier_is_rejected_before_any_request(sandbox, shop_name, credentials, http, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    taobao = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected) as caught:
        taobao.push_tracking(tid_of(order), "DHL", "1234567890")
    assert caught.value.code == "unmapped_carrier"
    assert http.sent == [] and order.status == "paid"


def test_every_carrier_we_map_is_on_taobaos_company_list(sandbox, shop_name, credentials):
    listed = {c["code"] for c in connect(sandbox, shop_name, credentials).logistics_companies()}
    assert set(CARRIER_CODES.values()) <= listed


def test_the_simulator_refuses_an_unknown_company_code(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    answer = raw_call(sandbox, credentials, "taobao.logistics.offline.send", tid=tid_of(order),
                      out_sid="1234567890", company_code="NOPE")
    assert answer.json()["error_response"]["sub_code"] == sim.UNKNOWN_COMPANY.sub_code
    assert order.status == "paid"


# ---- receivers ---------------------------------------------------------------------------


def test_receivers_stay_masked_and_keep_their_oaid(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=2))
    taobao = connect(sandbox, shop_name, credentials)
    [[raw]] = list(taobao.fetch_orders(*last_minutes(now)))

    receiver = taobao.to_order(raw).receiver

    text = json.dumps(raw.payload, ensure_ascii=False)
    assert "欧阳娜" not in text and "13912345678" not in text and "88 号" not in text
    assert (receiver.name, receiver.phone, receiver.address) == ("欧**", "*******5678", "文三路 ****")
    assert receiver.masked is True
    assert receiver.encrypted == {"oaid": render.oaid(order)}


def test_decrypt_receivers_opens_oaids_twenty_to_a_call(sandbox, shop_name, credentials, http, now):
    orders = [add_order(sandbox, shop_name, "paid", now - timedelta(minutes=3), receiver_name=f"收件人{n}")
              for n in range(25)]
    taobao = connect(sandbox, shop_name, credentials, http=http)
    trades = [taobao.to_order(raw) for page in taobao.fetch_orders(*last_minutes(now)) for raw in page]

    opened = taobao.decrypt_receivers([(t.platform_order_id, t.receiver.encrypted["oaid"]) for t in trades],
                                      scene="1002")

    assert len(http.calls("taobao.top.oaid.decrypt")) == 2
    names = {o.tid: o.receiver.name for o in opened}
    assert names == {tid_of(o): o.receiver_name for o in orders}
    assert all(o.matched and not o.receiver.masked for o in opened)
    virtual = [o for o in opened if o.privacy_protection]
    assert virtual and all("-" in o.receiver.phone for o in virtual)
    assert "收件人" not in repr(opened)  # plaintext stays out of logs


def test_an_oaid_from_before_an_address_edit_opens_the_old_address_unmatched(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=3))
    taobao = connect(sandbox, shop_name, credentials)
    [[raw]] = list(taobao.fetch_orders(*last_minutes(now)))
    order.address, order.updated_at = "莫干山路 1 号", now - timedelta(minutes=1)

    [opened] = taobao.decrypt_receivers([(raw.platform_order_id, raw.payload["oaid"])], scene="1006")

    assert opened.matched is False and opened.receiver.address == "文三路 88 号 2 栋 301 室"
    with pytest.raises(Rejected):
        taobao.decrypt_receivers([(raw.platform_order_id, raw.payload["oaid"])], scene="9999")


# ---- pacing ------------------------------------------------------------------------------


def test_a_tiny_request_rate_makes_the_connector_wait(sandbox, shop_name, credentials, monkeypatch):
    tiny = RequestRate(per_second=20, burst=1)
    monkeypatch.setattr(connector_module, "REQUEST_RATE", tiny)
    taobao = connect(sandbox, shop_name, credentials)
    started = time.perf_counter()
    for _ in range(3):
        taobao.probe()
    # However slow the calls themselves, three can never fit in less than two intervals.
    assert time.perf_counter() - started >= 2 / tiny.per_second - PACING_SLACK
