"""After-sales from the platform to the money: requests in from the sandbox, the lifecycle
walked by `approve-refund` (pausing for people, who answer with `run_input`), the answer
on the platform, stock back from returned goods, and the report.

The approval flow runs in a thread against the session's Prefect API, as it would in a
worker, while the test plays the operator: it finds the paused run and resumes it.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from sqlalchemy import select

from flows.after_sales import approve_refund
from flows.after_sales_ingest import ingest_after_sales
from flows.after_sales_process import REPORT_KEY, process_after_sales
from flows.ingest import ingest_orders
from oms.db.after_sales import audit_trail
from oms.db.schema import after_sales_requests, orders, returned_goods, stock, warehouses
from sandbox import after_sales as neutral
from tasks.alerts import AFTER_SALES_ESCALATED
from tests.flows.test_sla_watch import latest_markdown

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30


# ---------------------------------------------------------------------- set-up


@pytest.fixture
def lifecycle(tmp_path) -> str:
    """The shipped lifecycle with waits a test can afford: a person has 45 s a node."""
    document = yaml.safe_load((ROOT / "config" / "after_sales.yaml").read_text())
    for node in document["nodes"]:
        node["timeout"] = "45s"
        node.pop("escalation", None)
    path = tmp_path / "after_sales.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.fixture
def alerts(monkeypatch):
    sent = []
    monkeypatch.setattr("tasks.alerts.emit_event", lambda event, resource, payload: sent.append((event, payload)))
    return sent


@pytest.fixture
def shop(add_shop, sandbox):
    """A Taobao shop: its agree call carries the amount, so partial refunds are paid."""
    code = add_shop("taobao", orders=24, seed=11)
    ingest_orders(code)
    return code


@pytest.fixture
def pdd_shop(add_shop, sandbox):
    code = add_shop("pdd", orders=8, seed=12)
    ingest_orders(code)
    return code


@pytest.fixture
def flow_thread():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def open_request(sandbox, db, shop: str, amount: str, kind: str = neutral.REFUND_ONLY,
                 order_status: tuple[str, ...] = ("shipped", "delivered", "paid")) -> int:
    """The buyer asks on the platform; ingest brings the request in; returns our id."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    state = sandbox.state
    store = neutral.requests_of(state).setdefault(shop, [])
    taken = {r.order.order_id for r in store}
    # An order that paid at least the asked sum: nobody may be refunded more than they paid.
    order = next(o for o in state.shop_orders(shop)
                 if o.status in order_status and o.order_id not in taken and o.total >= Decimal(amount))
    request_id = neutral.FIRST_REQUEST_ID + sum(len(rs) for rs in neutral.requests_of(state).values()) + 500
    request = neutral.SimAfterSale(
        request_id=request_id, shop=shop, order=order, line=order.lines[0], quantity=1, kind=kind,
        status=neutral.REQUESTED, amount=Decimal(amount), reason="damaged", description="arrived broken",
        created_at=now - timedelta(minutes=5), updated_at=now - timedelta(minutes=5),
        respond_by=now + timedelta(hours=40), evidence=[f"https://img.sandbox.example/evidence/{request_id}.jpg"])
    with state.lock:
        store.append(request)
    ingest_after_sales()
    with db.connect() as conn:
        return conn.execute(select(after_sales_requests.c.id).where(
            after_sales_requests.c.platform_request_id == str(request_id))).scalar_one()


def platform_answers(sandbox, shop: str, db, request_id: int) -> list[dict]:
    with db.connect() as conn:
        ref = conn.execute(select(after_sales_requests.c.platform_request_id)
                           .where(after_sales_requests.c.id == request_id)).scalar_one()
    return neutral.find(sandbox.state, shop, int(ref)).answers


def actions(db, request_id: int) -> list[tuple[str, str | None]]:
    with db.connect() as conn:
        return [(row["action"], row["node"]) for row in audit_trail(conn, request_id)]


def row_of(db, request_id: int) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(select(after_sales_requests).where(after_sales_requests.c.id == request_id)
                                 ).one()._mapping)


def start(pool: ThreadPoolExecutor, request_id: int, lifecycle: str) -> Future:
    return pool.submit(approve_refund, request_id, lifecycle_path=lifecycle, poll_seconds=1)


# ---------------------------------------------------------------------- the tests


def test_a_small_refund_is_approved_by_the_rule_without_a_pause_and_paid_on_the_platform(
        db, sandbox, shop, lifecycle):
    request_id = open_request(sandbox, db, shop, "30.00")
    outcome = approve_refund(request_id, lifecycle_path=lifecycle)

    assert (outcome.outcome, outcome.approved_amount, outcome.decided_by) == \
        ("refunded", Decimal("30.00"), "rule: small-refund")
    assert [a["amount"] for a in platform_answers(sandbox, shop, db, request_id)] == [Decimal("30.00")]
    with db.connect() as conn:
        trail = audit_trail(conn, request_id)
    (approval,) = [row for row in trail if row["action"] == "auto_approved"]
    assert approval["actor"] == "rule:small-refund" and "30.00 <= 50" in approval["reason"]
    assert ("paused" not in {row["action"] for row in trail}) and ("executed", "payout") in actions(db, request_id)
    assert ("skipped", "customs") in actions(db, request_id)  # a domestic order skips customs


def test_a_large_refund_pauses_for_operations_and_finance_and_pays_what_they_approved(
        db, sandbox, shop, lifecycle, flow_thread):
    request_id = open_request(sandbox, db, shop, "240.00")
    running = start(flow_thread, request_id, lifecycle)

    operations = paused_run(request_id)
    assert not running.done(), "the flow finished without waiting for a decision"
    description = form_description(operations)
    assert "operations review" in description and "240.00" in description and "### Evidence" in description
    assert row_of(db, request_id)["status"] == "waiting"
    assert resume(operations, decision="partial", approved_amount=220, note="one item was fine",
                  approver="ops.wang") == "ACCEPT"

    finance = paused_run(request_id, not_pause_key=operations.state.state_details.pause_key)
    assert "finance review" in form_description(finance)
    # Finance may lower the amount operations approved, never raise it: the form caps it.
    assert resume(finance, decision="partial", approved_amount=240, note="more", approver="fin.zhao") == "REJECT"
    assert resume(finance, decision="partial", approved_amount=210, note="shipping fee kept",
                  approver="fin.zhao") == "ACCEPT"

    outcome = running.result(timeout=WAIT_SECONDS)
    assert (outcome.outcome, outcome.approved_amount, outcome.decided_by) == \
        ("partially_refunded", Decimal("210.00"), "person: fin.zhao")
    assert [a["amount"] for a in platform_answers(sandbox, shop, db, request_id)] == [Decimal("210.00")]
    with db.connect() as conn:
        decided = [row for row in audit_trail(conn, request_id) if row["action"] == "decided"]
    assert [(row["actor"], row["node"], row["input"]["approved_amount"]) for row in decided] == \
        [("ops.wang", "operations_review", "220.00"), ("fin.zhao", "finance_review", "210.00")]


def test_an_answer_our_rules_refuse_pauses_the_run_again_with_the_reason(db, sandbox, shop, lifecycle, flow_thread):
    request_id = open_request(sandbox, db, shop, "150.00")
    running = start(flow_thread, request_id, lifecycle)
    first = paused_run(request_id)
    assert resume(first, decision="refuse", approved_amount=0, approver="sup.li") == "ACCEPT"

    again = paused_run(request_id, not_pause_key=first.state.state_details.pause_key)
    assert "refuse needs a note" in form_description(again)
    assert platform_answers(sandbox, shop, db, request_id) == []
    assert resume(again, decision="refuse", approved_amount=0, note="the photos show another item",
                  approver="sup.li") == "ACCEPT"

    outcome = running.result(timeout=WAIT_SECONDS)
    assert (outcome.outcome, outcome.approved_amount) == ("refused", Decimal("0.00"))
    assert [a["agree"] for a in platform_answers(sandbox, shop, db, request_id)] == [False]


def test_on_a_platform_that_refunds_only_the_asked_sum_a_partial_answer_is_refused_before_any_call(
        db, sandbox, pdd_shop, lifecycle, flow_thread):
    request_id = open_request(sandbox, db, pdd_shop, "150.00")
    running = start(flow_thread, request_id, lifecycle)
    first = paused_run(request_id)
    assert resume(first, decision="partial", approved_amount=100, note="half", approver="sup.li") == "ACCEPT"
    again = paused_run(request_id, not_pause_key=first.state.state_details.pause_key)
    assert "pdd refunds only the 150.00 asked" in form_description(again)
    assert platform_answers(sandbox, pdd_shop, db, request_id) == []
    assert resume(again, decision="approve", approved_amount=150, approver="sup.li") == "ACCEPT"
    assert running.result(timeout=WAIT_SECONDS).outcome == "refunded"
    assert [a["agree"] for a in platform_answers(sandbox, pdd_shop, db, request_id)] == [True]


def test_a_cross_border_request_passes_customs_and_a_domestic_one_skips_it(
        db, sandbox, shop, add_shop, lifecycle, flow_thread):
    domestic = open_request(sandbox, db, shop, "30.00")
    abroad_shop = add_shop("shopee", orders=12, seed=13)  # a Singapore shop, in SGD
    ingest_orders(abroad_shop)
    abroad = open_request(sandbox, db, abroad_shop, "30.00")
    assert (row_of(db, domestic)["cross_border"], row_of(db, abroad)["cross_border"]) == (False, True)

    assert approve_refund(domestic, lifecycle_path=lifecycle).outcome == "refunded"
    running = start(flow_thread, abroad, lifecycle)
    # The small-refund rule is for domestic orders: a person approves the money first.
    review = paused_run(abroad)
    assert resume(review, decision="approve", approved_amount=30, approver="sup.li") == "ACCEPT"
    customs = paused_run(abroad, not_pause_key=review.state.state_details.pause_key)
    assert "customs" in form_description(customs)
    assert resume(customs, result="passed", note="declaration filed", checked_by="broker.chen") == "ACCEPT"
    assert running.result(timeout=WAIT_SECONDS).outcome == "refunded"
    assert [a["agree"] for a in platform_answers(sandbox, abroad_shop, db, abroad)] == [True]

    assert ("skipped", "customs") in actions(db, domestic) and ("checked", "customs") not in actions(db, domestic)
    assert ("checked", "customs") in actions(db, abroad)


def test_a_pause_nobody_answers_escalates_up_the_ladder_notifies_and_approves_nothing(
        db, sandbox, shop, lifecycle, alerts):
    document = yaml.safe_load(Path(lifecycle).read_text())
    for node in document["nodes"]:
        if node["name"] == "supervisor_review":
            node.update(timeout="4s", escalation=[{"after": "2s", "notify": "team_lead"}])
    Path(lifecycle).write_text(yaml.safe_dump(document))
    request_id = open_request(sandbox, db, shop, "150.00")

    state = approve_refund(request_id, lifecycle_path=lifecycle, poll_seconds=1, return_state=True)
    outcome = state.result()

    assert (outcome.outcome, outcome.approved_amount) == ("escalated", Decimal("0.00"))
    assert outcome.decided_by == "nobody: timed out at supervisor review"
    assert platform_answers(sandbox, shop, db, request_id) == []
    assert row_of(db, request_id)["status"] == "escalated" and row_of(db, request_id)["approved_amount"] is None
    told = [(payload["notify"], payload["final"]) for event, payload in alerts if event == AFTER_SALES_ESCALATED]
    assert told == [("team_lead", False), ("team_lead", True)]
    assert [a for a, node in actions(db, request_id) if node == "supervisor_review"] == \
        ["entered", "escalated", "timed_out"]
    with get_client(sync_client=True) as client:  # the run itself ends Completed, not Failed
        assert client.read_flow_run(state.state_details.flow_run_id).state.type == StateType.COMPLETED


def test_returned_goods_that_pass_inspection_go_back_to_stock_and_failed_ones_are_written_off(
        db, sandbox, shop, lifecycle, flow_thread, stock_levels):
    passed = open_request(sandbox, db, shop, "150.00", kind=neutral.RETURN_AND_REFUND)
    failed = open_request(sandbox, db, shop, "150.00", kind=neutral.RETURN_AND_REFUND)
    skus = [row_of(db, request)["lines"][0]["sku"] for request in (passed, failed)]
    order_ids = [row_of(db, request)["order_id"] for request in (passed, failed)]
    stock_levels({sku: 0 for sku in skus})
    with db.begin() as conn:  # the warehouse that shipped them
        house = conn.execute(select(warehouses.c.id).where(warehouses.c.code == "WH-SH")).scalar_one()
        conn.execute(orders.update().where(orders.c.id.in_(order_ids)).values(warehouse_id=house))

    for request, result in ((passed, "passed"), (failed, "failed")):
        running = start(flow_thread, request, lifecycle)
        review = paused_run(request)
        assert resume(review, decision="approve", approved_amount=150, approver="sup.li") == "ACCEPT"
        inspection = paused_run(request, not_pause_key=review.state.state_details.pause_key)
        assert "warehouse inspection" in form_description(inspection)
        assert resume(inspection, result=result, note="" if result == "passed" else "screen cracked by the buyer",
                      checked_by="wh.zhou") == "ACCEPT"
        assert running.result(timeout=WAIT_SECONDS).outcome == "refunded"

    with db.connect() as conn:
        goods = {row.request_id: (row.outcome, row.reason) for row in conn.execute(select(returned_goods))}
        on_hand = dict(conn.execute(select(stock.c.sku_id, stock.c.on_hand)).all())
    assert goods[passed][0] == "restocked" and goods[failed] == \
        ("written_off", "failed warehouse inspection: screen cracked by the buyer")
    assert sorted(on_hand.values()) == [0, 1]
    assert {row_of(db, request)["status"] for request in (passed, failed)} == {"refunded"}


def test_the_batch_settles_what_needs_nobody_leaves_the_rest_waiting_and_reports(db, sandbox, shop, lifecycle):
    small = [open_request(sandbox, db, shop, amount) for amount in ("12.00", "40.00")]
    large = open_request(sandbox, db, shop, "180.00")

    processed = process_after_sales(lifecycle_path=lifecycle)

    assert processed.claimed == 3 and processed.settled == {"refunded": 2}
    # No approve-refund deployment in the test server: the large one waits, audited.
    assert processed.waiting_without_run == [large]
    assert [row_of(db, request)["status"] for request in small] == ["refunded", "refunded"]
    assert row_of(db, large)["status"] == "waiting"
    assert process_after_sales(lifecycle_path=lifecycle).claimed == 0  # nothing is claimed twice

    report = latest_markdown(REPORT_KEY)
    assert "| damaged | 3 | 100% |" in report
    assert "| supervisor_review | 2 |" in report  # two decided by rule at the node


# ---------------------------------------------------------------------- the operator


def runs_of(request_id: int, states: list[StateType] | None = None) -> list[FlowRun]:
    flow_runs = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))) \
        if states else None
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["approve-refund"])),
                                      flow_run_filter=flow_runs, limit=200,
                                      sort=FlowRunSort.START_TIME_DESC)
    return [run for run in found if run.parameters.get("request_id") == request_id
            and run.parameters.get("lifecycle_path")]


def paused_run(request_id: int, not_pause_key: str | None = None) -> FlowRun:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for run in runs_of(request_id, [StateType.PAUSED]):
            if run.state.state_details.pause_key != not_pause_key:
                return run
        time.sleep(0.2)
    raise AssertionError(f"no run of request #{request_id} paused within {WAIT_SECONDS} s")


def form_description(run: FlowRun) -> str:
    """The Markdown the UI shows above the resume form of this pause."""
    key = f"paused-{run.state.state_details.pause_key}-description"
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                return client.read_flow_run_input(flow_run_id=run.id, key=key)
            except Exception:  # written just after the pause itself: wait for it
                time.sleep(0.2)
    raise AssertionError(f"no form description under {key}")


def resume(run: FlowRun, **answer) -> str:
    with get_client(sync_client=True) as client:
        return client.resume_flow_run(run.id, run_input=answer).status.value


