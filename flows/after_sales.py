"""`approve-refund`: one after-sales request through the configured lifecycle.

The lifecycle (config/after_sales.yaml) gives the path: an automatic rule approves a small
refund at once; a node that needs a person pauses this run with a form in the Prefect UI
(`tasks.approvals`), escalating up its ladder while nobody answers; checks restock or
write off returned goods; the payout node tells the platform and moves the order. Every
step is an audit row. One flow run per request that needs a person is inherent (a pause
holds one run); requests nobody needs to see are settled by `process-after-sales` in
batches through the same `walk_lifecycle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext

from oms.after_sales_rules import load_lifecycle
from oms.db.after_sales import AuditEntry, record_audit
from oms.db.refunds import (
    ESCALATED,
    HELD,
    IN_REVIEW,
    WAITING,
    approver_view,
    earlier_requests,
    facts_of,
    load_request,
    set_progress,
    settle_returned_goods,
)
from oms.domain.refund_view import Decision, RefundView, TimedOut, refund_view_from_dict
from oms.domain.refunds import Lifecycle, Step, plan, waits
from tasks.after_sales import SETTLED, announce_escalation, answer_on_platform
from tasks.approvals import CheckResult, ask_for_check, ask_for_decision
from tasks.resources import engine


@dataclass
class RefundOutcome:
    request_id: int
    outcome: str  # refunded | partially_refunded | refused | escalated | held | failed
    approved_amount: Decimal
    decided_by: str  # "rule: <name>", "person: <approver>", or "nobody: timed out at <node>"
    note: str = ""
    path: list[str] = field(default_factory=list)  # node: action, as walked


class NeedsAPerson(RuntimeError):
    """A request reached a node that needs a person outside an approval run."""


@flow(name="approve-refund", flow_run_name="refund-{request_id}")
def approve_refund(request_id: int, lifecycle_path: str | None = None, poll_seconds: int = 10) -> RefundOutcome:
    """Walk one request through the lifecycle, pausing for people where it says so."""
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else None
    return walk_lifecycle(request_id, load_lifecycle(lifecycle_path), flow_run_id=run_id,
                          poll_seconds=poll_seconds, people=True)


def walk_lifecycle(request_id: int, lifecycle: Lifecycle, *, flow_run_id: str | None = None,
                   poll_seconds: int = 10, people: bool = True, execute: Callable = answer_on_platform
                   ) -> RefundOutcome:
    """One request's walk; `people=False` refuses (NeedsAPerson) a path with a person on it,
    and `execute` is how the decision reaches the platform (a task of its own here, a plain
    call inside the batch task of `process-after-sales`)."""
    return _Walk(request_id, lifecycle, flow_run_id, poll_seconds, people, execute).run()


class _Walk:
    """The state of one request's walk: the money approved so far and who decided."""

    def __init__(self, request_id: int, lifecycle: Lifecycle, flow_run_id: str | None, poll_seconds: int,
                 people: bool, execute: Callable) -> None:
        self.request_id, self.lifecycle, self.poll_seconds, self.people = request_id, lifecycle, poll_seconds, people
        self.flow_run_id, self.execute = flow_run_id, execute
        self.logger = get_run_logger()
        with engine().connect() as conn:
            self.request = load_request(conn, request_id)
            self.earlier = earlier_requests(conn, self.request, lifecycle, _now())
        self.facts = facts_of(self.request, self.earlier)
        self._view: RefundView | None = None  # built when a person is asked, not before
        self.plan = plan(lifecycle, self.facts)
        self.approved = Decimal(self.request["amount"])
        self.decided_by = ""
        self.note = ""
        self.refuse_code = ""
        self.path: list[str] = []
        # Audit rows wait here until the next write: a batch request then costs a few
        # transactions, not one per row. Whatever a person answered is written at once.
        self.pending: list[AuditEntry] = []

    def run(self) -> RefundOutcome:
        if self.request["status"] in SETTLED:
            # Answered on the platform already: a second run must not ask or pay again.
            return self._outcome(self.request["status"], Decimal(self.request["approved_amount"] or 0),
                                 "earlier run", "")
        if not self.people and self.plan.needs_a_person:
            raise NeedsAPerson(f"request #{self.request_id} needs {self.plan.asks[0].node.name}")
        self._audit("pipeline", "planned", self.plan.summary(), input={"facts": _facts_json(self.facts)})
        self._progress(IN_REVIEW, None)
        refused = False
        for step in self.plan.steps:
            self.path.append(f"{step.node.name}: {step.action}")
            if step.action == "skip":
                self._audit("pipeline", "skipped", step.why, node=step.node.name)
            elif step.action == "auto":
                self._auto(step)
            elif step.action == "ask" and refused:
                self._audit("pipeline", "skipped", "the refund was refused before this node", node=step.node.name)
            elif step.action == "ask":
                stop = self._ask(step)
                if isinstance(stop, RefundOutcome):
                    return stop
                refused = stop
            elif step.action == "payout":
                return self._payout(refused)
        raise AssertionError("a lifecycle always ends with its payout node")  # checked when loaded

    # ---- the nodes ----------------------------------------------------------------

    def _auto(self, step: Step) -> None:
        rule = self.plan.auto_rule
        self._audit("pipeline", "entered", f"{step.node.label}: {step.why}", node=step.node.name, role=step.node.role)
        self._audit(f"rule:{rule.name}", "auto_approved", step.why, node=step.node.name, role="rule",
                    input={"decision": "approve", "approved_amount": str(self.approved)})
        self.decided_by = self.decided_by or f"rule: {rule.name}"

    def _ask(self, step: Step) -> bool | RefundOutcome:
        """A person's node; True when they refused the refund, an outcome when the walk ends."""
        node = step.node
        self._audit("pipeline", "entered", f"{node.label}: {step.why}", node=node.name, role=node.role)
        self._progress(WAITING, node.name)
        view = replace(self.approver_view(), node=node.label, node_reason=f"{node.role} decides here: {step.why}",
                       requested_amount=self.approved)
        stretches = waits(node, self._until_platform_deadline())

        def notify(role, _stretch):
            self._audit("pipeline", "escalated", f"no answer at {node.label}; {role} told", node=node.name,
                        role=role)
            self._flush()
            announce_escalation(self.request, node.name, role, final=False)

        if node.kind == "approval":
            answer = ask_for_decision(view, node.name, stretches, notify, poll_seconds=self.poll_seconds)
        else:
            answer = ask_for_check(view, node.name, stretches, notify, poll_seconds=self.poll_seconds)
        if isinstance(answer, TimedOut):
            return self._timed_out(step, answer)
        if isinstance(answer, CheckResult):
            return self._checked(step, answer)
        return self._decided(step, answer)

    def _decided(self, step: Step, decision: Decision) -> bool:
        self._audit(decision.approver, "decided", f"{decision.outcome} {decision.approved_amount}"
                    + (f": {decision.note}" if decision.note else ""), node=step.node.name, role=step.node.role,
                    input={"decision": decision.outcome, "approved_amount": str(decision.approved_amount),
                           "note": decision.note, "approver": decision.approver,
                           "refuse_reason_code": decision.refuse_reason_code})
        self._flush()
        self.decided_by = f"person: {decision.approver}"
        self.note = decision.note or self.note
        if decision.outcome == "refuse":
            self.approved, self.refuse_code = Decimal("0.00"), decision.refuse_reason_code
            return True
        self.approved = decision.approved_amount
        return False

    def _checked(self, step: Step, result: CheckResult) -> bool | RefundOutcome:
        node = step.node
        self._audit(result.checked_by, "checked", ("passed" if result.passed else "failed")
                    + (f": {result.note}" if result.note else ""), node=node.name, role=node.role,
                    input={"result": "passed" if result.passed else "failed", "note": result.note,
                           "checked_by": result.checked_by})
        self._flush()
        goods = node.on_fail == "write_off"  # an inspection of returned goods
        if result.passed:
            if goods:
                self._settle_goods(restock=True, reason=f"passed {node.label} ({result.checked_by})")
            return False
        if node.on_fail == "write_off":
            self._settle_goods(restock=False, reason=f"failed {node.label}: {result.note}")
            return False
        if node.on_fail == "refuse":
            self.approved, self.note = Decimal("0.00"), result.note
            self.decided_by = f"person: {result.checked_by}"
            return True
        self._audit("pipeline", "held", f"{node.label} failed: {result.note}; nothing paid until settled",
                    node=node.name)
        self._progress(HELD, node.name)
        announce_escalation(self.request, node.name, node.role, final=True)
        return self._outcome(HELD, Decimal("0.00"), f"person: {result.checked_by}", result.note)

    def _settle_goods(self, restock: bool, reason: str) -> None:
        now = _now()
        with engine().begin() as conn:
            goods = settle_returned_goods(conn, self.request, restock=restock, reason=reason, now=now)
            self._write_pending(conn, now)
            record_audit(conn, [AuditEntry(self.request_id, "pipeline", "restocked" if restock else "written_off",
                                           f"{goods.restocked} unit(s) back in stock, {goods.written_off} written off"
                                           + "".join(f"; {problem}" for problem in goods.problems),
                                           node="warehouse", input={"reason": reason})], now)

    def _timed_out(self, step: Step, timed_out: TimedOut) -> RefundOutcome:
        node = step.node
        self._audit("pipeline", "timed_out", f"nobody answered at {node.label} within {timed_out.waited_seconds} s;"
                    " nothing approved", node=node.name, role=node.role,
                    input={"refused_answers": list(timed_out.problems_seen)})
        self._progress(ESCALATED, node.name)
        last = node.escalation[-1].notify if node.escalation else node.role
        announce_escalation(self.request, node.name, last, final=True)
        return self._outcome(ESCALATED, Decimal("0.00"), f"nobody: timed out at {node.label}", "")

    def _payout(self, refused: bool) -> RefundOutcome:
        agree = not refused and self.approved > 0
        note = self.note or ("approved" if agree else "refused")
        self._flush()  # the decision is on record before the platform hears it
        executed = self.execute(self.request_id, agree, self.approved if agree else Decimal("0"), note,
                                      self.refuse_code)
        self.logger.info("request #%s: %s %s (%s)", self.request_id, executed.status, executed.amount,
                         executed.order_change)
        return self._outcome(executed.status, executed.amount, self.decided_by or "rule: none", self.note)

    # ---- helpers -------------------------------------------------------------------

    def approver_view(self) -> RefundView:
        if self._view is None:
            with engine().connect() as conn:
                self._view = refund_view_from_dict(approver_view(conn, self.request, self.earlier, _now()))
        return self._view

    def _until_platform_deadline(self) -> timedelta | None:
        respond_by = self.request["respond_by"]
        return None if respond_by is None else respond_by - _now()

    def _progress(self, status: str, node: str | None) -> None:
        now = _now()
        with engine().begin() as conn:
            self._write_pending(conn, now)
            set_progress(conn, self.request_id, now, status=status, node=node, flow_run_id=self.flow_run_id)

    def _flush(self) -> None:
        if self.pending:
            with engine().begin() as conn:
                self._write_pending(conn, _now())

    def _write_pending(self, conn, now: datetime) -> None:
        if self.pending:
            record_audit(conn, self.pending, now)
            self.pending = []

    def _audit(self, actor: str, action: str, reason: str, node: str | None = None, role: str | None = None,
               input: dict[str, Any] | None = None) -> None:
        self.pending.append(AuditEntry(self.request_id, actor[:64], action, reason, node=node, role=role,
                                       input=input, at=_now()))

    def _outcome(self, status: str, amount: Decimal, decided_by: str, note: str) -> RefundOutcome:
        return RefundOutcome(self.request_id, status, amount, decided_by, note, self.path)


def _facts_json(facts) -> dict[str, Any]:
    return {"kind": facts.kind, "amount": str(facts.amount), "currency": facts.currency, "reason": facts.reason_code,
            "channel": facts.platform, "cross_border": facts.cross_border, "skus": list(facts.skus),
            "member_level": facts.member_level, "earlier_refunds": facts.earlier_refunds}


def _now() -> datetime:
    return datetime.now(timezone.utc)

