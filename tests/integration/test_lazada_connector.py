"""The Lazada connector against the sandbox's Lazada simulator, over real HTTP."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.base import ShopAccess
from connectors.lazada import CARRIER_CODES, MAX_OFFSET, LazadaConnector, sign_request
from connectors.pacing import RequestRate
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import lazada as sim
from sandbox.generator import populate
from sandbox.model import SimLine, SimOrder

PACING_SLACK = 0.005  # sleep and clock granularity

UTC = timezone.utc
FAST = RequestRate(per_second=100_000, burst=100_000)  # pacing has its own test


class RecordingClient(httpx.Client):
    """An httpx client that keeps the path and parameters of every request it sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        params = dict(request.url.params) | dict(parse_qsl(request.content.decode()))
        self.sent.append((request.url.path.removeprefix("/lazada/rest"), params))

    def calls(self, api_path: str) -> list[dict[str, str]]:
        return [params for path, params in self.sent if path == api_path]


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


def connect(sandbox, shop_name, credentials, http=None, page_size=100, rate=FAST, **changed):
    access = ShopAccess(shop_name, "lazada", sandbox.url + sim.base_path(shop_name),
                        {**credentials, **changed})
    return LazadaConnector(access, http=http, page_size=page_size, rate=rate)


def raw_call(sandbox, credentials, api_path: str, secret: str | None = None,
             timestamp: int | None = None, **business) -> dict:
    params = {"app_key": credentials["app_key"], "access_token": credentials["access_token"],
              "sign_method": "sha256", "timestamp": str(timestamp or int(time.time() * 1000)),
              **{k: str(v) for k, v in business.items()}}
    params["sign"] = sign_request(api_path, params, secret or credentials["app_secret"])
    return httpx.get(f"{sandbox.url}/lazada/rest{api_path}", params=params, timeout=10).json()


def add_order(sandbox, shop: str, status: str, updated_at: datetime, units: int = 1,
              order_id: int | None = None) -> SimOrder:
    order = SimOrder(
        order_id=order_id or next_order_id(sandbox), shop=shop, status=status, currency="THB",
        country_code="TH",
        created_at=updated_at - timedelta(minutes=5), updated_at=updated_at,
        lines=[SimLine("SKU-1", "Insulated bottle", units, Decimal("259.00"), 1)],
        shipping_fee=Decimal("40"), receiver_name="Malee Sukjai", phone="+66 89 765 4321",
        province="Chiang Mai", city="Mueang", district="Suthep", address="12 Huay Kaew Road",
        postal_code="50200", buyer_id="buyer-00000042",
    )
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def next_order_id(sandbox) -> int:
    """Above every id in the state, as the generator numbers its orders."""
    with sandbox.state.lock:
        return 1 + max((o.order_id for orders in sandbox.state.orders.values() for o in orders),
                       default=0)


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


def lazada_id(order: SimOrder) -> str:
    return str(sim.lazada_order_id(order))


# ---- windows and paging ---------------------------------------------------------------


def test_a_window_holding_more_than_5000_orders_is_split_and_every_order_comes_once(
    sandbox, shop_name, credentials, http, now
):
    start, first_id = now - timedelta(hours=10), next_order_id(sandbox)
    for n in range(MAX_OFFSET + 150):
        add_order(sandbox, shop_name, "paid", start + timedelta(seconds=6 * n),
                  order_id=first_id + n)
    lazada = connect(sandbox, shop_name, credentials, http=http)

    got = served(lazada.fetch_orders(start, now))

    assert got == Counter(lazada_id(o) for o in sandbox.state.shop_orders(shop_name))
    assert sum(got.values()) == MAX_OFFSET + 150
    listings = http.calls("/orders/get")
    assert max(int(p["offset"]) for p in listings) < MAX_OFFSET
    assert len({p["update_after"] for p in listings}) >= 2  # the window was halved


def test_small_pages_of_a_generated_shop_serve_every_order_of_the_window_once(
    sandbox, shop_name, credentials, http, now
):
    populate(sandbox.state, shop_name, count=300, seed=5, now=now, span_hours=6,
             market=sim.MARKET)
    start = now - timedelta(hours=4)
    on_the_start = add_order(sandbox, shop_name, "paid", start)
    just_before = add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))
    on_the_end = add_order(sandbox, shop_name, "paid", now)  # the window's end is excluded
    lazada = connect(sandbox, shop_name, credentials, http=http, page_size=40)

    pages = list(lazada.fetch_orders(start, now))

    expected = Counter(lazada_id(o) for o in sandbox.state.shop_orders(shop_name)
                       if start <= o.updated_at < now)
    got = served(pages)
    assert got == expected and sum(got.values()) > 100
    assert got[lazada_id(on_the_start)] == 1
    assert lazada_id(just_before) not in got and lazada_id(on_the_end) not in got
    assert all(isinstance(raw.payload.get("order_items"), list) for page in pages for raw in page)
    assert {p["limit"] for p in http.calls("/orders/get")} == {"40"}


def test_the_simulator_refuses_an_offset_past_5000_and_a_limit_past_100(sandbox, credentials, now):
    window = {"update_after": (now - timedelta(days=1)).isoformat()}
    too_far = raw_call(sandbox, credentials, "/orders/get", offset=MAX_OFFSET + 1, **window)
    too_big = raw_call(sandbox, credentials, "/orders/get", limit=101, **window)
    furthest = raw_call(sandbox, credentials, "/orders/get", offset=MAX_OFFSET, **window)
    assert too_far["code"] == too_big["code"] == sim.BAD_PARAMETER.code
    assert furthest["code"] == "0" and furthest["data"]["orders"] == []


def test_an_order_updated_while_we_page_does_not_hide_another_order(
    sandbox, shop_name, credentials, now
):
    start = now - timedelta(minutes=20)
    orders = [add_order(sandbox, shop_name, "paid", start + timedelta(minutes=m)) for m in range(6)]

    def move_the_first_order_on_once_the_first_page_was_read(request: httpx.Request) -> None:
        if len(client.sent) == 3:  # after the count and one page, before the next page
            orders[0].updated_at = now + timedelta(minutes=1)

    with RecordingClient() as client:
        client.event_hooks["request"].append(move_the_first_order_on_once_the_first_page_was_read)
        got = served(connect(sandbox, shop_name, credentials, http=client, page_size=2)
                     .fetch_orders(start, now))

    assert {lazada_id(o) for o in orders[1:]} <= set(got)


# ---- the gateway's checks -------------------------------------------------------------


def test_a_wrong_signature_gets_lazadas_error_body_and_a_rejection(
    sandbox, shop_name, credentials, now
):
    body = raw_call(sandbox, credentials, "/orders/get", secret="wrong",
                    update_after=now.isoformat())
    assert body["code"] == sim.BAD_SIGNATURE.code
    assert {"type", "message", "request_id"} <= set(body) and "data" not in body

    lazada = connect(sandbox, shop_name, credentials, app_secret="wrong")
    with pytest.raises(Rejected) as caught:
        list(lazada.fetch_orders(now - timedelta(minutes=5), now))
    assert caught.value.code == sim.BAD_SIGNATURE.code and not caught.value.retryable


def test_an_unknown_app_key_and_a_stale_timestamp_are_refused(sandbox, credentials, now):
    query = {"update_after": now.isoformat()}
    unknown = raw_call(sandbox, {**credentials, "app_key": "1"}, "/orders/get", **query)
    stale_ms = int((time.time() - 7300) * 1000)
    stale = raw_call(sandbox, credentials, "/orders/get", timestamp=stale_ms, **query)
    assert (unknown["code"], stale["code"]) == (sim.UNKNOWN_APP.code, sim.STALE_TIMESTAMP.code)


def test_an_expired_access_token_raises_token_expired(sandbox, shop_name, credentials):
    sandbox.state.expire(credentials["access_token"])
    with pytest.raises(TokenExpired) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == "IllegalAccessToken" and caught.value.retryable


def test_an_armed_expired_token_fault_raises_token_expired_once(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("lazada", "expired_token")
    lazada = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        lazada.probe()
    lazada.probe()


def test_throttling_raises_rate_limited_with_lazadas_code_and_a_retry_succeeds(
    sandbox, shop_name, credentials, now
):
    add_order(sandbox, shop_name, "paid", now - timedelta(minutes=2))
    sandbox.state.faults.arm("lazada", "rate_limit", retry_after=3)
    lazada = connect(sandbox, shop_name, credentials)
    window = (now - timedelta(minutes=5), now)

    with pytest.raises(RateLimited) as caught:
        list(lazada.fetch_orders(*window))

    assert caught.value.code == "ApiCallLimit" and caught.value.retry_after == 3.0
    assert sum(served(lazada.fetch_orders(*window)).values()) == 1


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("lazada", "server_error")
    with pytest.raises(Unavailable) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == 502 and caught.value.retryable


def test_a_body_that_is_not_json_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("lazada", "malformed")  # nothing order-shaped: the body is cut
    with pytest.raises(Unavailable, match="not JSON"):
        connect(sandbox, shop_name, credentials).probe()


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm("lazada", "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        with pytest.raises(Unavailable):
            connect(sandbox, shop_name, credentials, http=impatient).probe()


def test_a_malformed_order_arrives_unkeyed_and_fails_mapping_with_its_reasons(
    sandbox, shop_name, credentials, now
):
    for minutes in (3, 2, 1):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm("lazada", "malformed")
    lazada = connect(sandbox, shop_name, credentials)

    [page] = list(lazada.fetch_orders(now - timedelta(minutes=5), now))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1
    with pytest.raises(MappingError) as caught:
        lazada.to_order(broken[0])
    reasons = " ".join(caught.value.reasons)
    assert "order_id" in reasons and "price" in reasons and "order_items" in reasons


# ---- statuses and receivers, end to end -----------------------------------------------


def test_every_status_the_simulator_serves_maps_to_the_expected_status(
    sandbox, shop_name, credentials, now
):
    for status in sim.STATUS_VALUES:
        add_order(sandbox, shop_name, status, now - timedelta(minutes=10))
    lazada = connect(sandbox, shop_name, credentials)
    to_ship = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=10))
    lazada.push_tracking(lazada_id(to_ship), "FLASH", "TH0123456789")

    pages = lazada.fetch_orders(now - timedelta(minutes=15), now + timedelta(minutes=1))
    seen = {(order.platform_status, order.status)
            for order in (lazada.to_order(raw) for page in pages for raw in page)}

    assert seen == {
        ("unpaid", OrderStatus.PENDING_PAYMENT), ("pending", OrderStatus.PAID),
        ("shipped", OrderStatus.SHIPPED), ("ready_to_ship", OrderStatus.SHIPPED),
        ("delivered", OrderStatus.DELIVERED), ("canceled", OrderStatus.CANCELLED),
    }


def test_receivers_stay_masked_and_there_is_no_decrypt_call_to_make(
    sandbox, shop_name, credentials, now
):
    add_order(sandbox, shop_name, "paid", now - timedelta(minutes=3))
    lazada = connect(sandbox, shop_name, credentials)

    [[raw]] = list(lazada.fetch_orders(now - timedelta(minutes=5), now))
    receiver = lazada.to_order(raw).receiver

    assert receiver.masked and receiver.encrypted == {}  # Lazada documents no decrypt API
    assert (receiver.name, receiver.phone) == ("M*** S***", "66*******21")
    text = json.dumps(raw.payload, ensure_ascii=False)
    assert "Malee" not in text and "897654321" not in text


# ---- tracking write-back --------------------------------------------------------------


def test_push_tracking_marks_every_item_ready_to_ship_and_a_repeat_sends_nothing_new(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1), units=2)
    lazada = connect(sandbox, shop_name, credentials, http=http)

    result = lazada.push_tracking(lazada_id(order), "LEX", "LEXTH0000001")

    assert result.request["shipment_provider"] == CARRIER_CODES["LEX"]
    assert result.request["order_item_ids"] == sim.item_ids(order)
    assert order.status == "shipped" and len(order.tracking) == 1
    assert order.tracking[-1]["tracking_number"] == "LEXTH0000001"
    items = lazada.order_items(lazada_id(order))
    assert {(i["status"], i["tracking_code"]) for i in items} == {("ready_to_ship", "LEXTH0000001")}

    again = lazada.push_tracking(lazada_id(order), "LEX", "LEXTH0000001")

    assert again.response["already_shipped_with_this_tracking"] is True
    assert len(order.tracking) == 1 and len(http.calls("/order/rts")) == 1
    with pytest.raises(Rejected):
        lazada.push_tracking(lazada_id(order), "LEX", "LEXTH0000002")


def test_an_unmapped_carrier_is_rejected_before_any_request(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    lazada = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected) as caught:
        lazada.push_tracking(lazada_id(order), "SF", "SF1234567890")
    assert caught.value.code == "unmapped_carrier"
    assert http.sent == [] and order.status == "paid"


def test_a_cancelled_order_is_not_shipped(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "cancelled", now - timedelta(hours=1))
    with pytest.raises(Rejected):
        connect(sandbox, shop_name, credentials).push_tracking(lazada_id(order), "JT", "JT1")
    assert order.tracking == []


def test_the_simulator_refuses_an_unknown_shipment_provider(sandbox, shop_name, credentials, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    params = {"app_key": credentials["app_key"], "access_token": credentials["access_token"],
              "sign_method": "sha256", "timestamp": str(int(time.time() * 1000))}
    form = {"delivery_type": "dropship", "order_item_ids": json.dumps(sim.item_ids(order)),
            "shipment_provider": "Pony Express", "tracking_number": "P1"}
    params["sign"] = sign_request("/order/rts", params | form, credentials["app_secret"])
    body = httpx.post(f"{sandbox.url}/lazada/rest/order/rts", params=params, data=form).json()
    assert body["code"] == sim.UNKNOWN_PROVIDER.code and order.status == "paid"


def test_every_carrier_we_map_is_a_provider_the_platform_lists(sandbox, shop_name, credentials):
    listed = connect(sandbox, shop_name, credentials).shipment_providers()
    assert set(CARRIER_CODES.values()) <= set(listed)


# ---- tokens and pacing ----------------------------------------------------------------


def test_a_refresh_brings_a_30_day_token_that_works_after_the_old_one_lapsed(
    sandbox, shop_name, credentials, http, now
):
    sandbox.state.expire(credentials["access_token"])
    lazada = connect(sandbox, shop_name, credentials, http=http)

    grant = lazada.refresh_access(credentials["refresh_token"])

    assert grant.access_token != credentials["access_token"]
    assert abs(grant.access_expires_at - (now + timedelta(days=30))) < timedelta(minutes=1)
    assert abs(grant.refresh_expires_at - (now + timedelta(days=180))) < timedelta(minutes=1)
    lazada.probe()  # with the new token
    [refresh] = http.calls("/auth/token/refresh")
    assert "access_token" not in refresh


def test_an_unknown_or_expired_refresh_token_is_refused_for_good(sandbox, shop_name, credentials):
    lazada = connect(sandbox, shop_name, credentials)
    with pytest.raises(Rejected) as caught:
        lazada.refresh_access("50000-not-a-token")
    assert caught.value.code == "IllegalRefreshToken"
    record = sandbox.state.refresh_tokens[credentials["refresh_token"]]
    record.expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    with pytest.raises(Rejected):
        lazada.refresh_access(credentials["refresh_token"])


def test_requests_wait_for_the_shops_pacing_bucket(sandbox, shop_name, credentials):
    slow = RequestRate(per_second=20.0, burst=1)
    lazada = connect(sandbox, shop_name, credentials, rate=slow)
    started = time.perf_counter()
    for _ in range(4):
        lazada.probe()
    # However slow the calls themselves, four never fit in less than three intervals.
    assert time.perf_counter() - started >= 3 / slow.per_second - PACING_SLACK
