"""The Shopee connector against the sandbox's Shopee v2 simulator, over real HTTP."""

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
from connectors.pacing import RequestRate, shop_bucket
from connectors.shopee import (
    CARRIER_CODES,
    ORDER_DETAIL,
    ORDER_LIST,
    RATE_LIMIT_WAIT_SECONDS,
    SHIP_ORDER,
    ShopeeConnector,
    sign,
)
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import shopee as sim
from sandbox.generator import populate
from sandbox.model import SimLine, SimOrder

PACING_SLACK = 0.005  # sleep and clock granularity

UTC = timezone.utc
_order_ids = itertools.count(910_000_001)  # far above the generator's ids
DAY = timedelta(days=1)


class RecordingClient(httpx.Client):
    """An httpx client that keeps the path, query and JSON body of every request it sends."""

    def __init__(self, **options) -> None:
        self.sent: list[dict] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]}, **options)

    def _record(self, request: httpx.Request) -> None:
        body = json.loads(request.content) if request.content else None
        self.sent.append({"method": request.method, "path": request.url.path,
                          "query": dict(request.url.params), "body": body})

    def calls(self, path: str) -> list[dict]:
        return [r for r in self.sent if r["path"].endswith(path)]


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
) -> ShopeeConnector:
    access = ShopAccess(shop_name, "shopee", f"{sandbox.url}/shopee", {**credentials, **changed})
    return ShopeeConnector(access, http=http, page_size=page_size)


def raw_call(
    sandbox, credentials, method: str, path: str, query: dict | None = None,
    body: dict | None = None, key: str | None = None, public: bool = False,
) -> httpx.Response:
    timestamp = str(int(time.time()))
    token, shop_id = ("", "") if public else (credentials["access_token"], credentials["shop_id"])
    params = {"partner_id": credentials["partner_id"], "timestamp": timestamp,
              "sign": sign(key or credentials["partner_key"], credentials["partner_id"], path,
                           timestamp, token, shop_id), **(query or {})}
    if not public:
        params.update(access_token=token, shop_id=shop_id)
    url = f"{sandbox.url}/shopee{path}"
    return httpx.request(method, url, params=params, json=body, timeout=10)


def add_order(sandbox, shop: str, status: str, updated_at: datetime, channel: str | None = None,
              country: str = "SG", currency: str = "SGD") -> SimOrder:
    order = SimOrder(
        order_id=next(_order_ids), shop=shop, status=status, currency=currency,
        created_at=updated_at - timedelta(minutes=5), updated_at=updated_at,
        lines=[SimLine("SKU-MUG-1", "Enamel mug", 2, Decimal("12.90"), 1)],
        shipping_fee=Decimal("3.50"), receiver_name="Harriet Quill", phone="+65 8123 4567",
        province=None, city="Singapore", district=None, address="21 Example Lane #04-12",
        postal_code="049315", country_code=country, buyer_id="buyer-00000042",
    )
    while channel is not None and sim.channel_of(order).name != channel:
        order.order_id = next(_order_ids)
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


# ---- windows and paging ----------------------------------------------------------------


def test_a_20_day_window_is_split_and_serves_every_order_once(
    sandbox, shop_name, credentials, http, now
):
    populate(sandbox.state, shop_name, count=260, seed=17, now=now, span_hours=20 * 24)
    start = now - 20 * DAY
    on_the_boundary = add_order(sandbox, shop_name, "paid", start + 15 * DAY)
    before = add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))
    at_the_end = add_order(sandbox, shop_name, "shipped", now)  # the window's end is excluded
    shopee = connect(sandbox, shop_name, credentials, http=http, page_size=40)

    got = served(shopee.fetch_orders(start, now))

    expected = {sim.order_sn(o) for o in sandbox.state.shop_orders(shop_name)
                if start <= o.updated_at < now}
    assert set(got) == expected and len(expected) > 200
    assert max(got.values()) == 1  # repeated listings and shared seconds come once
    assert got[sim.order_sn(on_the_boundary)] == 1
    assert sim.order_sn(before) not in got and sim.order_sn(at_the_end) not in got
    lists = http.calls(ORDER_LIST)
    spans = {(int(r["query"]["time_from"]), int(r["query"]["time_to"])) for r in lists}
    assert len(spans) == 2 and all(to - frm <= 15 * 86400 for frm, to in spans)
    assert any(r["query"]["cursor"] for r in lists)  # pages were followed by cursor
    assert {r["query"]["time_range_field"] for r in lists} == {"update_time"}
    assert all(len(r["query"]["order_sn_list"].split(",")) <= 50 for r in http.calls(ORDER_DETAIL))


def test_an_order_listed_twice_on_two_pages_is_served_once(
    sandbox, shop_name, credentials, http, now
):
    orders = [add_order(sandbox, shop_name, "paid", now - timedelta(minutes=m)) for m in (3, 2, 1)]
    with sandbox.state.lock:
        sandbox.state.orders[shop_name].append(orders[1])  # Shopee lists it again
    shopee = connect(sandbox, shop_name, credentials, http=http, page_size=1)

    got = served(shopee.fetch_orders(now - timedelta(minutes=5), now))

    assert got == Counter(sim.order_sn(o) for o in orders)
    assert len(http.calls(ORDER_LIST)) == 4


def test_the_simulator_refuses_a_window_over_15_days_with_shopees_error(sandbox, credentials):
    end = int(time.time())
    query = {"time_range_field": "update_time", "time_to": end, "page_size": 100}
    too_wide = raw_call(sandbox, credentials, "GET", ORDER_LIST,
                        {**query, "time_from": end - 15 * 86400 - 1})
    assert too_wide.json()["error"] == "order.order_list_invalid_time"
    assert too_wide.json()["message"] == sim.BAD_WINDOW.message
    widest = raw_call(sandbox, credentials, "GET", ORDER_LIST,
                      {**query, "time_from": end - 15 * 86400})
    assert widest.json()["error"] == "" and widest.json()["response"]["more"] is False
    big_page = raw_call(sandbox, credentials, "GET", ORDER_LIST,
                        {**query, "time_from": end - 60, "page_size": 101})
    assert big_page.json()["error"] == "error_param"


def test_the_simulator_refuses_more_than_50_order_sn_in_one_detail_call(sandbox, credentials):
    answer = raw_call(sandbox, credentials, "GET", ORDER_DETAIL,
                      {"order_sn_list": ",".join(f"SN{n}" for n in range(51))})
    assert answer.json()["error"] == "error_param"


# ---- the gateway's checks --------------------------------------------------------------


def test_a_wrong_partner_key_gets_shopees_sign_error_and_a_rejection(
    sandbox, shop_name, credentials, now
):
    answer = raw_call(sandbox, credentials, "GET", ORDER_LIST, key="not-the-key")
    body = answer.json()
    assert answer.status_code == 403  # [L] see the simulator's HTTP_STATUS
    assert (body["error"], body["message"]) == ("error_sign", "Wrong sign.")
    assert set(body) >= {"request_id", "error", "message"}

    shopee = connect(sandbox, shop_name, credentials, partner_key="not-the-key")
    with pytest.raises(Rejected) as caught:
        list(shopee.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == "error_sign" and not caught.value.retryable


def test_another_shops_id_is_a_rejection_not_an_expired_token(sandbox, shop_name, credentials):
    shopee = connect(sandbox, shop_name, credentials, shop_id="123456")
    with pytest.raises(Rejected) as caught:
        shopee.probe()
    assert caught.value.code == "error_auth"


def test_an_expired_access_token_raises_token_expired(sandbox, shop_name, credentials):
    sandbox.state.expire(credentials["access_token"])
    with pytest.raises(TokenExpired) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == "invalid_acceess_token"  # sic, Shopee's spelling


def test_an_unknown_access_token_raises_token_expired(sandbox, shop_name, credentials):
    with pytest.raises(TokenExpired) as caught:
        connect(sandbox, shop_name, credentials, access_token="f" * 32).probe()
    assert caught.value.code == "error_auth"


def test_an_armed_expired_token_fault_raises_token_expired_once(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("shopee", "expired_token")
    shopee = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        shopee.probe()
    shopee.probe()


# ---- faults ----------------------------------------------------------------------------


def test_throttling_raises_rate_limited_with_shopees_error_and_a_retry_succeeds(
    sandbox, shop_name, credentials
):
    sandbox.state.faults.arm("shopee", "rate_limit")
    throttled = raw_call(sandbox, credentials, "GET", ORDER_LIST)
    assert throttled.status_code == 429 and throttled.json()["error"] == "error_rate_limit"

    sandbox.state.faults.arm("shopee", "rate_limit")
    shopee = connect(sandbox, shop_name, credentials)
    with pytest.raises(RateLimited) as caught:
        shopee.probe()
    assert caught.value.code == "error_rate_limit"
    assert caught.value.retry_after == RATE_LIMIT_WAIT_SECONDS
    shopee.probe()  # the retry goes through


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("shopee", "server_error")
    with pytest.raises(Unavailable) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == 502 and caught.value.retryable


def test_a_body_cut_short_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("shopee", "malformed")  # an empty list: nothing to break but the body
    with pytest.raises(Unavailable, match="not JSON"):
        connect(sandbox, shop_name, credentials).probe()


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("shopee", "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        with pytest.raises(Unavailable):
            connect(sandbox, shop_name, credentials, http=impatient).probe()


def test_a_list_entry_without_order_sn_comes_back_unkeyed_for_review(
    sandbox, shop_name, credentials, now
):
    for minutes in (3, 2, 1):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm("shopee", "malformed")
    shopee = connect(sandbox, shop_name, credentials)

    [page] = list(shopee.fetch_orders(now - timedelta(minutes=5), now))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1 and broken[0].unreadable_reason
    with pytest.raises(MappingError, match="order_sn"):
        shopee.to_order(broken[0])


def test_a_broken_order_detail_fails_mapping_with_every_reason(
    sandbox, shop_name, credentials, now
):
    orders = [add_order(sandbox, shop_name, "paid", now - timedelta(minutes=m)) for m in (1, 2, 3)]
    sandbox.state.faults.arm("shopee", "malformed")
    shopee = connect(sandbox, shop_name, credentials)

    raws = shopee.order_details([sim.order_sn(o) for o in orders])

    [broken] = [raw for raw in raws if raw.platform_order_id is None]
    assert len(raws) == 3 and broken.platform_updated_at is None
    with pytest.raises(MappingError) as caught:
        shopee.to_order(broken)
    reasons = "\n".join(caught.value.reasons)
    assert "order_sn" in reasons and "update_time" in reasons and "item_list" in reasons


# ---- statuses and receivers ------------------------------------------------------------


def test_every_status_the_simulator_serves_maps_to_the_expected_status(
    sandbox, shop_name, credentials, now
):
    expected = {"UNPAID": OrderStatus.PENDING_PAYMENT, "READY_TO_SHIP": OrderStatus.PAID,
                "SHIPPED": OrderStatus.SHIPPED, "COMPLETED": OrderStatus.DELIVERED,
                "CANCELLED": OrderStatus.CANCELLED}
    assert set(sim.ORDER_STATUS.values()) == set(expected)
    for minutes, status in enumerate(sim.ORDER_STATUS, start=1):
        add_order(sandbox, shop_name, status, now - timedelta(minutes=minutes))
    shopee = connect(sandbox, shop_name, credentials)

    orders = [shopee.to_order(raw) for page in shopee.fetch_orders(now - DAY, now) for raw in page]

    assert {o.platform_status: o.status for o in orders} == expected
    unpaid = next(o for o in orders if o.platform_status == "UNPAID")
    assert unpaid.total_amount == Decimal("29.3") and unpaid.paid_at is None


def test_the_receiver_stays_masked_and_no_plaintext_crosses_the_wire(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=2))
    taiwan = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=1),
                       country="TW", currency="TWD")
    shopee = connect(sandbox, shop_name, credentials)

    pages = shopee.fetch_orders(now - DAY, now)
    raws = {raw.platform_order_id: raw for page in pages for raw in page}

    wire = json.dumps([raw.payload for raw in raws.values()])
    for plaintext in ("Harriet", "Quill", "8123 4567", "81234567", "Example Lane"):
        assert plaintext not in wire
    receiver = shopee.to_order(raws[sim.order_sn(order)]).receiver
    shown = (receiver.name, receiver.phone, receiver.address)
    assert shown == ("H***********l", "******67", "21******")
    assert receiver.masked and receiver.encrypted == {} and receiver.country_code == "SG"
    assert (receiver.city, receiver.postal_code) == ("Singapore", "049315")
    hidden = shopee.to_order(raws[sim.order_sn(taiwan)])
    shown = (hidden.receiver.name, hidden.receiver.city, hidden.receiver.country_code)
    assert shown == ("****", "****", "TW")
    assert hidden.currency == "TWD" and hidden.receiver.masked


# ---- tracking write-back ---------------------------------------------------------------


def test_a_push_on_the_orders_channel_ships_it_and_a_repeat_is_not_recorded_twice(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=2), channel="Ninja Van")
    shopee = connect(sandbox, shop_name, credentials, http=http)

    result = shopee.push_tracking(sim.order_sn(order), "NINJAVAN", "NVSG0000012345")

    assert result.request["dropoff"] == {"tracking_number": "NVSG0000012345"}
    assert order.status == "shipped" and len(order.tracking) == 1
    assert order.tracking[0]["tracking_number"] == "NVSG0000012345"
    [shipped] = shopee.order_details([sim.order_sn(order)])
    assert shopee.to_order(shipped).status == OrderStatus.SHIPPED

    again = shopee.push_tracking(sim.order_sn(order), "NINJAVAN", "NVSG0000012345")

    assert again.response["already_shipped_with_this_tracking"] is True
    assert len(order.tracking) == 1 and len(http.calls(SHIP_ORDER)) == 1
    with pytest.raises(Rejected):
        shopee.push_tracking(sim.order_sn(order), "NINJAVAN", "NVSG0000099999")


def test_a_non_integrated_channel_takes_the_tracking_number_there(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=2), channel="DHL eCommerce")
    shopee = connect(sandbox, shop_name, credentials)
    result = shopee.push_tracking(sim.order_sn(order), "DHL", "DHL123")
    assert result.request["non_integrated"] == {"tracking_number": "DHL123"}
    assert order.tracking[-1]["method"] == "non_integrated"


def test_an_unmapped_carrier_is_rejected_before_any_request(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    shopee = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected) as caught:
        shopee.push_tracking(sim.order_sn(order), "SF", "SF1234567890")
    assert caught.value.code == "unmapped_carrier" and "SF" not in CARRIER_CODES
    assert http.sent == [] and order.status == "paid"


def test_a_carrier_other_than_the_orders_channel_is_refused(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1), channel="J&T Express")
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).push_tracking(sim.order_sn(order), "DHL", "X1")
    assert caught.value.code == "carrier_mismatch" and order.status == "paid"


def test_an_integrated_channel_cannot_take_our_tracking_number(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1), channel="SPX Express")
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).push_tracking(sim.order_sn(order), "SPX", "SPX1")
    assert caught.value.code == "platform_issues_tracking" and order.tracking == []


def test_a_tracking_number_of_another_order_is_refused(sandbox, shop_name, credentials, now):
    first, second = (
        add_order(sandbox, shop_name, "paid", now - timedelta(hours=h), channel="Ninja Van")
        for h in (1, 2)
    )
    shopee = connect(sandbox, shop_name, credentials)
    shopee.push_tracking(sim.order_sn(first), "NINJAVAN", "NV-SHARED-1")
    with pytest.raises(Rejected) as caught:
        shopee.push_tracking(sim.order_sn(second), "NINJAVAN", "NV-SHARED-1")
    assert caught.value.code == "logistics.error_param" and second.status == "paid"


def test_ship_order_takes_exactly_one_method(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1), channel="Ninja Van")
    both = {"order_sn": sim.order_sn(order), "dropoff": {"tracking_number": "A"},
            "non_integrated": {"tracking_number": "A"}}
    answer = raw_call(sandbox, credentials, "POST", SHIP_ORDER, body=both)
    assert answer.json()["error"] == "logistics.ship_order_only_support_one_type"
    assert order.status == "paid"


# ---- tokens and pacing -----------------------------------------------------------------


def test_a_refresh_rotates_both_tokens_and_a_spent_refresh_token_is_refused(
    sandbox, shop_name, credentials, now
):
    shopee = connect(sandbox, shop_name, credentials)
    sandbox.state.expire(credentials["access_token"])

    grant = shopee.refresh_access(credentials["refresh_token"])

    assert grant.access_token != credentials["access_token"]
    assert grant.refresh_token not in (None, credentials["refresh_token"])
    assert abs(grant.access_expires_at - (now + timedelta(hours=4))) < timedelta(minutes=1)
    assert abs(grant.refresh_expires_at - (now + timedelta(days=30))) < timedelta(minutes=1)
    shopee.probe()  # the connector now calls with the new access token
    with pytest.raises(Rejected) as caught:
        shopee.refresh_access(credentials["refresh_token"])
    assert caught.value.code == "error_shop_refresh_token"
    assert shopee.refresh_access(grant.refresh_token).access_token  # the new one works, once


def test_an_expired_refresh_token_says_so(sandbox, shop_name, credentials, now):
    spent = sandbox.state.refresh_tokens[credentials["refresh_token"]]
    spent.expires_at = now - timedelta(seconds=1)
    with pytest.raises(Rejected) as caught:
        connect(sandbox, shop_name, credentials).refresh_access(credentials["refresh_token"])
    assert caught.value.code == "refresh_token_expired"


def test_every_request_waits_for_the_shops_request_budget(sandbox, shop_name, credentials):
    tiny = RequestRate(per_second=10, burst=1)
    access = ShopAccess(shop_name, "shopee", f"{sandbox.url}/shopee", credentials)
    shopee = ShopeeConnector(access, request_rate=tiny)
    bucket = shop_bucket("shopee", shop_name, tiny)

    started = time.monotonic()
    for _ in range(4):
        shopee.probe()

    # However slow the calls themselves, four never fit in less than three intervals.
    assert time.monotonic() - started >= 3 / tiny.per_second - PACING_SLACK
    assert bucket.waited_seconds > 0
