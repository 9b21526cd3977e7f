"""Tracking write-back against the Pinduoduo sandbox, with a clock the tests move.

Each run of `write-back-tracking` is given `now`; advancing it 5 minutes per run stands
for the 5-minute schedule, so retries are seen without anyone sleeping.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import select

from flows.ingest import ingest_orders
from flows.write_back import write_back_tracking
from oms.cli import main as cli_main
from oms.db.review import open_entries
from oms.db.schema import orders, shipments, tracking_pushes
from oms.db.shipping import ShipmentDraft, record_shipments
from oms.db.shops import save_warehouse
from oms.db.tracking import retry_parked
from sandbox.pinduoduo import retire_logistics
from tasks.alerts import WRITE_BACK_FAILED
from tasks.resources import connector_for
from tests.flows.test_pipeline import latest_artifact_table, paid_order

PUSH = "pdd.logistics.online.send"
EVERY_RUN = timedelta(minutes=5)


@pytest.fixture
def t0():
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def requests_sent(monkeypatch):
    """The `type` of every request the write-back sends to the platform, in order."""
    sent: list[str] = []

    def note(request: httpx.Request) -> None:
        sent.append(dict(parse_qsl(request.content.decode())).get("type", request.url.path))

    monkeypatch.setattr("tasks.write_back.http_client",
                        lambda: httpx.Client(timeout=30, event_hooks={"request": [note]}))
    return sent


@pytest.fixture
def announced(monkeypatch):
    events: list[tuple[str, str, dict]] = []

    def record(event, *, shop_code, platform, headline, message, **facts):
        events.append((event, shop_code, {"headline": headline, "message": message, **facts}))

    monkeypatch.setattr("tasks.write_back.announce", record)
    return events


@pytest.fixture
def shipped_shop(db, sandbox, add_shop, shop_name, t0):
    """A Pinduoduo shop whose paid orders have waybills (with `carrier`) waiting for a push."""
    made = itertools.count(1)

    def make(orders_count: int, carrier: str = "SF") -> str:
        shop = add_shop("pdd", orders=0, code=f"{shop_name}-pdd-{next(made)}")
        sandbox.state.orders[shop].extend(paid_order(shop, "SKU-WB") for _ in range(orders_count))
        ingest_orders(shop)
        with db.begin() as conn:
            warehouse_id = save_warehouse(conn, code="WH-SH", name="WH-SH", province="上海市", priority=10)
            order_ids = conn.execute(select(orders.c.id).where(orders.c.shop_code == shop)
                                     .order_by(orders.c.id)).scalars().all()
            assert len(order_ids) == orders_count
            record_shipments(conn, [ShipmentDraft(order_id, warehouse_id, carrier, f"{carrier}{order_id:010d}")
                                    for order_id in order_ids], t0)
        return shop

    return make


def pushes(db, shop: str | None = None) -> list[dict]:
    query = select(tracking_pushes).order_by(tracking_pushes.c.id)
    if shop:
        query = query.where(tracking_pushes.c.shop_code == shop)
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def numbers_on_platform(sandbox, shop: str) -> dict[str, list[str]]:
    """Per sandbox order, the tracking numbers the platform accepted for it."""
    return {str(order.order_id): [t["tracking_number"] for t in order.tracking]
            for order in sandbox.state.orders[shop]}


def our_numbers(db, shop: str) -> list[str]:
    with db.connect() as conn:
        return sorted(conn.execute(
            select(shipments.c.tracking_number).join(orders, orders.c.id == shipments.c.order_id)
            .where(orders.c.shop_code == shop)).scalars())


def review_reasons(db, shop: str) -> list[str]:
    with db.connect() as conn:
        return [reason for entry in open_entries(conn, shop_code=shop) if entry["stage"] == "write_back"
                for reason in entry["reasons"]]


def test_a_carrier_code_the_platform_refuses_is_parked_with_its_reason_and_never_retried(
        db, sandbox, shipped_shop, requests_sent, announced, t0):
    shop = shipped_shop(1, carrier="SF")
    retire_logistics(shop, "SF")  # PDD no longer takes SF from this shop
    for run in range(4):
        write_back_tracking(now=t0 + run * EVERY_RUN)
    assert requests_sent.count(PUSH) == 1  # one refusal, no retry spent on it
    [attempt] = pushes(db, shop)
    assert attempt["outcome"] == "rejected" and "30003" in attempt["error"]
    [reason] = review_reasons(db, shop)
    assert "Pinduoduo refused the tracking number" in reason and "快递公司不存在" in reason
    with db.connect() as conn:
        assert conn.execute(select(shipments.c.next_push_at)).scalar_one() is None
    assert all(numbers == [] for numbers in numbers_on_platform(sandbox, shop).values())
    [(event, who, _)] = announced
    assert (event, who) == (WRITE_BACK_FAILED, shop)


def test_a_carrier_the_platform_cannot_express_is_refused_without_any_request(
        db, sandbox, shipped_shop, requests_sent, t0):
    shop = shipped_shop(1, carrier="SPX")  # Shopee Xpress: Pinduoduo has no code for it
    write_back_tracking(now=t0)
    write_back_tracking(now=t0 + EVERY_RUN)
    assert requests_sent == []
    [attempt] = pushes(db, shop)
    assert attempt["outcome"] == "rejected" and attempt["request"] is None
    assert attempt["error"].startswith("Pinduoduo does not accept carrier SPX; accepted: EMS, JD, JT, SF")
    [reason] = review_reasons(db, shop)
    assert "Nothing was sent" in reason and "re-issue the waybill" in reason


def test_a_burst_of_server_errors_then_recovery_writes_every_number_exactly_once(
        db, sandbox, shipped_shop, requests_sent, announced, t0):
    shops = [shipped_shop(3), shipped_shop(2)]
    sandbox.state.faults.arm("pdd", "server_error", times=3)
    state = write_back_tracking(now=t0, return_state=True)
    assert state.is_completed()  # retries are scheduled: nothing for on-call to do yet
    assert sum(p["outcome"] == "retry" for p in pushes(db)) == 3
    write_back_tracking(now=t0 + timedelta(minutes=1))  # before the retry interval: nothing
    assert len(pushes(db)) == 5
    for run in (1, 2):
        write_back_tracking(now=t0 + run * EVERY_RUN)
    for shop in shops:
        landed = numbers_on_platform(sandbox, shop)
        assert all(len(numbers) == 1 for numbers in landed.values())
        assert sorted(n for numbers in landed.values() for n in numbers) == our_numbers(db, shop)
    by_shipment: dict[int, list[str]] = {}
    for push in pushes(db):
        by_shipment.setdefault(push["shipment_id"], []).append(push["outcome"])
    assert sorted(by_shipment.values()) == [["retry", "success"]] * 3 + [["success"]] * 2
    assert requests_sent.count(PUSH) == 8 and announced == []


def test_a_platform_down_past_the_retries_parks_every_push_and_alerts_once_per_shop(
        db, sandbox, shipped_shop, requests_sent, announced, t0, capsys):
    shop = shipped_shop(2)
    sandbox.state.faults.arm("pdd", "server_error", times=-1)  # down until cleared
    write_back_tracking(now=t0)
    [row] = [r for r in latest_artifact_table("write-back-tracking") if r["shop"] == shop]
    assert (row["retrying"], row["parked"]) == (2, 0)
    for run in (1, 2, 3):
        write_back_tracking(now=t0 + run * EVERY_RUN)
    outcomes = [p["outcome"] for p in pushes(db, shop)]
    assert outcomes.count("retry") == 6 and outcomes.count("gave_up") == 2
    reasons = review_reasons(db, shop)
    assert len(reasons) == 2
    assert all(r.startswith("gave up after 4 attempts over 15 minutes: [pdd] pdd.logistics.online.send: HTTP 502")
               and f"oms writeback retry --shop {shop}" in r for r in reasons)
    [(event, who, facts)] = announced
    assert (event, who, facts["gave_up"]) == (WRITE_BACK_FAILED, shop, 2)
    write_back_tracking(now=t0 + 4 * EVERY_RUN)  # parked: nobody hammers the platform
    assert requests_sent.count(PUSH) == 8 and len(announced) == 1

    sandbox.state.faults.clear("pdd")  # the platform is back; the operator pushes again
    assert cli_main(["writeback", "retry", "--shop", shop]) == 0
    assert "2 push(es) due again" in capsys.readouterr().out
    with db.begin() as conn:
        assert retry_parked(conn, t0 + 5 * EVERY_RUN, shop_code=shop) == 0  # nothing left parked
    write_back_tracking(now=t0 + 5 * EVERY_RUN)
    assert all(len(numbers) == 1 for numbers in numbers_on_platform(sandbox, shop).values())
    assert review_reasons(db, shop) == []


def test_pushing_again_after_success_sends_nothing_and_records_nothing(
        db, sandbox, shipped_shop, requests_sent, t0):
    shop = shipped_shop(2)
    write_back_tracking(now=t0)
    before = pushes(db, shop)
    assert [p["outcome"] for p in before] == ["success", "success"]
    sent = len(requests_sent)
    write_back_tracking(now=t0 + EVERY_RUN)
    write_back_tracking(now=t0 + 10 * EVERY_RUN)
    assert pushes(db, shop) == before and len(requests_sent) == sent
    assert all(len(numbers) == 1 for numbers in numbers_on_platform(sandbox, shop).values())


def test_a_rate_limit_stops_the_shop_for_this_run_without_spending_its_retries(
        db, sandbox, shipped_shop, requests_sent, t0):
    shop = shipped_shop(3)
    sandbox.state.faults.arm("pdd", "rate_limit", times=1)
    write_back_tracking(now=t0)
    assert [p["outcome"] for p in pushes(db, shop)] == ["deferred"]  # the other two waited
    assert requests_sent.count(PUSH) == 1
    write_back_tracking(now=t0 + EVERY_RUN)
    assert [p["outcome"] for p in pushes(db, shop)] == ["deferred", "success", "success", "success"]
    assert all(len(numbers) == 1 for numbers in numbers_on_platform(sandbox, shop).values())


def test_an_expired_token_is_renewed_on_the_spot_and_the_push_sent_again(
        db, sandbox, shipped_shop, requests_sent, t0):
    shop = shipped_shop(2)
    sandbox.state.faults.arm("pdd", "expired_token", times=1)
    write_back_tracking(now=t0)
    assert [p["outcome"] for p in pushes(db, shop)] == ["deferred", "success", "success"]
    assert requests_sent.count(PUSH) == 3
    assert all(len(numbers) == 1 for numbers in numbers_on_platform(sandbox, shop).values())


def test_a_bug_fails_the_run_while_the_other_shops_are_pushed(db, sandbox, shipped_shop, monkeypatch, t0):
    broken, fine = shipped_shop(1), shipped_shop(1)

    class BrokenConnector:
        def push_tracking(self, platform_order_id, carrier, tracking_number):
            raise KeyError("logistics_id")  # stands for a bug in our code

    monkeypatch.setattr("tasks.write_back.connector_for", lambda access, http=None: (
        BrokenConnector() if access.code == broken else connector_for(access, http)))
    state = write_back_tracking(now=t0, return_state=True)
    assert state.is_failed() and broken in state.message
    assert [p["outcome"] for p in pushes(db, fine)] == ["success"] and pushes(db, broken) == []
