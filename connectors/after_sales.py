"""What every marketplace's after-sales reading and answering shares.

Platforms serve a request that changed while the seller paged on two pages; a window
must hand each request over once. Buyers are kept as a hash of the platform's id, never a
nickname. A refusal without a reason and an agreement for more than was asked are
refused here, before anything is sent: the platforms refuse them too, but only after the
call has cost a request of the shop's budget and, on some, a mark against the shop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from decimal import Decimal

from connectors.base import AfterSalesDecision, AfterSalesRequest, RawAfterSales
from oms.domain.errors import Rejected

BUYER_REF_LENGTH = 16  # hex digits of sha256: enough to tell repeat refunders apart


def buyer_ref(platform: str, platform_buyer_id: object) -> str:
    """A stable, one-way reference to a buyer; "" when the platform names none."""
    text = str(platform_buyer_id or "").strip()
    if not text:
        return ""
    return hashlib.sha256(f"{platform}|{text}".encode()).hexdigest()[:BUYER_REF_LENGTH]


def once_per_window(pages: Iterable[list[RawAfterSales]]) -> Iterator[list[RawAfterSales]]:
    """The pages with every request id seen earlier in the window left out.

    A payload without a readable id is always kept: it goes to the review queue.
    """
    seen: set[str] = set()
    for page in pages:
        kept = []
        for raw in page:
            if raw.platform_request_id is None or raw.platform_request_id not in seen:
                kept.append(raw)
                if raw.platform_request_id is not None:
                    seen.add(raw.platform_request_id)
        if kept:
            yield kept


def checked_amount(request: AfterSalesRequest, decision: AfterSalesDecision) -> Decimal:
    """The amount to agree to (the asked amount when the decision names none)."""
    amount = request.amount if decision.amount is None else decision.amount
    if amount < 0 or amount > request.amount:
        raise Rejected(
            f"{request.platform} after-sales {request.platform_request_id}: cannot agree to "
            f"{amount} when the buyer asked for {request.amount}",
            platform=request.platform, code="amount_out_of_range")
    return amount


def full_amount_only(request: AfterSalesRequest, decision: AfterSalesDecision) -> Decimal:
    """The asked amount, for a platform that cannot refund less; a lower sum is `Rejected`
    before the call, so the buyer is never paid more than was approved."""
    amount = checked_amount(request, decision)
    if amount != request.amount:
        raise Rejected(
            f"{request.platform} after-sales {request.platform_request_id}: {request.platform} refunds "
            f"the {request.amount} asked; agree on {amount} with the buyer first (they change the request)",
            platform=request.platform, code="partial_not_supported")
    return amount


def refusal_reason(request: AfterSalesRequest, decision: AfterSalesDecision,
                   needs_code: bool = False) -> str:
    """The note of a refusal; a refusal without one (or without the platform's reason code,
    where the platform requires it) is `Rejected` before any call."""
    if not decision.note.strip() or (needs_code and not decision.refuse_reason_code):
        wanted = "a note and a refuse reason code" if needs_code else "a note for the buyer"
        raise Rejected(
            f"{request.platform} after-sales {request.platform_request_id}: a refusal needs "
            f"{wanted}", platform=request.platform, code="refuse_reason_required")
    return decision.note.strip()
