"""`oms review` on both databases: operators list, show, fix, resubmit and discard parked
entries, and every action leaves an audit row.

Entries are parked the way ingest parks them: a sandbox-rendered platform payload goes
through the platform's mapping, cleaning and the `orders` suite, and what fails waits
in the queue with the suite's reasons.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from expectations.runner import validate_records
from oms.commands.review import run
from oms.db.allocation import allocate_batch
from oms.db.review import ReviewEntry, park
from oms.db.schema import order_lines, orders, personal_data_exports, review_audit, review_queue, shipments
from oms.db.shipping import ShipmentDraft, record_shipments
from oms.db.shops import save_skus
from oms.db.tracking import due_pushes, park_push, record_attempt
from oms.domain.cleaning import clean_order
from oms.domain.errors import MappingError
from oms.domain.write_back import REJECTED
from sandbox import shopify_render, taobao_render
from sandbox.model import SimLine, SimOrder
from tasks.resources import MAPPERS
from tests.stockworld import NOW, build_world, default_policy, place_orders

SHOP = "cn-shopify"
BAD_PHONE = "138-0013"  # too short to be any phone
GOOD_PHONE = "13800138000"


def sim_order(order_id: int, **changes) -> SimOrder:
    moment = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)
    values = dict(
        order_id=order_id, shop=SHOP, created_at=moment, updated_at=moment, status="paid", currency="CNY",
        lines=[SimLine("SKU-0002", "帆布包 黑色", 1, Decimal("59.00"), 1)], shipping_fee=Decimal("0"),
        receiver_name="李娜", phone=GOOD_PHONE, province="广东省", city="深圳市", district="南山区",
        address="南山区科技园1号", postal_code="518000",
    )
    values.update(changes)
    return SimOrder(**values)


def park_as_ingest_would(db, platform: str, shop: str, payload: dict) -> int:
    """Map, clean and check one payload as the ingest tasks do; park it; return the entry id."""
    try:
        cleaned = clean_order(MAPPERS[platform](payload, shop))
    except MappingError as error:
        entry = ReviewEntry("clean", platform, shop, str(payload.get("tid") or payload.get("id")),
                            error.reasons, payload)
    else:
        reasons = validate_records("orders", [cleaned.facts]).reasons_by_row.get(0)
        assert reasons, "the test payload was meant to fail the suite"
        entry = ReviewEntry("validate", platform, shop, cleaned.order.platform_order_id, reasons, payload)
    with db.begin() as conn:
        park(conn, [entry], NOW)
        return conn.execute(select(func.max(review_queue.c.id))).scalar_one()


def bad_phone_entry(db, order_id: int = 9001) -> int:
    return park_as_ingest_would(db, "shopify", SHOP, shopify_render.render_order(sim_order(order_id, phone=BAD_PHONE)))


def unmappable_taobao_entry(db) -> int:
    trade = taobao_render.render_trade(sim_order(7001, shop="tb-shop")) | {"status": "NOT_A_TRADE_STATUS"}
    return park_as_ingest_would(db, "taobao", "tb-shop", trade)


def entry(db, entry_id: int) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(select(review_queue).where(review_queue.c.id == entry_id)).one()._mapping)


def audit(db, entry_id: int) -> list[dict]:
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(
            select(review_audit).where(review_audit.c.review_id == entry_id).order_by(review_audit.c.id))]


def stored_orders(db) -> list[dict]:
    with db.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(orders).order_by(orders.c.id))]


# ------------------------------------------------------------------ list


def test_list_shows_open_entries_with_their_reasons_and_no_personal_data(db, capsys):
    phone_id, taobao_id = bad_phone_entry(db), unmappable_taobao_entry(db)

    assert run(["review", "list"]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split()[:5] == ["id", "stage", "shop", "order", "since"]
    assert lines[1].split()[:3] == [str(taobao_id), "clean", "tb-shop"]  # newest first
    assert lines[2].split()[:4] == [str(phone_id), "validate", SHOP, "9001"]
    assert "receiver phone is missing or invalid" in printed
    assert "NOT_A_TRADE_STATUS" in printed
    assert "by stage and reason" in printed
    assert BAD_PHONE not in printed and "李娜" not in printed and "科技园" not in printed


def test_list_filters_by_stage_shop_and_reason_and_shows_resolved_ones_on_request(db, capsys):
    phone_id, taobao_id = bad_phone_entry(db), unmappable_taobao_entry(db)
    assert run(["review", "discard", str(taobao_id), "--reason", "test order", "--actor", "ops-li"]) == 0
    capsys.readouterr()

    assert run(["review", "list", "--stage", "clean"]) == 0
    assert "no open review entry matches" in capsys.readouterr().out

    assert run(["review", "list", "--all", "--shop", "tb-shop"]) == 0
    printed = capsys.readouterr().out
    assert f"{taobao_id}" in printed and "resolved by ops-li" in printed and SHOP not in printed

    assert run(["review", "list", "--reason", "PHONE"]) == 0
    rows = capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]
    assert [row.split()[0] for row in rows] == [str(phone_id)]


# ------------------------------------------------------------------ show


def test_show_prints_payload_and_reasons_and_records_the_export_and_the_viewing(db, capsys):
    entry_id = bad_phone_entry(db)

    assert run(["review", "show", str(entry_id), "--actor", "ops-wang", "--purpose", "buyer called"]) == 0
    printed = capsys.readouterr().out
    assert "receiver phone is missing or invalid" in printed
    assert "validate" in printed and "9001" in printed
    payload_text = printed[printed.index("{"):]
    assert json.loads(payload_text)["shipping_address"]["phone"] == BAD_PHONE

    with db.connect() as conn:
        [export] = conn.execute(select(personal_data_exports)).all()
    assert (export.actor, export.kind, export.purpose, export.row_count) == (
        "ops-wang", "review-payload", "buyer called", 1)
    assert str(entry_id) in export.subject
    [shown] = audit(db, entry_id)
    assert (shown["action"], shown["actor"], shown["reason"]) == ("shown", "ops-wang", "buyer called")
    assert shown["detail"] == {"export_id": export.id}


def test_show_without_a_purpose_records_review_and_the_os_user(db, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "night-shift")
    entry_id = bad_phone_entry(db)

    assert run(["review", "show", str(entry_id)]) == 0
    with db.connect() as conn:
        export = conn.execute(select(personal_data_exports)).one()
    assert (export.actor, export.purpose) == ("night-shift", "review")


def test_showing_an_unknown_entry_is_refused_and_records_nothing(db, capsys):
    assert run(["review", "show", "4242"]) == 2
    assert "there is no review entry 4242" in capsys.readouterr().err
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(personal_data_exports)).scalar_one() == 0


# ------------------------------------------------------------------ fix and resubmit


def test_a_fixed_phone_resubmitted_is_stored_and_closes_the_entry(db, capsys):
    entry_id = bad_phone_entry(db)

    assert run(["review", "fix", str(entry_id), "--set", f"shipping_address.phone={GOOD_PHONE}",
                "--actor", "ops-wang", "--note", "buyer gave the number by phone"]) == 0
    printed = capsys.readouterr().out
    assert "changed shipping_address.phone" in printed and GOOD_PHONE not in printed
    assert entry(db, entry_id)["resolved_at"] is None  # a fix alone proves nothing

    assert run(["review", "resubmit", str(entry_id), "--actor", "ops-wang"]) == 0
    [order] = stored_orders(db)
    assert (order["platform_order_id"], order["receiver_phone"]) == ("9001", "+8613800138000")
    closed = entry(db, entry_id)
    assert closed["resolved_at"] is not None and closed["resolved_by"] == "ops-wang"
    assert closed["resolution"] == f"resubmitted, stored as order {order['id']}"
    assert f"stored as order {order['id']}" in capsys.readouterr().out

    fixed, resubmitted = audit(db, entry_id)
    assert fixed["action"] == "fixed" and fixed["reason"] == "buyer gave the number by phone"
    # The audit keeps what the platform sent, so nothing is lost by fixing.
    assert fixed["detail"]["changes"] == [{"path": "shipping_address.phone", "kind": "changed",
                                           "before": BAD_PHONE, "after": GOOD_PHONE}]
    assert resubmitted["action"] == "resubmitted"
    assert resubmitted["detail"] == {"outcome": "stored", "order_id": order["id"], "stored": "inserted"}


def test_a_payload_file_fix_with_resubmit_stores_the_order_in_one_command(db, capsys, tmp_path):
    entry_id = bad_phone_entry(db)
    with db.connect() as conn:
        payload = conn.execute(select(review_queue.c.payload).where(review_queue.c.id == entry_id)).scalar_one()
    payload["shipping_address"]["phone"] = "+86 138 0013 8000"
    fixed_file = tmp_path / "fixed.json"
    fixed_file.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    assert run(["review", "fix", str(entry_id), "--payload-file", str(fixed_file), "--resubmit",
                "--actor", "ops-li"]) == 0
    assert [o["platform_order_id"] for o in stored_orders(db)] == ["9001"]
    assert [row["action"] for row in audit(db, entry_id)] == ["fixed", "resubmitted"]
    assert audit(db, entry_id)[0]["detail"]["how"] == "payload file fixed.json"


def test_resubmitting_a_payload_that_is_still_bad_keeps_the_entry_open_with_the_new_reasons(db, capsys):
    entry_id = bad_phone_entry(db)
    assert run(["review", "fix", str(entry_id), "--set", "shipping_address.city=", "--actor", "ops-li"]) == 0
    capsys.readouterr()

    assert run(["review", "resubmit", str(entry_id), "--actor", "ops-li"]) == 1
    printed = capsys.readouterr().out
    assert "still fails at validate and stays open" in printed
    assert "receiver address or city is missing" in printed

    still_open = entry(db, entry_id)
    assert still_open["resolved_at"] is None
    assert set(still_open["reasons"]) == {"receiver phone is missing or invalid",
                                          "receiver address or city is missing"}
    assert stored_orders(db) == []
    failed = audit(db, entry_id)[-1]
    assert failed["action"] == "resubmit_failed" and failed["detail"]["stage"] == "validate"


def test_a_fix_that_breaks_the_mapping_moves_the_entry_to_the_clean_stage(db, capsys):
    entry_id = bad_phone_entry(db)
    assert run(["review", "fix", str(entry_id), "--set", "line_items:=\"not a list\"", "--resubmit",
                "--actor", "ops-li"]) == 1
    assert entry(db, entry_id)["stage"] == "clean"
    assert entry(db, entry_id)["resolved_at"] is None


def test_an_unmappable_payload_fixed_is_stored(db, capsys):
    entry_id = unmappable_taobao_entry(db)
    assert run(["review", "fix", str(entry_id), "--set", "status=WAIT_SELLER_SEND_GOODS", "--resubmit",
                "--actor", "ops-li"]) == 0
    [order] = stored_orders(db)
    assert (order["platform"], order["shop_code"], order["status"]) == ("taobao", "tb-shop", "paid")


def test_a_fix_that_changes_nothing_or_cannot_be_applied_is_refused(db, capsys):
    entry_id = bad_phone_entry(db)
    assert run(["review", "fix", str(entry_id), "--set", f"shipping_address.phone={BAD_PHONE}"]) == 2
    assert "changes nothing" in capsys.readouterr().err
    assert run(["review", "fix", str(entry_id), "--set", "line_items.5.sku=X"]) == 2
    assert "1 element" in capsys.readouterr().err
    assert run(["review", "fix", str(entry_id), "--set", "no-equals"]) == 2
    assert audit(db, entry_id) == []


def test_a_fix_needs_either_assignments_or_a_file(db, capsys):
    entry_id = bad_phone_entry(db)
    with pytest.raises(SystemExit) as exit_:
        run(["review", "fix", str(entry_id)])
    assert exit_.value.code == 2


# ------------------------------------------------------------------ discard


def test_discarding_needs_a_reason(db, capsys):
    entry_id = unmappable_taobao_entry(db)
    with pytest.raises(SystemExit) as exit_:
        run(["review", "discard", str(entry_id)])
    assert exit_.value.code == 2
    assert "--reason" in capsys.readouterr().err

    assert run(["review", "discard", str(entry_id), "--reason", "   "]) == 2
    assert "say why" in capsys.readouterr().err
    assert entry(db, entry_id)["resolved_at"] is None and audit(db, entry_id) == []


def test_discarding_with_a_reason_closes_the_entry_and_audits_it(db, capsys):
    entry_id = unmappable_taobao_entry(db)
    assert run(["review", "discard", str(entry_id), "--reason", "a test trade of the seller",
                "--actor", "ops-li"]) == 0
    closed = entry(db, entry_id)
    assert (closed["resolution"], closed["resolved_by"]) == ("discarded: a test trade of the seller", "ops-li")
    [discarded] = audit(db, entry_id)
    assert (discarded["action"], discarded["actor"], discarded["reason"]) == (
        "discarded", "ops-li", "a test trade of the seller")


def test_acting_on_a_resolved_or_unknown_entry_is_refused_without_a_traceback(db, capsys):
    entry_id = unmappable_taobao_entry(db)
    assert run(["review", "discard", str(entry_id), "--reason", "duplicate", "--actor", "ops-li"]) == 0
    capsys.readouterr()
    for command in (["discard", str(entry_id), "--reason", "again"], ["resubmit", str(entry_id)],
                    ["fix", str(entry_id), "--set", "status=TRADE_FINISHED"]):
        assert run(["review", *command]) == 2
        error = capsys.readouterr().err
        assert f"review entry {entry_id} was resolved by ops-li" in error and "Traceback" not in error
    assert run(["review", "resubmit", "999999"]) == 2
    assert "there is no review entry 999999" in capsys.readouterr().err
    assert len(audit(db, entry_id)) == 1


# ------------------------------------------------------------------ history


def test_history_lists_every_action_in_order_without_the_values_written(db, capsys):
    entry_id = bad_phone_entry(db)
    steps = [
        ["show", str(entry_id), "--actor", "ops-wang"],
        ["fix", str(entry_id), "--set", "shipping_address.city=", "--actor", "ops-wang"],
        ["resubmit", str(entry_id), "--actor", "ops-wang"],
        ["fix", str(entry_id), "--set", "shipping_address.city=深圳市", "--set",
         f"shipping_address.phone={GOOD_PHONE}", "--actor", "ops-li"],
        ["resubmit", str(entry_id), "--actor", "ops-li"],
    ]
    for step in steps:
        run(["review", *step])
    capsys.readouterr()

    assert run(["review", "history", str(entry_id)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert f"review entry {entry_id}: parked" in lines[0] and "resolved by ops-li" in lines[0]
    actions = [line.split()[2:4] for line in lines[2:]]  # after the date and the time
    assert actions == [["ops-wang", "shown"], ["ops-wang", "fixed"], ["ops-wang", "resubmit_failed"],
                       ["ops-li", "fixed"], ["ops-li", "resubmitted"]]
    assert "shipping_address.city, shipping_address.phone" in printed
    assert GOOD_PHONE not in printed and BAD_PHONE not in printed


def test_history_of_an_untouched_entry_says_so(db, capsys):
    entry_id = bad_phone_entry(db)
    assert run(["review", "history", str(entry_id)]) == 0
    assert "no operator has acted on it yet" in capsys.readouterr().out


# ------------------------------------------------------------------ later stages


def _unknown_sku_entry(db) -> int:
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 5})
        place_orders(conn, [{"SKU-NEW": 1}])
        outcome = allocate_batch(conn, limit=10, now=NOW, actor="test", policy=default_policy())
        [(order_id, skus)] = outcome.unknown_skus.items()
        park(conn, [ReviewEntry("allocate", "shopify", "shop-a", "ORDER-1",
                                [f"SKU {sku} is not in the catalogue" for sku in skus],
                                {"order_id": order_id, "skus": skus})], NOW)
        return conn.execute(select(func.max(review_queue.c.id))).scalar_one()


def test_an_allocate_entry_is_resubmitted_once_its_skus_are_in_the_catalogue(db, capsys):
    entry_id = _unknown_sku_entry(db)

    assert run(["review", "resubmit", str(entry_id), "--actor", "ops-li"]) == 2
    assert "SKU-NEW" in capsys.readouterr().err
    assert entry(db, entry_id)["resolved_at"] is None

    with db.begin() as conn:
        save_skus(conn, [{"code": "SKU-NEW", "title": "新品", "weight_grams": 200}])
    assert run(["review", "resubmit", str(entry_id), "--actor", "ops-li"]) == 0
    assert "the next fulfil run allocates" in entry(db, entry_id)["resolution"]
    assert [row["action"] for row in audit(db, entry_id)] == ["resubmitted"]


def test_an_allocate_entry_cannot_be_fixed(db, capsys):
    entry_id = _unknown_sku_entry(db)
    assert run(["review", "fix", str(entry_id), "--set", "order_id:=1"]) == 2
    assert "cannot be fixed here" in capsys.readouterr().err


def test_a_ship_entry_of_an_order_still_waiting_says_what_to_do_instead(db, capsys):
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 5})
        place_orders(conn, [{"SKU-A": 1}])
        allocate_batch(conn, limit=10, now=NOW, actor="test", policy=default_policy())
        order_id = conn.execute(select(orders.c.id)).scalar_one()
        park(conn, [ReviewEntry("ship", "shopify", "shop-a", "ORDER-1", ["no carrier takes this parcel"],
                                {"order_id": order_id, "warehouse": "WH-SH"})], NOW)
        entry_id = conn.execute(select(func.max(review_queue.c.id))).scalar_one()
        assert conn.execute(select(func.count()).select_from(order_lines)).scalar_one() == 1

    assert run(["review", "resubmit", str(entry_id)]) == 2
    error = capsys.readouterr().err
    assert "every fulfil run already tries" in error and "discard" in error
    assert entry(db, entry_id)["resolved_at"] is None


def test_an_entry_of_a_stage_without_resubmission_is_refused_with_advice(db, capsys):
    with db.begin() as conn:
        park(conn, [ReviewEntry("drift", "shopify", "shop-a", "ORDER-1", ["status drift"], {"order_id": 1})], NOW)
        entry_id = conn.execute(select(func.max(review_queue.c.id))).scalar_one()
    assert run(["review", "resubmit", str(entry_id)]) == 2
    assert f"oms review discard {entry_id} --reason" in capsys.readouterr().err


def test_a_write_back_entry_resubmitted_makes_its_push_due_again(db, capsys):
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 5})
        place_orders(conn, [{"SKU-A": 1}])
        allocate_batch(conn, limit=10, now=NOW, actor="test", policy=default_policy())
        order = conn.execute(select(orders.c.id, orders.c.warehouse_id)).one()
        record_shipments(conn, [ShipmentDraft(order.id, order.warehouse_id, "SF", "SF1000000001")], NOW)
        shipment = {"shipment_id": conn.execute(select(shipments.c.id)).scalar_one(), "order_id": order.id,
                    "carrier": "SF", "tracking_number": "SF1000000001", "platform": "shopify",
                    "shop_code": "shop-a", "platform_order_id": "ORDER-1"}
        record_attempt(conn, shipment, outcome=REJECTED, now=NOW, error="carrier code not accepted")
        park_push(conn, shipment, "the platform refused the carrier code", NOW, attempt=1)
        entry_id = conn.execute(select(func.max(review_queue.c.id))).scalar_one()
        assert due_pushes(conn, NOW, limit=10) == []

    assert run(["review", "resubmit", str(entry_id), "--actor", "ops-li"]) == 0
    assert "the push is due again" in capsys.readouterr().out
    closed = entry(db, entry_id)
    assert closed["resolved_at"] is not None and closed["resolved_by"] == "ops-li"
    with db.connect() as conn:
        assert [push["shipment_id"] for push in due_pushes(conn, NOW, limit=10)] == [shipment["shipment_id"]]
    assert [row["action"] for row in audit(db, entry_id)] == ["resubmitted"]


def test_a_fix_that_turns_the_payload_into_another_order_is_refused_on_resubmit(db, capsys):
    entry_id = bad_phone_entry(db)
    assert run(["review", "fix", str(entry_id), "--set", "id:=9002", "--set",
                f"shipping_address.phone={GOOD_PHONE}", "--resubmit"]) == 2
    assert "now maps to order 9002, but the entry is about order 9001" in capsys.readouterr().err
    assert stored_orders(db) == [] and entry(db, entry_id)["resolved_at"] is None
