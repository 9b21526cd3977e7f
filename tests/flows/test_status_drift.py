"""check-status-drift through the real Prefect engine, the sandbox and the database: a
platform cancellation after allocation releases the stock and stops the shipment; one
after the handover raises an interception instead; a re-run changes nothing; the report
names the top kinds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import select, update

from flows.drift import check_status_drift
from flows.fulfil import fulfil_orders
from flows.ingest import ingest_orders
from flows.stock import confirm_collected_parcels
from oms.cli import main as cli_main
from oms.db.review import open_entries
from oms.db.schema import interceptions, orders, reservations, shipments, status_drifts
from oms.db.stock import sellable_by_sku
from tasks.alerts import INTERCEPTION_NEEDED, STATUS_DRIFT_FOUND
from tasks.allocate import allocate_stock
from tests.flows.test_stock_flows import rows, sim_order


@pytest.fixture
def alerts(monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr("tasks.status_drift.announce", lambda event, **facts: sent.append((event, facts)))
    return sent


@pytest.fixture
def shop(add_shop, sandbox, stock_levels):
    """A Pinduoduo shop with one paid order of 2 x SKU-D, ingested; 5 units in stock."""
    code = add_shop("pdd", orders=0)
    sandbox.state.orders[code] += [sim_order(code, {"SKU-D": 2})]
    stock_levels({"SKU-D": 5})
    ingest_orders(code)
    return code


def cancel_on_platform(sandbox, shop: str) -> datetime:
    (order,) = sandbox.state.orders[shop]
    order.status = "cancelled"
    order.updated_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    return order.updated_at


def latest_markdown(key: str) -> str:
    # Prefect 3.8.8's client sends nulls its server refuses (see test_pipeline), so the
    # API is asked directly.
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/latest/filter",
                          json={"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0})
    response.raise_for_status()
    [latest] = response.json()
    return latest["data"]


def the_order(db) -> dict:
    (order,) = rows(db, select(orders))
    return order


def drifts(db) -> list[dict]:
    return rows(db, select(status_drifts).order_by(status_drifts.c.id))


def sellable(db) -> int:
    with db.connect() as conn:
        return sellable_by_sku(conn, ["SKU-D"])["SKU-D"]


def shipped_and_pushed(db, **warehouse_facts) -> str:
    """Allocate, issue the waybill, push its number to the platform; then set what the
    warehouse scans recorded. Returns the tracking number."""
    fulfil_orders(sync_platform_stock=False)
    (shipment,) = rows(db, select(shipments))
    assert shipment["tracking_pushed_at"] is not None
    if warehouse_facts:
        with db.begin() as conn:
            conn.execute(update(shipments).values(**warehouse_facts))
    return shipment["tracking_number"]


def test_a_cancellation_after_allocation_releases_the_stock_and_no_parcel_is_made(db, shop, sandbox, carrier, alerts):
    allocate_stock(100)
    assert sellable(db) == 3
    cancelled_at = cancel_on_platform(sandbox, shop)
    check_status_drift(now=datetime.now(timezone.utc))
    (drift,) = drifts(db)
    assert (drift["kind"], drift["action"], drift["our_status"]) == ("platform_cancelled_before_waybill",
                                                                     "repaired", "allocated")
    assert drift["since"] == cancelled_at and drift["resolved_at"] is not None
    assert sellable(db) == 5
    assert the_order(db)["status"] == "cancelled"
    assert [r["state"] for r in rows(db, select(reservations))] == ["released"]
    fulfil_orders(sync_platform_stock=False)
    assert rows(db, select(shipments)) == []  # nothing left to ship
    assert alerts == []  # repaired: nobody needs to act


def test_a_cancellation_of_a_parcel_still_in_the_warehouse_stops_it_although_its_number_was_pushed(
        db, shop, sandbox, carrier, alerts):
    number = shipped_and_pushed(db, warehouse_step="packed")
    assert sellable(db) == 3
    cancel_on_platform(sandbox, shop)
    check_status_drift(now=datetime.now(timezone.utc))
    (drift,) = drifts(db)
    assert (drift["kind"], drift["action"]) == ("platform_cancelled_in_warehouse", "repaired")
    assert sellable(db) == 5
    assert the_order(db)["status"] == "cancelled"
    (shipment,) = rows(db, select(shipments))
    assert shipment["status"] == "voided"
    confirm_collected_parcels()
    assert sandbox.state.waybills[number]["cancelled"] is True  # no courier comes for it
    assert rows(db, select(interceptions)) == [] and alerts == []


def test_a_pushed_parcel_without_any_warehouse_scan_is_intercepted_on_the_safe_side(db, shop, sandbox, carrier, alerts):
    shipped_and_pushed(db)
    cancel_on_platform(sandbox, shop)
    check_status_drift(now=datetime.now(timezone.utc))
    (drift,) = drifts(db)
    assert (drift["kind"], drift["action"]) == ("platform_cancelled_after_handover", "interception")
    assert sellable(db) == 3  # the units may be on their way
    assert [i["state"] for i in rows(db, select(interceptions))] == ["open"]
    assert [event for event, _ in alerts] == [INTERCEPTION_NEEDED]


def test_a_cancellation_after_handover_raises_one_interception_and_a_rerun_changes_nothing(
        db, shop, sandbox, carrier, alerts):
    number = shipped_and_pushed(db, warehouse_step="handed_over",
                                handed_over_at=datetime.now(timezone.utc) - timedelta(minutes=30))
    cancelled_at = cancel_on_platform(sandbox, shop)
    first = datetime.now(timezone.utc)
    check_status_drift(now=first)
    (drift,) = drifts(db)
    assert (drift["kind"], drift["action"], drift["since"]) == ("platform_cancelled_after_handover",
                                                                "interception", cancelled_at)
    assert drift["resolved_at"] is None
    (raised,) = rows(db, select(interceptions))
    assert (raised["tracking_number"], raised["state"]) == (number, "open")
    assert "handed over" in raised["reason"]
    assert sellable(db) == 3  # stock stays locked
    assert {r["state"] for r in rows(db, select(reservations))} == {"locked"}
    assert the_order(db)["status"] == "packing"
    with db.connect() as conn:
        (entry,) = [e for e in open_entries(conn) if e["stage"] == "cancel"]
    assert f"intercept parcel {number}" in entry["reasons"][0]
    assert [(event, facts["order"]) for event, facts in alerts] == [
        (INTERCEPTION_NEEDED, the_order(db)["platform_order_id"])]
    before = (rows(db, select(interceptions)), rows(db, select(reservations)), len(drifts(db)))

    check_status_drift(now=first + timedelta(minutes=30))
    (again,) = drifts(db)
    assert again["id"] == drift["id"] and again["last_seen_at"] > drift["last_seen_at"]
    assert (rows(db, select(interceptions)), rows(db, select(reservations)), len(drifts(db))) == before
    assert len(alerts) == 1  # once per drift, not once per run
    with db.connect() as conn:
        assert len([e for e in open_entries(conn) if e["stage"] == "cancel"]) == 1


def test_an_operator_lists_the_interception_and_records_what_the_carrier_did(
        db, shop, sandbox, carrier, alerts, capsys):
    number = shipped_and_pushed(db, warehouse_step="handed_over",
                                handed_over_at=datetime.now(timezone.utc) - timedelta(minutes=30))
    cancel_on_platform(sandbox, shop)
    check_status_drift(now=datetime.now(timezone.utc))
    assert cli_main(["intercept", "list"]) == 0
    listed = capsys.readouterr().out
    assert number in listed and the_order(db)["platform_order_id"] in listed and "open" in listed
    (raised,) = rows(db, select(interceptions))
    assert cli_main(["intercept", "settle", str(raised["id"]), "intercepted", "--note", "SF stopped it"]) == 0
    (settled,) = rows(db, select(interceptions))
    assert (settled["state"], settled["note"]) == ("intercepted", "SF stopped it")
    assert cli_main(["intercept", "settle", str(raised["id"]), "failed"]) == 1  # already settled
    capsys.readouterr()
    assert cli_main(["intercept", "list"]) == 0
    assert "no parcel is waiting" in capsys.readouterr().out


def test_the_report_lists_the_top_kinds_and_the_interceptions_waiting(db, shop, sandbox, carrier, alerts):
    number = shipped_and_pushed(db, warehouse_step="handed_over",
                                handed_over_at=datetime.now(timezone.utc) - timedelta(minutes=30))
    cancel_on_platform(sandbox, shop)
    check_status_drift(now=datetime.now(timezone.utc))
    report = latest_markdown("status-drift")
    top = report.split("## Top kinds")[1].split("##")[0]
    assert "| platform_cancelled_after_handover | 1 |" in top
    waiting = report.split("## Interceptions waiting")[1]
    assert number in waiting and the_order(db)["platform_order_id"] in waiting
    assert "13800138000" not in report and "测试" not in report  # no buyer's data


def test_an_unrepairable_difference_is_reviewed_and_announced_once(db, shop, sandbox, carrier, alerts):
    allocate_stock(100)
    (order,) = sandbox.state.orders[shop]
    order.status, order.updated_at = "shipped", datetime.now(timezone.utc).replace(microsecond=0)
    first = datetime.now(timezone.utc)
    check_status_drift(now=first)
    check_status_drift(now=first + timedelta(minutes=30))
    (drift,) = drifts(db)
    assert (drift["kind"], drift["action"]) == ("platform_shipped_not_by_us", "review")
    assert [event for event, _ in alerts] == [STATUS_DRIFT_FOUND]
    assert sellable(db) == 3  # a person decides before any stock moves
    with db.connect() as conn:
        assert [e["stage"] for e in open_entries(conn)] == ["drift"]
