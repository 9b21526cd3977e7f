"""What an approver sees and may answer at a refund node: the view, the decision, its checks.

`RefundView` is everything a person needs on one screen to decide a refund, already free
of personal data: the buyer appears only as a masked phone and a refund history. The
after-sales domain builds it from a request; this module turns it into the Markdown that
the Prefect UI shows above the resume form, and checks an answer before any money moves.
Pure: no clock reads (`now` comes in), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from oms.domain.normalize import mask_phone

CENT = Decimal("0.01")
OUTCOMES = ("approve", "partial", "refuse")


@dataclass(frozen=True)
class RefundLine:
    sku: str
    title: str
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class PastRefund:
    """One earlier refund of the same buyer, as history for a repeat-refunder judgement."""

    order_ref: str
    amount: Decimal
    reason: str
    outcome: str
    requested_on: str


@dataclass(frozen=True)
class RefundView:
    request_ref: str
    order_ref: str
    platform: str
    kind: str
    reason: str
    requested_amount: Decimal
    paid_amount: Decimal
    platform_deadline: datetime
    node: str
    node_reason: str
    buyer_masked_phone: str = ""
    currency: str = "CNY"
    lines: tuple[RefundLine, ...] = ()
    evidence_links: tuple[str, ...] = ()
    buyer_history: tuple[PastRefund, ...] = ()
    # False where the platform refunds only what the buyer asked (its agree has no amount).
    partial_allowed: bool = True


@dataclass(frozen=True)
class Decision:
    """An answer at a node. `decided_by` is "person" or "rule"; a timeout is never one."""

    outcome: str
    approved_amount: Decimal
    approver: str
    note: str = ""
    decided_by: str = "person"
    refuse_reason_code: str = ""


@dataclass(frozen=True)
class TimedOut:
    """Nobody answered in time at `node`: the caller escalates; nothing is approved."""

    node: str
    waited_seconds: int
    problems_seen: tuple[str, ...] = field(default=())


def money(value: Any) -> Decimal:
    """Amounts as cents; floats from a form go through str so 0.1 stays 0.10."""
    return Decimal(str(value)).quantize(CENT)


def check_decision(view: RefundView, decision: Decision) -> list[str]:
    """Why this answer cannot be carried out, in words for the approver; empty when it can."""
    problems = []
    amount, requested = decision.approved_amount, view.requested_amount
    if decision.outcome not in OUTCOMES:
        problems.append(f"decision must be one of {', '.join(OUTCOMES)}, not {decision.outcome!r}")
    if not decision.approver.strip():
        problems.append("approver is empty: say who decides")
    if amount < 0:
        problems.append(f"approved amount {amount} is negative")
    if amount > requested:
        problems.append(f"approved amount {amount} is above the requested {requested}")
    elif amount > view.paid_amount:
        problems.append(f"approved amount {amount} is above the {view.paid_amount} the buyer paid")
    if decision.outcome == "approve" and amount != requested:
        problems.append(f"approve means the full {requested}; choose partial for {amount}")
    if decision.outcome == "partial" and not view.partial_allowed:
        problems.append(f"{view.platform} refunds only the {requested} asked: approve it in full, or refuse "
                        "with a note asking the buyer to change the request to the sum you agree to")
    elif decision.outcome == "partial" and not 0 < amount < requested:
        problems.append(f"partial needs an amount between 0 and {requested}, not {amount}")
    if decision.outcome == "refuse" and amount != 0:
        problems.append(f"refuse pays nothing: set the amount to 0, not {amount}")
    if decision.outcome in ("partial", "refuse") and not decision.note.strip():
        problems.append(f"{decision.outcome} needs a note with the reason the buyer will read")
    return problems


def decision_markdown(view: RefundView, now: datetime, problems: Iterable[str] = ()) -> str:
    """The description above the resume form: the problems of a refused answer first."""
    parts = []
    problems = list(problems)
    if problems:
        parts.append("> **The last answer was not accepted; the run is still waiting.**\n>\n"
                     + "\n".join(f"> - {problem}" for problem in problems))
    parts.append(_heading(view, now))
    parts.append(_lines_table(view))
    parts.append(_evidence(view))
    parts.append(_history(view))
    return "\n\n".join(parts) + "\n"


def _heading(view: RefundView, now: datetime) -> str:
    left = view.platform_deadline - now
    hours = left.total_seconds() / 3600
    due = (f"{hours:.1f} h left" if hours >= 0 else f"**overdue by {-hours:.1f} h**")
    return "\n".join([
        f"## Refund {view.request_ref} — {view.node}",
        "",
        f"**Why this node:** {view.node_reason}",
        "",
        f"| Order | {view.order_ref} ({view.platform}) |",
        "|---|---|",
        f"| Request | {view.kind} |",
        f"| Reason | {view.reason} |",
        f"| Requested | {view.requested_amount} {view.currency} of {view.paid_amount} paid |",
        f"| Buyer | {mask_phone(view.buyer_masked_phone) or 'unknown'} |",
        f"| Platform deadline | {view.platform_deadline:%Y-%m-%d %H:%M} UTC ({due}) |",
    ])


def _lines_table(view: RefundView) -> str:
    if not view.lines:
        return "_No order lines attached to this request._"
    rows = [f"| {line.sku} | {line.title} | {line.quantity} | {line.amount} |" for line in view.lines]
    return "\n".join(["### Items", "", "| SKU | Item | Qty | Amount |", "|---|---|---:|---:|", *rows])


def _evidence(view: RefundView) -> str:
    if not view.evidence_links:
        return "### Evidence\n\n_The buyer sent no evidence._"
    links = [f"- [evidence {number}]({link})" for number, link in enumerate(view.evidence_links, 1)]
    return "\n".join(["### Evidence", "", *links])


def _history(view: RefundView) -> str:
    if not view.buyer_history:
        return "### Buyer's refund history\n\n_No earlier refunds._"
    total = sum((past.amount for past in view.buyer_history), Decimal("0"))
    rows = [f"| {past.requested_on} | {past.order_ref} | {past.amount} | {past.reason} | {past.outcome} |"
            for past in view.buyer_history]
    return "\n".join([
        f"### Buyer's refund history ({len(view.buyer_history)} earlier, {total} {view.currency})",
        "", "| Date | Order | Amount | Reason | Outcome |", "|---|---|---:|---|---|", *rows,
    ])


def refund_view_from_dict(data: dict[str, Any]) -> RefundView:
    """Rebuild a view from the JSON a flow parameter carries (amounts as strings).

    Flow parameters are shown in the Prefect UI, so the phone must arrive masked already."""
    return RefundView(
        request_ref=data["request_ref"],
        order_ref=data["order_ref"],
        platform=data["platform"],
        kind=data.get("kind", "refund_only"),
        reason=data["reason"],
        requested_amount=money(data["requested_amount"]),
        paid_amount=money(data.get("paid_amount", data["requested_amount"])),
        platform_deadline=datetime.fromisoformat(data["platform_deadline"]),
        node=data.get("node", "supervisor review"),
        node_reason=data.get("node_reason", ""),
        # Masked here too, so a caller's slip cannot put a phone on the approver's screen.
        buyer_masked_phone=mask_phone(data.get("buyer_masked_phone", "")),
        currency=data.get("currency", "CNY"),
        lines=tuple(RefundLine(line["sku"], line["title"], int(line["quantity"]), money(line["amount"]))
                    for line in data.get("lines", ())),
        evidence_links=tuple(data.get("evidence_links", ())),
        partial_allowed=bool(data.get("partial_allowed", True)),
        buyer_history=tuple(PastRefund(past["order_ref"], money(past["amount"]), past["reason"],
                                       past["outcome"], past["requested_on"])
                            for past in data.get("buyer_history", ())),
    )
