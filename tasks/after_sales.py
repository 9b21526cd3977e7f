"""Carrying an after-sales decision out: the platform's agree or refuse call, then our rows.

The platform is told first; only when it accepted do we mark the request refunded or
refused and move the order through the state machine, so a failed call leaves the
request where it was (and retryable) instead of a refund we believe in and the buyer
never got. A platform that refuses the answer for good (`Rejected`: already answered,
past its deadline) marks the request failed, parks it for review with the platform's
words and alerts on-call: a buyer is waiting on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from prefect import task

from connectors.base import AfterSalesDecision, AfterSalesLine, AfterSalesRequest
from oms.db.after_sales import AuditEntry, record_audit
from oms.db.refunds import FAILED, PARTIALLY_REFUNDED, REFUNDED, REFUSED, load_request, set_progress, settle_order
from oms.db.review import ReviewEntry, park
from oms.domain.errors import Rejected
from tasks.alerts import AFTER_SALES_ESCALATED, AFTER_SALES_FAILED, announce
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import connector_for, engine, http_client
from tasks.tokens import call_with_token_retry

SETTLED = (REFUNDED, PARTIALLY_REFUNDED, REFUSED, FAILED)


@dataclass
class Execution:
    status: str
    amount: Decimal
    platform_message: str
    order_change: str


def carry_out_answer(request_id: int, agree: bool, amount: Decimal, note: str,
                     refuse_reason_code: str = "", line: ShopLine | None = None) -> Execution:
    """Send agree (with the amount) or refuse to the platform, then record the outcome.

    `line` is an open connection to the shop for a batch (one platform slot and HTTP
    client for all its requests); without it the call opens its own. A request already
    answered by us is not sent again (a retried batch comes back here)."""
    with engine().connect() as conn:
        request = load_request(conn, request_id)
    if request["status"] in SETTLED:
        return Execution(request["status"], Decimal(request["approved_amount"] or 0), "answered before", "")
    decision = AfterSalesDecision(agree=agree, amount=amount if agree else None, note=note,
                                  refuse_reason_code=refuse_reason_code)
    try:
        if line is not None:
            result = line.answer(as_platform_request(request), decision)
        else:
            result = call_with_token_retry(request["shop_code"], lambda access: _send(access, request, decision))
    except Rejected as refused:
        return _refused_by_platform(request, decision, refused)
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        if agree:
            status = REFUNDED if amount >= Decimal(request["amount"]) else PARTIALLY_REFUNDED
            order_change = settle_order(conn, request, amount, now)
        else:
            status, order_change = REFUSED, "order unchanged"
        set_progress(conn, request_id, now, status=status, approved_amount=amount if agree else Decimal("0"))
        record_audit(conn, [AuditEntry(request_id, "pipeline", "executed",
                                       f"{'agreed to ' + str(amount) if agree else 'refused'} on "
                                       f"{request['platform']}; {order_change}", node="payout", role="pipeline",
                                       input={"agree": agree, "amount": str(amount), "note": note})], now)
    return Execution(status, amount if agree else Decimal("0"), getattr(result, "message", "") or "", order_change)


# One approval run answers one request: its own task run, retried on a passing outage.
answer_on_platform = task(carry_out_answer, name="answer-after-sales", task_run_name="answer-{request_id}",
                          **RETRYING)


class ShopLine:
    """One shop's connector for a batch of answers, inside one platform slot and one HTTP
    client: opening both per request cost more than the platform call itself. The
    connector is rebuilt when a token refresh changed the shop's access."""

    def __init__(self, shop_code: str, http) -> None:
        self.shop_code, self.http = shop_code, http
        self._connector, self._token = None, None

    def answer(self, request: AfterSalesRequest, decision: AfterSalesDecision):
        return call_with_token_retry(self.shop_code,
                                     lambda access: self._for(access).answer_after_sales(request, decision))

    def _for(self, access):
        token = access.credentials.get("access_token")
        if self._connector is None or token != self._token:
            self._connector, self._token = connector_for(access, self.http), token
        return self._connector


@contextmanager
def shop_line(shop_code: str, platform: str) -> Iterator[ShopLine]:
    with platform_slot(platform), http_client() as http:
        yield ShopLine(shop_code, http)


def _send(access, request: dict[str, Any], decision: AfterSalesDecision):
    with platform_slot(access.platform), http_client() as http:
        return connector_for(access, http).answer_after_sales(as_platform_request(request), decision)


def _refused_by_platform(request: dict[str, Any], decision: AfterSalesDecision, refused: Rejected) -> Execution:
    now = datetime.now(timezone.utc)
    said = str(refused)
    with engine().begin() as conn:
        set_progress(conn, request["id"], now, status=FAILED, node="payout")
        record_audit(conn, [AuditEntry(request["id"], "pipeline", "platform_refused", said, node="payout",
                                       role="pipeline", input={"agree": decision.agree, "note": decision.note})], now)
        park(conn, [ReviewEntry("after_sales", request["platform"], request["shop_code"],
                                request["platform_request_id"], [f"the platform refused our answer: {said}"],
                                {"request_id": request["id"], "agree": decision.agree,
                                 "amount": str(decision.amount) if decision.amount is not None else None})], now)
    announce(AFTER_SALES_FAILED, shop_code=request["shop_code"], platform=request["platform"],
             headline=f"Refund answer refused by {request['platform']}: request {request['platform_request_id']}",
             message=f"{said}. The request is in the review queue; answer it in the platform back-office.",
             request=request["platform_request_id"])
    return Execution(FAILED, Decimal("0"), said, "order unchanged")


def as_platform_request(request: dict[str, Any]) -> AfterSalesRequest:
    """The stored request in the connectors' shape, for their answer calls."""
    payload = request["payload"] or {}
    return AfterSalesRequest(
        platform=request["platform"], shop_code=request["shop_code"],
        platform_request_id=request["platform_request_id"], platform_order_id=request["platform_order_id"],
        kind=request["kind"], status="requested", platform_status=request["platform_status"],
        amount=Decimal(request["amount"]), currency=request["currency"], reason_code=request["reason_code"] or "",
        reason_text=request["reason_text"] or "",
        lines=tuple(AfterSalesLine(line.get("platform_line_id") or "", line.get("sku"), int(line["quantity"]),
                                   None if line.get("amount") is None else Decimal(line["amount"]))
                    for line in request["lines"]),
        created_at=request["platform_created_at"], updated_at=request["platform_updated_at"],
        respond_by=request["respond_by"], buyer_ref=request["buyer_ref"] or "",
        evidence_urls=tuple(request["evidence"] or ()), return_carrier=payload.get("return_carrier"),
        return_tracking=payload.get("return_tracking"), version=payload.get("version") or "",
    )


def announce_escalation(request: dict[str, Any], node: str, role: str, final: bool) -> None:
    what = "nobody answered in time; nothing was approved" if final else f"escalated to {role}"
    announce(AFTER_SALES_ESCALATED, shop_code=request["shop_code"], platform=request["platform"],
             headline=f"Refund {request['platform_request_id']} waits at {node.replace('_', ' ')}: {what}",
             message=(f"{request['platform']} after-sales request {request['platform_request_id']} "
                      f"({request['amount']} {request['currency']}) has no answer at {node}. "
                      f"Open its approve-refund run in the Prefect UI and resume it."
                      + (f" The platform decides by itself at {request['respond_by']:%Y-%m-%d %H:%M} UTC."
                         if request["respond_by"] else "")),
             node=node, notify=role, request=request["platform_request_id"], final=final)
