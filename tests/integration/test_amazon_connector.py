"""The Amazon connector against the sandbox's SP-API simulator, over real HTTP."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from faker import Faker

from connectors.amazon import (
    CARRIER_CODES,
    PLATFORM,
    REQUEST_RATE,
    AmazonConnector,
    iso_seconds,
)
from connectors.base import ShopAccess
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox import amazon as sim
from sandbox import amazon_render as wire
from sandbox.generator import populate
from sandbox.markets import GERMANY, UNITED_STATES
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc
US = "ATVPDKIKX0DER"
_order_ids = itertools.count(910_000_001)  # far above the generator's ids
_fake = Faker("en_US")
_fake.seed_instance(20)
# Loopback tests must not wait a minute per getOrders call: every operation runs fast.
FAST_RATE = RequestRate(per_second=10_000, burst=10_000)


class RecordingClient(httpx.Client):
    """An httpx client that keeps every request it sends."""

    def __init__(self, **options) -> None:
        self.sent: list[httpx.Request] = []
        super().__init__(timeout=options.pop("timeout", 10),
                         event_hooks={"request": [self.sent.append]}, **options)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.sent]


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


def connect(sandbox, shop_name, credentials, http=None, page_size=100, rates=None,
            restricted_data=False, **changed) -> AmazonConnector:
    access = ShopAccess(shop_name, PLATFORM, f"{sandbox.url}/amazon", {**credentials, **changed})
    return AmazonConnector(access, http=http, page_size=page_size, request_rate=FAST_RATE,
                           rates=rates, restricted_data=restricted_data)


def raw_get(sandbox, path: str, token: str, **params) -> httpx.Response:
    return httpx.get(f"{sandbox.url}/amazon{path}", params=params, timeout=10,
                     headers={"x-amz-access-token": token})


def add_order(sandbox, shop: str, status: str, updated_at: datetime, lines=None,
              country="US", currency="USD") -> SimOrder:
    order = SimOrder(
        order_id=next(_order_ids), shop=shop, status=status, currency=currency,
        created_at=updated_at - timedelta(minutes=30), updated_at=updated_at,
        lines=lines or [SimLine("SKU-MUG-1", "Enamel mug", 2, Decimal("12.50"), 0)],
        shipping_fee=Decimal("4.99"), receiver_name=_fake.name(), phone="+1 202-555-0143",
        province="WA", city=_fake.city(), district=None, address=_fake.street_address(),
        postal_code="98101", country_code=country, buyer_id="buyer-1",
    )
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def served(pages) -> Counter:
    return Counter(raw.platform_order_id for page in pages for raw in page)


def a_while_ago(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


# ---- windows and paging --------------------------------------------------------------


def test_a_window_ending_now_is_cut_two_minutes_back_and_paged_to_every_order_once(
    sandbox, shop_name, credentials, http, now
):
    populate(sandbox.state, shop_name, count=130, seed=5, now=now, span_hours=6,
             market=UNITED_STATES)
    start = now - timedelta(hours=7)
    at_start = add_order(sandbox, shop_name, "paid", start)
    add_order(sandbox, shop_name, "paid", start - timedelta(seconds=1))  # just before
    too_fresh = add_order(sandbox, shop_name, "paid", now - timedelta(seconds=30))
    amazon = connect(sandbox, shop_name, credentials, http=http, page_size=25)

    got = served(amazon.fetch_orders(start, now))

    lists = [r for r in http.sent if r.url.path.endswith("/orders/v0/orders")]
    cut = datetime.fromisoformat(lists[0].url.params["LastUpdatedBefore"])
    assert cut <= datetime.now(UTC) - timedelta(minutes=2)
    expected = Counter(wire.amazon_order_id(o) for o in sandbox.state.shop_orders(shop_name)
                       if start <= o.updated_at < cut)
    assert got == expected and sum(got.values()) > 100
    assert got[wire.amazon_order_id(at_start)] == 1
    assert wire.amazon_order_id(too_fresh) not in got
    assert len(lists) >= sum(got.values()) // 25 >= 4  # 25 a page
    assert all(set(r.url.params) == {"MarketplaceIds", "NextToken"} for r in lists[1:])
    items_calls = [p for p in http.paths() if p.endswith("/orderItems")]
    assert len(items_calls) == sum(got.values())  # each order carries its items


def test_the_simulator_refuses_an_upper_bound_less_than_two_minutes_ago(sandbox, credentials):
    token = credentials["access_token"]
    query = {"MarketplaceIds": US, "LastUpdatedAfter": iso_seconds(a_while_ago(60))}
    too_recent = raw_get(sandbox, "/orders/v0/orders", token,
                         LastUpdatedBefore=iso_seconds(a_while_ago(1.5)), **query)
    assert too_recent.status_code == 400
    [error] = too_recent.json()["errors"]
    assert error["code"] == "InvalidInput" and "2 minutes" in error["details"]
    settled = raw_get(sandbox, "/orders/v0/orders", token,
                      LastUpdatedBefore=iso_seconds(a_while_ago(2.5)), **query)
    assert settled.status_code == 200 and "Orders" in settled.json()["payload"]
    wide_page = raw_get(sandbox, "/orders/v0/orders", token, MaxResultsPerPage=101, **query)
    assert wide_page.json()["errors"][0]["code"] == "InvalidInput"


def test_a_next_token_carries_the_filters_so_new_ones_are_ignored(
    sandbox, shop_name, credentials, now
):
    for minutes in range(10, 15):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    token = credentials["access_token"]
    first = raw_get(sandbox, "/orders/v0/orders", token, MarketplaceIds=US, MaxResultsPerPage=2,
                    LastUpdatedAfter=iso_seconds(now - timedelta(minutes=20))).json()["payload"]
    rest = raw_get(sandbox, "/orders/v0/orders", token, MarketplaceIds=US,
                   NextToken=first["NextToken"], LastUpdatedAfter=iso_seconds(now))
    rest = rest.json()["payload"]
    assert len(first["Orders"]) == 2 and len(rest["Orders"]) == 2 and "NextToken" in rest


def test_order_statuses_filter_the_listing(sandbox, shop_name, credentials, now):
    paid = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=10))
    add_order(sandbox, shop_name, "cancelled", now - timedelta(minutes=11))
    listing = raw_get(sandbox, "/orders/v0/orders", credentials["access_token"], MarketplaceIds=US,
                      OrderStatuses="Unshipped,PartiallyShipped",
                      LastUpdatedAfter=iso_seconds(now - timedelta(minutes=20))).json()["payload"]
    assert [o["AmazonOrderId"] for o in listing["Orders"]] == [wire.amazon_order_id(paid)]


def test_items_are_followed_through_their_own_next_token(
    sandbox, shop_name, credentials, http, now, monkeypatch
):
    monkeypatch.setattr(sim, "ITEMS_PAGE_SIZE", 1)
    lines = [SimLine(f"SKU-{n}", f"Item {n}", 1, Decimal("3.00"), 0) for n in range(3)]
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=10), lines=lines)
    amazon = connect(sandbox, shop_name, credentials, http=http)

    [[raw]] = list(amazon.fetch_orders(now - timedelta(minutes=20), now))

    assert [line.sku for line in amazon.to_order(raw).lines] == ["SKU-0", "SKU-1", "SKU-2"]
    item_pages = [r for r in http.sent if r.url.path.endswith("/orderItems")]
    assert len(item_pages) == 3 and "NextToken" in item_pages[-1].url.params
    assert raw.platform_order_id == wire.amazon_order_id(order)


def test_an_order_updated_while_we_page_does_not_hide_another(sandbox, shop_name, credentials, now):
    start = now - timedelta(minutes=30)
    orders = [add_order(sandbox, shop_name, "paid", start + timedelta(minutes=m)) for m in range(6)]

    def move_the_first_order_after_the_first_page(request: httpx.Request) -> None:
        if request.url.params.get("NextToken") and orders[0].updated_at < now:
            orders[0].updated_at = now  # the platform moves it on while we read on

    with RecordingClient() as client:
        client.event_hooks["request"].append(move_the_first_order_after_the_first_page)
        got = served(connect(sandbox, shop_name, credentials, http=client,
                             page_size=2).fetch_orders(start, now))

    assert {wire.amazon_order_id(o) for o in orders} <= set(got)


# ---- credentials and tokens ------------------------------------------------------------


def test_a_wrong_client_secret_gets_lwas_own_error_and_a_rejection(
    sandbox, shop_name, credentials, now
):
    form = {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
            "client_id": credentials["client_id"], "client_secret": "wrong"}
    answer = httpx.post(f"{sandbox.url}/amazon/auth/o2/token", data=form, timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client", "error_description": sim.LWA_BAD_CLIENT[2]}

    amazon = connect(sandbox, shop_name, credentials, client_secret="wrong", access_token="")
    with pytest.raises(Rejected) as caught:
        list(amazon.fetch_orders(now - timedelta(hours=1), now))
    assert caught.value.code == "invalid_client" and not caught.value.retryable


def test_a_forged_access_token_is_refused_with_amazons_error_body(sandbox, shop_name, credentials):
    answer = raw_get(sandbox, "/orders/v0/orders", "Atza|forged", MarketplaceIds=US,
                     LastUpdatedAfter=iso_seconds(a_while_ago(30)))
    assert answer.status_code == 403
    assert answer.json()["errors"] == [{
        "code": "Unauthorized", "message": "Access to requested resource is denied.",
        "details": "The access token you provided is revoked, malformed or invalid."}]
    amazon = connect(sandbox, shop_name, credentials, access_token="Atza|forged")
    with pytest.raises(Rejected) as caught:
        amazon.probe()
    assert caught.value.code == "Unauthorized"


def test_a_sigv4_signature_sent_anyway_is_ignored(sandbox, credentials):
    answer = httpx.get(f"{sandbox.url}/amazon/orders/v0/orders", timeout=10,
                       params={"MarketplaceIds": US,
                               "LastUpdatedAfter": iso_seconds(a_while_ago(30))},
                       headers={"x-amz-access-token": credentials["access_token"],
                                "Authorization": "AWS4-HMAC-SHA256 Credential=x, Signature=y"})
    assert answer.status_code == 200


def test_an_expired_access_token_raises_token_expired_and_the_next_call_renews_it(
    sandbox, shop_name, credentials, http, now
):
    add_order(sandbox, shop_name, "paid", now - timedelta(minutes=20))
    sandbox.state.expire(credentials["access_token"])
    amazon = connect(sandbox, shop_name, credentials, http=http)

    with pytest.raises(TokenExpired) as caught:
        list(amazon.fetch_orders(now - timedelta(hours=1), now))
    assert caught.value.code == "Unauthorized" and caught.value.retryable

    assert sum(served(amazon.fetch_orders(now - timedelta(hours=1), now)).values()) == 1
    assert http.paths().count("/amazon/auth/o2/token") == 1
    assert http.sent[-1].headers["x-amz-access-token"] != credentials["access_token"]


def test_an_armed_expired_token_fault_raises_token_expired_once(sandbox, shop_name, credentials):
    sandbox.state.faults.arm(PLATFORM, "expired_token")
    amazon = connect(sandbox, shop_name, credentials)
    with pytest.raises(TokenExpired):
        amazon.probe()
    amazon.probe()


def test_refresh_access_trades_the_refresh_token_for_a_one_hour_token(
    sandbox, shop_name, credentials
):
    amazon = connect(sandbox, shop_name, credentials)
    grant = amazon.refresh_access(credentials["refresh_token"])
    again = amazon.refresh_access(credentials["refresh_token"])  # LWA's are not single-use

    assert grant.access_token != credentials["access_token"] != again.access_token
    assert grant.refresh_token == credentials["refresh_token"]
    lifetime = grant.access_expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)
    assert sandbox.state.tokens[grant.access_token].shop == shop_name
    with pytest.raises(Rejected) as caught:
        amazon.refresh_access("Atza|unknown")
    assert caught.value.code == "invalid_grant"


def test_a_connector_without_an_access_token_gets_one_itself(sandbox, shop_name, credentials, http):
    amazon = connect(sandbox, shop_name, credentials, http=http, access_token="")
    amazon.probe()
    amazon.probe()
    assert http.paths() == ["/amazon/auth/o2/token", "/amazon/orders/v0/orders",
                            "/amazon/orders/v0/orders"]
    assert "Authorization" not in http.sent[1].headers  # no SigV4


# ---- throttling and failures ------------------------------------------------------------


def test_a_throttled_call_raises_rate_limited_and_a_retry_succeeds(sandbox, shop_name, credentials):
    sandbox.state.faults.arm(PLATFORM, "rate_limit")
    answer = raw_get(sandbox, "/orders/v0/orders", credentials["access_token"], MarketplaceIds=US,
                     LastUpdatedAfter=iso_seconds(a_while_ago(30)))
    assert answer.status_code == 429 and answer.json()["errors"][0]["code"] == "QuotaExceeded"
    assert "x-amzn-RateLimit-Limit" not in answer.headers  # deprecated on 429s

    sandbox.state.faults.arm(PLATFORM, "rate_limit")
    amazon = connect(sandbox, shop_name, credentials)
    with pytest.raises(RateLimited) as caught:
        amazon.probe()
    assert caught.value.code == "QuotaExceeded"
    assert caught.value.retry_after == pytest.approx(1 / REQUEST_RATE.per_second)
    amazon.probe()


def test_the_wait_follows_the_rate_limit_header_amazon_last_sent(
    sandbox, shop_name, credentials, monkeypatch
):
    monkeypatch.setitem(wire.USAGE_PLANS, "getOrders", "0.5")  # a seller with a bigger plan
    amazon = connect(sandbox, shop_name, credentials)
    amazon.probe()
    sandbox.state.faults.arm(PLATFORM, "rate_limit")
    with pytest.raises(RateLimited) as caught:
        amazon.probe()
    assert caught.value.retry_after == pytest.approx(2.0)


def test_a_server_error_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm(PLATFORM, "server_error")
    with pytest.raises(Unavailable) as caught:
        connect(sandbox, shop_name, credentials).probe()
    assert caught.value.code == 500 and caught.value.retryable


def test_a_cut_off_body_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm(PLATFORM, "malformed")  # an empty page: nothing to break but the body
    with pytest.raises(Unavailable, match="not JSON"):
        connect(sandbox, shop_name, credentials).probe()


def test_a_timeout_raises_unavailable(sandbox, shop_name, credentials):
    sandbox.state.faults.arm(PLATFORM, "latency", delay_seconds=0.5)
    with httpx.Client(timeout=0.1) as impatient:
        with pytest.raises(Unavailable):
            connect(sandbox, shop_name, credentials, http=impatient).probe()


def test_a_malformed_order_arrives_unkeyed_and_fails_mapping_with_its_reasons(
    sandbox, shop_name, credentials, now
):
    for minutes in (30, 20, 10):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    sandbox.state.faults.arm(PLATFORM, "malformed")
    amazon = connect(sandbox, shop_name, credentials)

    [page] = list(amazon.fetch_orders(now - timedelta(hours=1), now))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(page) == 3 and len(broken) == 1
    with pytest.raises(MappingError) as caught:
        amazon.to_order(broken[0])
    reasons = "\n".join(caught.value.reasons)
    assert "AmazonOrderId" in reasons and "PurchaseDate" in reasons and "OrderItems" in reasons


# ---- statuses, money, receivers ----------------------------------------------------------


def test_every_status_the_simulator_serves_maps_end_to_end(sandbox, shop_name, credentials, now):
    two_lines = [SimLine("SKU-A", "Tea tin", 1, Decimal("8.00"), 0),
                 SimLine("SKU-B", "Tea cup", 1, Decimal("6.00"), 0)]
    orders = {status: add_order(sandbox, shop_name, status, now - timedelta(minutes=40 + n))
              for n, status in enumerate(("unpaid", "paid", "shipped", "delivered", "cancelled"))}
    partly = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=50), lines=two_lines)
    first_item = wire.order_item_id(partly, 0)
    partly.tracking.append({"platform": PLATFORM, "carrier_code": "UPS", "tracking_number": "1Z1",
                            "package_reference_id": "1", "shipped_at": now,
                            "order_items": [{"orderItemId": first_item, "quantity": 1}]})
    amazon = connect(sandbox, shop_name, credentials)

    mapped = {raw.platform_order_id: amazon.to_order(raw)
              for page in amazon.fetch_orders(now - timedelta(hours=1), now) for raw in page}

    expected = {
        "unpaid": ("Pending", OrderStatus.PENDING_PAYMENT), "paid": ("Unshipped", OrderStatus.PAID),
        "shipped": ("Shipped", OrderStatus.SHIPPED), "delivered": ("Shipped", OrderStatus.SHIPPED),
        "cancelled": ("Canceled", OrderStatus.CANCELLED),
    }
    for status, order in orders.items():
        got = mapped[wire.amazon_order_id(order)]
        assert (got.platform_status, got.status) == expected[status]
    assert (mapped[wire.amazon_order_id(partly)].platform_status,
            mapped[wire.amazon_order_id(partly)].status) == ("PartiallyShipped", OrderStatus.PAID)


def test_a_german_shop_keeps_its_euros_and_its_marketplace(sandbox, shop_name, now):
    populate(sandbox.state, shop_name, count=20, seed=9, now=now, span_hours=3, market=GERMANY)
    credentials = sim.register_shop(sandbox.state, shop_name, now)
    assert credentials["marketplace_id"] == "A1PA6795UKMFR9"
    amazon = connect(sandbox, shop_name, credentials)
    orders = [amazon.to_order(raw) for page in amazon.fetch_orders(now - timedelta(hours=4), now)
              for raw in page if "zero_quantity" not in str(raw.payload)]
    assert orders and {o.currency for o in orders} == {"EUR"}
    assert {o.receiver.country_code for o in orders} == {"DE"}


def test_receivers_stay_masked_without_a_restricted_data_token(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=20))
    amazon = connect(sandbox, shop_name, credentials)

    [[raw]] = list(amazon.fetch_orders(now - timedelta(hours=1), now))

    text = json.dumps(raw.payload)
    assert order.receiver_name not in text and order.address not in text and order.phone not in text
    assert "BuyerInfo" not in raw.payload
    receiver = amazon.to_order(raw).receiver
    assert receiver.masked
    assert (receiver.name, receiver.address, receiver.phone) == (None, None, None)
    assert (receiver.city, receiver.province, receiver.postal_code, receiver.country_code) == (
        order.city, "WA", "98101", "US")
    assert receiver.encrypted == {}


def test_a_restricted_data_token_unmasks_the_receiver(sandbox, shop_name, credentials, http, now):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(minutes=20))
    amazon = connect(sandbox, shop_name, credentials, http=http, restricted_data=True)

    [[raw]] = list(amazon.fetch_orders(now - timedelta(hours=1), now))
    mapped = amazon.to_order(raw)
    alone = amazon.restricted_receiver(wire.amazon_order_id(order))

    asked = json.loads(http.sent[0].content)
    assert asked == {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders",
                                              "dataElements": ["buyerInfo", "shippingAddress"]}]}
    listing = next(r for r in http.sent if r.url.path.endswith("/orders/v0/orders"))
    assert listing.headers["x-amz-access-token"].startswith("Atz.sprdt|")
    for receiver in (mapped.receiver, alone):
        assert not receiver.masked
        assert (receiver.name, receiver.address, receiver.phone) == (
            order.receiver_name, order.address, order.phone)
    assert mapped.buyer_ref.endswith("@marketplace.amazon.com")


def test_a_restricted_data_token_covers_only_what_it_was_asked_for(sandbox, credentials):
    address = "/orders/v0/orders/{orderId}/address"
    body = {"restrictedResources": [{"method": "GET", "path": address}]}
    made = httpx.post(f"{sandbox.url}/amazon/tokens/2021-03-01/restrictedDataToken", json=body,
                      headers={"x-amz-access-token": credentials["access_token"]}, timeout=10)
    made = made.json()
    assert made["expiresIn"] == 3600
    answer = raw_get(sandbox, "/orders/v0/orders", made["restrictedDataToken"], MarketplaceIds=US,
                     LastUpdatedAfter=iso_seconds(a_while_ago(30)))
    assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "Unauthorized"
    no_elements = {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders"}]}
    refused = httpx.post(f"{sandbox.url}/amazon/tokens/2021-03-01/restrictedDataToken",
                         json=no_elements, timeout=10,
                         headers={"x-amz-access-token": credentials["access_token"]})
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "InvalidRequest"


# ---- tracking write-back ------------------------------------------------------------------


def test_a_confirmed_shipment_is_recorded_and_a_repeat_succeeds_without_a_second_one(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    amazon = connect(sandbox, shop_name, credentials)

    result = amazon.push_tracking(wire.amazon_order_id(order), "USPS", "9400100000000000000001")

    package = result.request["packageDetail"]
    assert result.response == {"status": 204} and result.request["marketplaceId"] == US
    assert (package["carrierCode"], package["orderItems"]) == (
        "USPS", [{"orderItemId": wire.order_item_id(order, 0), "quantity": 2}])
    assert order.status == "shipped" and order.updated_at > now - timedelta(minutes=1)
    assert [t["tracking_number"] for t in order.tracking] == ["9400100000000000000001"]

    again = amazon.push_tracking(wire.amazon_order_id(order), "USPS", "9400100000000000000001")
    assert again.response["already_confirmed"] is True and len(order.tracking) == 1
    with pytest.raises(Rejected):
        amazon.push_tracking(wire.amazon_order_id(order), "USPS", "9400100000000000000002")


def test_an_unmapped_carrier_is_rejected_before_any_request(
    sandbox, shop_name, credentials, http, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    amazon = connect(sandbox, shop_name, credentials, http=http)
    with pytest.raises(Rejected) as caught:
        amazon.push_tracking(wire.amazon_order_id(order), "ZTO", "ZTO123")
    assert caught.value.code == "unmapped_carrier" and "ZTO" not in CARRIER_CODES
    assert http.sent == [] and order.status == "paid"


def test_the_simulator_refuses_an_unknown_carrier_code_and_a_bad_ship_date(
    sandbox, shop_name, credentials, now
):
    order = add_order(sandbox, shop_name, "paid", now - timedelta(hours=1))
    package = {"packageReferenceId": "1", "carrierCode": "Pigeon", "trackingNumber": "P1",
               "shipDate": "2022-02-11T01:00:00.000Z",
               "orderItems": [{"orderItemId": wire.order_item_id(order, 0), "quantity": 1}]}
    order_id = wire.amazon_order_id(order)
    url = f"{sandbox.url}/amazon/orders/v0/orders/{order_id}/shipmentConfirmation"
    headers = {"x-amz-access-token": credentials["access_token"]}
    for change in ({}, {"carrierCode": "UPS", "shipDate": "02/21/2022"}):
        body = {"marketplaceId": US, "packageDetail": {**package, **change}}
        answer = httpx.post(url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["code"] == "Invalid Input"
    assert order.tracking == [] and order.status == "paid"


def test_every_amazon_carrier_code_we_map_is_one_the_simulator_accepts():
    assert set(CARRIER_CODES.values()) <= sim.CARRIER_CODES


# ---- pacing -----------------------------------------------------------------------------


def test_the_shops_get_orders_bucket_paces_paging(sandbox, shop_name, credentials, now):
    for minutes in range(10, 16):
        add_order(sandbox, shop_name, "paid", now - timedelta(minutes=minutes))
    slow_listing = {"getOrders": RequestRate(per_second=10, burst=1)}
    amazon = connect(sandbox, shop_name, credentials, page_size=2, rates=slow_listing)
    began = time.monotonic()

    got = served(amazon.fetch_orders(now - timedelta(hours=1), now))

    assert sum(got.values()) == 6
    assert time.monotonic() - began >= 0.2  # three pages, one token every 100 ms
    listing_bucket = shop_bucket(PLATFORM, shop_name, slow_listing["getOrders"])
    items_bucket = shop_bucket(PLATFORM, f"{shop_name}#getOrderItems", FAST_RATE)
    assert listing_bucket.waited_seconds > 0 and items_bucket.waited_seconds == 0


def test_the_documented_usage_plans_are_the_default(sandbox, shop_name, credentials):
    amazon = AmazonConnector(ShopAccess(shop_name, PLATFORM, f"{sandbox.url}/amazon", credentials))
    assert (REQUEST_RATE.per_second, REQUEST_RATE.burst) == (0.0167, 20)
    assert amazon._pacing.rate == REQUEST_RATE  # getOrders: the shop's main bucket
    items = amazon._buckets["getOrderItems"].rate
    assert (items.per_second, items.burst) == (0.5, 30)
