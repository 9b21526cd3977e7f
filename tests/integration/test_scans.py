"""Warehouse scans on a real database, through the functions, the `oms scan` command and
the scanner's HTTP endpoint: history rows, harmless repeats, a cancelled order stopped at
the bench, merged parcels, weights that need a look, and the scanner token."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from oms.cli import main
from oms.db.allocation import allocate_batch
from oms.db.orders import store_orders
from oms.db.review import open_entries
from oms.db.scans import parcel_history, record_scans
from oms.db.schema import orders, reservations, shipment_steps, shipments
from oms.db.shipping import ShipmentDraft, record_pickups, record_shipments
from oms.domain.order import OrderStatus
from oms.domain.warehouse_steps import Scan
from oms.scanner import create_app
from sandbox.server import free_loopback_port
from tests.factories import make_order
from tests.stockworld import NOW, build_world, default_policy, place_orders

SEQUENCE = (("printed", None), ("packed", None), ("weighed", 640), ("handed_over", None))


def _labelled(db, wanted: list[dict[str, int]], numbers: list[str]) -> dict[str, int]:
    """Paid orders allocated and given waybills: ORDER-n gets numbers[n-1] (a repeated
    number is a merged parcel). SKUs weigh 300 g each. Returns order ref -> order id."""
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 20, ("WH-SH", "SKU-B"): 20})
        place_orders(conn, wanted)
        allocate_batch(conn, limit=50, now=NOW, actor="test", policy=default_policy())
        ids = dict(conn.execute(select(orders.c.platform_order_id, orders.c.id)).all())
        for n, number in enumerate(numbers, start=1):
            order_id = ids[f"ORDER-{n}"]
            warehouse_id = conn.execute(select(reservations.c.warehouse_id)
                                        .where(reservations.c.order_id == order_id)).scalars().first()
            record_shipments(conn, [ShipmentDraft(order_id, warehouse_id, "SF", number)], NOW)
    return ids


def _scan(db, step, *numbers, weight=None, at=NOW, source="cli"):
    with db.begin() as conn:
        return record_scans(conn, [Scan(step, n, weight, "bench-1", "li", source) for n in numbers], at)


def _steps(db, order_id):
    with db.connect() as conn:
        query = (select(shipment_steps.c.step, shipment_steps.c.at, shipment_steps.c.source)
                 .join(shipments, shipments.c.id == shipment_steps.c.shipment_id)
                 .where(shipments.c.order_id == order_id).order_by(shipment_steps.c.id))
        return conn.execute(query).all()


def _shipment(db, order_id):
    with db.connect() as conn:
        return conn.execute(select(shipments).where(shipments.c.order_id == order_id)).one()


def _cancel_on_platform(db, number: int, sku: str) -> None:
    cancelled = make_order(number, status=OrderStatus.CANCELLED, minutes_later=30)
    cancelled.lines[0].sku = sku
    with db.begin() as conn:
        store_orders(conn, [cancelled], now=NOW + timedelta(minutes=30))


# ------------------------------------------------------------------ the rule on the database


def test_the_full_sequence_leaves_four_history_rows_in_order(db):
    ids = _labelled(db, [{"SKU-A": 2}], ["SF100"])
    for minutes, (step, weight) in enumerate(SEQUENCE):
        (outcome,) = _scan(db, step, "SF100", weight=weight, at=NOW + timedelta(minutes=minutes))
        assert outcome.verdict == "accepted", outcome.message
    rows = _steps(db, ids["ORDER-1"])
    assert [row.step for row in rows] == ["printed", "packed", "weighed", "handed_over"]
    assert [row.at for row in rows] == sorted(row.at for row in rows)
    shipment = _shipment(db, ids["ORDER-1"])
    assert (shipment.warehouse_step, shipment.weighed_grams) == ("handed_over", 640)
    assert shipment.handed_over_at is not None
    with db.connect() as conn:
        # Handed over is not shipped: only the carrier's pickup says the parcel left.
        assert conn.execute(select(orders.c.status).where(orders.c.id == ids["ORDER-1"])).scalar_one() == "packing"
        assert open_entries(conn) == []  # 640 g against 600 g expected: nothing to look at


def test_a_repeated_scan_is_harmless(db):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    _scan(db, "packed", "SF100")
    (again,) = _scan(db, "packed", "SF100", at=NOW + timedelta(minutes=5))
    assert again.verdict == "repeated" and "already scanned packed" in again.message
    assert [row.step for row in _steps(db, ids["ORDER-1"])] == ["packed"]


def test_going_back_is_refused_and_records_nothing(db):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    _scan(db, "packed", "SF100")
    _scan(db, "weighed", "SF100", weight=300)
    (back,) = _scan(db, "printed", "SF100")
    assert back.verdict == "refused" and "only move forward" in back.message
    assert [row.step for row in _steps(db, ids["ORDER-1"])] == ["packed", "weighed"]
    assert _shipment(db, ids["ORDER-1"]).warehouse_step == "weighed"


def test_a_parcel_whose_order_was_cancelled_is_stopped_at_the_bench(db):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    _scan(db, "packed", "SF100")
    _cancel_on_platform(db, 1, "SKU-A")
    assert _shipment(db, ids["ORDER-1"]).status == "voided"
    (outcome,) = _scan(db, "weighed", "SF100", weight=300)
    assert outcome.verdict == "refused"
    assert outcome.message == "STOP: order ORDER-1 cancelled on the platform, do not ship; put the goods back"
    assert [row.step for row in _steps(db, ids["ORDER-1"])] == ["packed"]


def test_a_parcel_the_carrier_collected_is_refused(db):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    with db.begin() as conn:
        record_pickups(conn, {"SF100": NOW}, NOW)
    (outcome,) = _scan(db, "packed", "SF100")
    assert outcome.verdict == "refused" and "already collected" in outcome.message
    assert _steps(db, ids["ORDER-1"]) == []


def test_one_scan_of_a_merged_parcel_moves_all_its_shipments(db):
    ids = _labelled(db, [{"SKU-A": 1}, {"SKU-B": 2}, {"SKU-A": 1}], ["SF200", "SF200", "SF300"])
    (outcome,) = _scan(db, "packed", "SF200")
    assert outcome.verdict == "accepted" and outcome.orders == ["ORDER-1", "ORDER-2"]
    assert [row.step for row in _steps(db, ids["ORDER-1"])] == ["packed"]
    assert [row.step for row in _steps(db, ids["ORDER-2"])] == ["packed"]
    assert _steps(db, ids["ORDER-3"]) == []  # another parcel
    # 3 units of 300 g together: 900 g is right for the parcel, not for either order alone.
    (weighed,) = _scan(db, "weighed", "SF200", weight=900)
    assert weighed.weight_flag is None
    assert {_shipment(db, ids[o]).weighed_grams for o in ("ORDER-1", "ORDER-2")} == {900}


def test_packed_and_weighed_in_one_batch_both_count(db):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    with db.begin() as conn:
        outcomes = record_scans(conn, [Scan("packed", "SF100"), Scan("weighed", "SF100", 310)], NOW)
    assert [o.verdict for o in outcomes] == ["accepted", "accepted"]
    assert _shipment(db, ids["ORDER-1"]).warehouse_step == "weighed"


def test_a_weight_far_off_is_kept_and_parked_for_review(db):
    ids = _labelled(db, [{"SKU-A": 2}], ["SF100"])
    _scan(db, "packed", "SF100")
    (outcome,) = _scan(db, "weighed", "SF100", weight=1500)
    assert outcome.verdict == "accepted" and outcome.message.startswith("CHECK:")
    assert _shipment(db, ids["ORDER-1"]).weighed_grams == 1500
    with db.connect() as conn:
        (entry,) = open_entries(conn)
    assert (entry["stage"], entry["platform_order_id"]) == ("warehouse", "ORDER-1")
    assert "SF100 weighed 1500 g, 900 g heavier than the 600 g" in entry["reasons"][0]
    assert entry["payload"]["expected_grams"] == 600
    # Scanning it again neither adds a row nor a second entry.
    _scan(db, "weighed", "SF100", weight=1500)
    with db.connect() as conn:
        assert len(open_entries(conn)) == 1


def test_an_unknown_tracking_number_is_refused_and_parked_once(db):
    _labelled(db, [{"SKU-A": 1}], ["SF100"])
    (outcome,) = _scan(db, "packed", "NOPE-1")
    assert outcome.verdict == "refused" and "unknown tracking number NOPE-1" in outcome.message
    _scan(db, "packed", "NOPE-1")
    with db.connect() as conn:
        (entry,) = open_entries(conn)
    assert entry["payload"]["tracking_number"] == "NOPE-1" and "no shipment has it" in entry["reasons"][0]


def test_the_history_shows_orders_lines_and_steps_but_no_receiver(db):
    _labelled(db, [{"SKU-A": 2}], ["SF100"])
    _scan(db, "packed", "SF100")
    with db.connect() as conn:
        history = parcel_history(conn, "SF100")
        assert parcel_history(conn, "NOPE") is None
    assert history["orders"][0]["lines"] == [{"sku": "SKU-A", "title": "SKU-A", "quantity": 2}]
    assert [step["step"] for step in history["steps"]] == ["packed"]
    assert history["expected_grams"] == 600
    assert "13800138000" not in str(history) and "测试路" not in str(history)


# ------------------------------------------------------------------ oms scan


def test_scan_command_prints_one_line_per_parcel(db, capsys):
    _labelled(db, [{"SKU-A": 1}, {"SKU-A": 1}], ["SF100", "SF101"])
    assert main(["scan", "packed", "SF100", "SF101", "--station", "bench-1", "--operator", "li"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [["SF100", "accepted"], ["SF101", "accepted"]]
    assert main(["scan", "packed", "SF100"]) == 0
    assert "already" in capsys.readouterr().out


def test_scan_command_fails_loudly_on_a_cancelled_order(db, capsys):
    _labelled(db, [{"SKU-A": 1}, {"SKU-A": 1}], ["SF100", "SF101"])
    _cancel_on_platform(db, 1, "SKU-A")
    assert main(["scan", "packed", "SF100", "SF101"]) == 1
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["SF100"][0] == "REFUSED"
    assert rows["SF100"][1].startswith("STOP: order ORDER-1 cancelled on the platform, do not ship")
    assert rows["SF101"][0] == "accepted"


def test_scan_command_needs_a_weight_to_weigh_unless_the_station_has_no_scale(db, capsys):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    main(["scan", "packed", "SF100"])
    assert main(["scan", "weighed", "SF100"]) == 1
    assert "needs the scale's weight" in capsys.readouterr().out
    assert main(["scan", "handed_over", "SF100"]) == 1
    assert "not weighed yet" in capsys.readouterr().out
    assert main(["scan", "handed_over", "SF100", "--may-skip", "weighed"]) == 0
    assert [row.source for row in _steps(db, ids["ORDER-1"])] == ["cli", "cli"]


def test_scan_history_prints_the_timeline(db, capsys):
    _labelled(db, [{"SKU-A": 2}], ["SF100"])
    main(["scan", "packed", "SF100", "--station", "bench-1"])
    main(["scan", "weighed", "SF100", "--weight", "610"])
    capsys.readouterr()
    assert main(["scan", "history", "SF100"]) == 0
    printed = capsys.readouterr().out
    assert "order ORDER-1 (shop-a, packing): 2 x SKU-A" in printed
    assert "packed  via cli  bench-1" in printed and "weighed 610 g  via cli" in printed
    assert printed.index("packed  via") < printed.index("weighed 610 g")
    assert main(["scan", "history", "NOPE"]) == 1


# ------------------------------------------------------------------ the scanner endpoint


@contextmanager
def _scanner(database_url: str, token: str = ""):
    port = free_loopback_port()
    server = uvicorn.Server(uvicorn.Config(create_app(database_url, token=token), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="scanner", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the scanner endpoint did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def scanner(db, database_url):
    with _scanner(database_url, token="s3cret") as client:
        yield client


def test_scanner_records_a_batch_with_its_source(db, scanner):
    ids = _labelled(db, [{"SKU-A": 1}, {"SKU-A": 1}], ["SF100", "SF101"])
    answer = scanner.post("/scans", headers={"X-Scanner-Token": "s3cret"},
                          json={"step": "packed", "tracking_numbers": ["SF100", "SF101", "NOPE"], "station": "s-7"})
    assert answer.status_code == 200
    body = answer.json()
    assert [(o["tracking_number"], o["verdict"]) for o in body["outcomes"]] == [
        ("SF100", "accepted"), ("SF101", "accepted"), ("NOPE", "refused")]
    assert body["refused"] == 1
    assert [row.source for row in _steps(db, ids["ORDER-1"])] == ["scanner"]


def test_scanner_refuses_a_cancelled_parcel_with_the_stop_message(db, scanner):
    _labelled(db, [{"SKU-A": 1}], ["SF100"])
    _cancel_on_platform(db, 1, "SKU-A")
    answer = scanner.post("/scans", headers={"X-Scanner-Token": "s3cret"},
                          json={"step": "packed", "tracking_number": "SF100"})
    assert answer.status_code == 200
    (outcome,) = answer.json()["outcomes"]
    assert outcome["verdict"] == "refused" and outcome["message"].startswith("STOP: order ORDER-1 cancelled")


@pytest.mark.parametrize("headers", [{}, {"X-Scanner-Token": "guess"}])
def test_scanner_without_the_right_token_is_turned_away(db, scanner, headers):
    ids = _labelled(db, [{"SKU-A": 1}], ["SF100"])
    answer = scanner.post("/scans", headers=headers, json={"step": "packed", "tracking_number": "SF100"})
    assert answer.status_code == 401 and "X-Scanner-Token" in answer.json()["error"]
    # A stranger learns nothing about the expected body either.
    assert scanner.post("/scans", headers=headers, json={"step": "boxed"}).status_code == 401
    assert scanner.get("/parcels/SF100", headers=headers).status_code == 401
    assert scanner.get("/healthz").json() == {"ok": True}
    assert _steps(db, ids["ORDER-1"]) == []


@pytest.mark.parametrize(("body", "says"), [
    ({"step": "weighed", "tracking_number": "SF100"}, "needs weight_grams"),
    ({"step": "boxed", "tracking_number": "SF100"}, "step"),
    ({"step": "packed"}, "either tracking_number or tracking_numbers"),
    ({"step": "packed", "tracking_number": "SF100", "weight_grams": -3}, "weight_grams"),
    ({"step": "packed", "tracking_number": "SF100", "phone": "13800138000"}, "phone"),
    ("not json", "not valid JSON"),
])
def test_scanner_says_what_is_wrong_with_a_malformed_scan(db, scanner, body, says):
    headers = {"X-Scanner-Token": "s3cret", "content-type": "application/json"}
    answer = (scanner.post("/scans", headers=headers, content=body) if isinstance(body, str)
              else scanner.post("/scans", headers=headers, json=body))
    assert answer.status_code == 422
    assert says in answer.json()["error"]


def test_scanner_shows_a_parcel_without_personal_data(db, scanner):
    _labelled(db, [{"SKU-A": 2}], ["SF100"])
    scanner.post("/scans", headers={"X-Scanner-Token": "s3cret"},
                 json={"step": "packed", "tracking_number": "SF100", "operator": "li"})
    answer = scanner.get("/parcels/SF100", headers={"X-Scanner-Token": "s3cret"})
    assert answer.status_code == 200
    parcel = answer.json()
    assert parcel["orders"][0]["order_ref"] == "ORDER-1"
    assert [(s["step"], s["source"], s["operator"]) for s in parcel["steps"]] == [("packed", "scanner", "li")]
    assert "13800138000" not in answer.text and "测试" not in answer.text
    assert scanner.get("/parcels/NOPE", headers={"X-Scanner-Token": "s3cret"}).status_code == 404


def test_scanner_without_a_configured_token_takes_scans_from_anyone(db, database_url):
    _labelled(db, [{"SKU-A": 1}], ["SF100"])
    with _scanner(database_url) as client:
        answer = client.post("/scans", json={"step": "packed", "tracking_number": "SF100"})
    assert answer.status_code == 200 and answer.json()["outcomes"][0]["verdict"] == "accepted"


def test_a_merged_parcel_with_a_cancelled_order_is_stopped_until_its_items_are_out(db):
    _labelled(db, [{"SKU-A": 1}, {"SKU-B": 1}], ["SF200", "SF200"])
    _cancel_on_platform(db, 1, "SKU-A")
    (outcome,) = _scan(db, "packed", "SF200")
    assert outcome.verdict == "refused" and "take its items out of this parcel" in outcome.message
