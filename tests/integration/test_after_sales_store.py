"""After-sales requests in the database: stored once, refreshed by newer platform
updates without losing our own progress, linked to the order and its lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from connectors.base import AfterSalesLine, AfterSalesRequest
from oms.db.after_sales import AuditEntry, audit_trail, record_audit, refund_history, store_requests
from oms.db.orders import store_orders
from oms.db.schema import after_sales_requests, order_lines
from tests.factories import BASE_TIME, make_order

NOW = BASE_TIME + timedelta(hours=5)


def request(number: int = 1, *, order: str = "ORDER-1", amount: str = "59.00", minutes_later: int = 60,
            currency: str = "CNY", sku: str = "SKU-0001", buyer: str = "buyer-hash-1") -> AfterSalesRequest:
    return AfterSalesRequest(
        platform="shopify", shop_code="shop-a", platform_request_id=f"RF-{number}", platform_order_id=order,
        kind="refund_only", status="requested", platform_status="WAIT_SELLER_AGREE", amount=Decimal(amount),
        currency=currency, reason_code="not_as_described", reason_text="颜色不对",
        lines=(AfterSalesLine(platform_line_id="", sku=sku, quantity=1, amount=Decimal(amount)),),
        created_at=BASE_TIME + timedelta(minutes=30), updated_at=BASE_TIME + timedelta(minutes=minutes_later),
        respond_by=BASE_TIME + timedelta(hours=48), buyer_ref=buyer, evidence_urls=("https://img.example/1.jpg",))


def stored(db) -> list[dict]:
    with db.connect() as conn:
        query = select(after_sales_requests).order_by(after_sales_requests.c.id)
        return [dict(r._mapping) for r in conn.execute(query)]


def test_a_request_is_stored_once_linked_to_its_order_line_with_the_platform_deadline(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1)], now=NOW)
        line_id = conn.execute(select(order_lines.c.id)).scalar_one()
        first = store_requests(conn, [request(), request()], NOW)  # the same request on two pages
        again = store_requests(conn, [request()], NOW + timedelta(minutes=5))
    assert len(first.new) == 1 and first.unlinked == []
    assert (again.new, again.updated, again.unchanged) == ([], [], 1)
    (row,) = stored(db)
    assert row["order_id"] is not None and row["lines"][0]["order_line_id"] == line_id
    assert row["respond_by"] == BASE_TIME + timedelta(hours=48) and row["status"] == "received"
    assert row["cross_border"] is False


def test_a_newer_platform_update_refreshes_the_platform_side_and_keeps_our_progress(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1)], now=NOW)
        store_requests(conn, [request()], NOW)
        conn.execute(update(after_sales_requests).values(status="in_review", node="finance_review"))
        newer = replace(request(amount="30.00", minutes_later=90), platform_status="WAIT_SELLER_AGREE_AGAIN")
        outcome = store_requests(conn, [newer], NOW + timedelta(minutes=10))
        older = store_requests(conn, [request(amount="1.00", minutes_later=70)], NOW + timedelta(minutes=20))
    (row,) = stored(db)
    assert len(outcome.updated) == 1 and older.unchanged == 1
    assert (row["amount"], row["platform_status"]) == (Decimal("30.00"), "WAIT_SELLER_AGREE_AGAIN")
    assert (row["status"], row["node"]) == ("in_review", "finance_review")


def test_a_request_for_an_order_we_do_not_have_is_kept_and_linked_when_it_arrives(db):
    with db.begin() as conn:
        early = store_requests(conn, [request(order="ORDER-7", currency="SGD")], NOW)
        store_orders(conn, [make_order(7)], now=NOW)
        store_requests(conn, [request(order="ORDER-7", currency="SGD", minutes_later=120)], NOW)
    assert early.unlinked == early.new
    (row,) = stored(db)
    assert row["order_id"] is not None and row["cross_border"] is True


def test_the_audit_trail_keeps_who_what_why_and_the_input_and_history_counts_the_buyers_requests(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1), make_order(2)], now=NOW)
        ids = store_requests(conn, [request(1), request(2, order="ORDER-2"),
                                    request(3, order="ORDER-2", buyer="someone-else")], NOW).new
        record_audit(conn, [AuditEntry(ids[0], "rule:small-refund", "auto_approved", "59.00 CNY is under 100"),
                            AuditEntry(ids[0], "li.supervisor", "decided", "approved 59.00", node="risk_review",
                                       role="supervisor", input={"decision": "approve", "approved_amount": "59.00"})],
                     NOW)
        trail = audit_trail(conn, ids[0])
        history = refund_history(conn, "buyer-hash-1", "shopify", BASE_TIME - timedelta(days=90))
    assert [(t["actor"], t["action"]) for t in trail] == [("rule:small-refund", "auto_approved"),
                                                          ("li.supervisor", "decided")]
    assert trail[1]["input"] == {"decision": "approve", "approved_amount": "59.00"}
    assert len(history) == 2


def test_a_request_is_claimed_once_and_again_only_when_its_claim_went_stale(db):
    from oms.db.refunds import claim_new_requests

    with db.begin() as conn:
        store_requests(conn, [request(1), request(2)], NOW)
        first = claim_new_requests(conn, NOW)
        second = claim_new_requests(conn, NOW + timedelta(minutes=5))
        # Request 2's approval run was started; request 1's claim died with its run.
        conn.execute(update(after_sales_requests).where(after_sales_requests.c.platform_request_id == "RF-2")
                     .values(flow_run_id="run-2"))
        later = claim_new_requests(conn, NOW + timedelta(hours=2))
    assert len(first) == 2 and second == []
    assert [row["platform_request_id"] for row in stored(db) if row["id"] in later] == ["RF-1"]
