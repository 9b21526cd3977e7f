"""Platform-neutral after-sales requests the simulators serve, and how a seller's answer
changes them.

`seed_after_sales` opens refund-only, return-and-refund and exchange requests on some
paid or shipped orders of a shop, seeded and reproducible, with the dirt connectors
meet: a request served on two pages, a request without its amount, a reason no table
knows. Each platform's simulator renders them in its own wire format and calls `answer`
for its agree and refuse methods, so every platform refuses the same things (a second
answer, an answer after the deadline, more money than was asked) in its own words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.model import SandboxState, SimLine, SimOrder

# Neutral statuses, the same words as connectors.base.AFTER_SALES_STATUSES.
REQUESTED, AGREED, REFUSED, GOODS_RETURNED, REFUNDED, CLOSED = (
    "requested", "agreed", "refused", "goods_returned", "refunded", "closed")
REFUND_ONLY, RETURN_AND_REFUND, EXCHANGE = "refund_only", "return_and_refund", "exchange"
# Neutral reason codes; each platform renders them as its own text or number.
REASONS = ("quality", "not_as_described", "wrong_item", "damaged", "size", "no_longer_wanted",
           "not_received")
UNKNOWN_REASON = "unknown"  # rendered as a reason the platform tables do not hold
FIRST_REQUEST_ID = 70_000_001
# How long a seller has to answer before the platform decides for the buyer. Platforms
# differ (reference §11); the simulators only need one deadline to enforce.
DEFAULT_RESPONSE_WINDOW = timedelta(hours=48)
# Which of the generated requests carry which dirt: fixed strides, so any seed of five
# or more requests holds every kind.
DUPLICATE_EVERY, MISSING_AMOUNT_EVERY, UNKNOWN_REASON_EVERY = 4, 7, 5

# Answers the platforms refuse; each simulator turns them into its own error body.
ALREADY_ANSWERED, PAST_DEADLINE, AMOUNT_TOO_HIGH, WRONG_VERSION = (
    "already_answered", "past_deadline", "amount_too_high", "wrong_version")


@dataclass
class SimAfterSale:
    """One request of one shop on one line of one order, in neutral form."""

    request_id: int
    shop: str
    order: SimOrder
    line: SimLine
    quantity: int
    kind: str
    status: str
    amount: Decimal | None  # None: the platform's payload will lack it (dirt)
    reason: str
    description: str
    created_at: datetime
    updated_at: datetime
    respond_by: datetime
    evidence: list[str] = field(default_factory=list)
    version: int = 1
    defects: set[str] = field(default_factory=set)
    # Every answer the simulator accepted: {"agree": bool, "amount": Decimal, "note": str}.
    answers: list[dict] = field(default_factory=list)
    return_tracking: str | None = None

    @property
    def asked(self) -> Decimal:
        """The money the buyer asked for, also when the payload hides it."""
        return self.amount if self.amount is not None else self.line.unit_price * self.quantity


def requests_of(state: SandboxState) -> dict[str, list[SimAfterSale]]:
    """The state's requests by shop; SandboxState has no field for them, so they ride on
    the instance (created on first use)."""
    store = getattr(state, "after_sales", None)
    if store is None:
        store = {}
        state.after_sales = store
    return store


def find(state: SandboxState, shop: str, request_id: int) -> SimAfterSale | None:
    for request in requests_of(state).get(shop, ()):
        if request.request_id == request_id:
            return request
    return None


def seed_after_sales(
    state: SandboxState, shop: str, *, seed: int, now: datetime, share: float = 0.4,
    span_hours: float = 24.0, response_window: timedelta = DEFAULT_RESPONSE_WINDOW,
    kinds: tuple[str, ...] = (REFUND_ONLY, RETURN_AND_REFUND, EXCHANGE),
) -> list[SimAfterSale]:
    """Open requests on about `share` of the shop's paid, shipped and delivered orders,
    created within `span_hours` before `now`. Unpaid and cancelled orders get none; a
    paid order not yet shipped gets only refund-only (nothing to send back)."""
    rng = random.Random(seed)
    with state.lock:
        # A repeated order is listed twice in the shop; one request per order.
        unique = {id(o): o for o in state.shop_orders(shop)}.values()
        # A line of no units (dirt some generators serve) has nothing to refund.
        orders = [o for o in unique if o.status in ("paid", "shipped", "delivered")
                  and any(line.quantity > 0 for line in o.lines)]
        store = requests_of(state)
        next_id = max((r.request_id for rs in store.values() for r in rs),
                      default=FIRST_REQUEST_ID - 1) + 1
        made: list[SimAfterSale] = []
        for order in orders:
            if rng.random() >= share:
                continue
            made.append(_request(rng, shop, order, next_id + len(made), now, span_hours,
                                 response_window, kinds))
        for position, request in enumerate(made, start=1):
            _dirty(request, position)
        store.setdefault(shop, []).extend(made)
    return made


def _request(rng: random.Random, shop: str, order: SimOrder, request_id: int, now: datetime,
             span_hours: float, response_window: timedelta, kinds: tuple[str, ...]) -> SimAfterSale:
    line = rng.choice([line for line in order.lines if line.quantity > 0])
    quantity = rng.randint(1, line.quantity)
    possible = [k for k in kinds if order.status != "paid" or k == REFUND_ONLY] or [REFUND_ONLY]
    kind = rng.choice(possible)
    # A partial refund now and then: buyers settle for part of the price.
    share = Decimal(1) if rng.random() < 0.8 else Decimal(rng.randint(30, 90)) / 100
    amount = (line.unit_price * quantity * share).quantize(Decimal("0.01"))
    created = now - timedelta(seconds=rng.randint(60, int(span_hours * 3600)))
    created = max(created, order.updated_at).replace(microsecond=0)
    reason = rng.choice(REASONS)
    evidence = [f"https://img.sandbox.example/evidence/{request_id}-{n}.jpg"
                for n in range(rng.randint(0, 3))]
    return SimAfterSale(
        request_id=request_id, shop=shop, order=order, line=line, quantity=quantity,
        kind=kind, status=REQUESTED, amount=amount, reason=reason,
        description=f"buyer note {request_id}", created_at=created, updated_at=created,
        respond_by=created + response_window, evidence=evidence,
    )


def _dirty(request: SimAfterSale, position: int) -> None:
    if position % DUPLICATE_EVERY == 0:
        request.defects.add("duplicate_on_pages")
    if position % MISSING_AMOUNT_EVERY == 0:
        request.defects.add("missing_amount")
        request.amount = None
    if position % UNKNOWN_REASON_EVERY == 0:
        request.defects.add("unknown_reason")
        request.reason = UNKNOWN_REASON


def updated_between(state: SandboxState, shop: str, start: datetime, end: datetime,
                    include_end: bool = True) -> list[SimAfterSale]:
    """The shop's requests updated in [start, end] (or [start, end)), oldest first, with a
    `duplicate_on_pages` request listed a second time right after the next one, as a
    platform serves a request that changed while the seller paged. Callers hold the lock."""
    inside = [r for r in requests_of(state).get(shop, ())
              if start <= r.updated_at and (r.updated_at <= end if include_end else r.updated_at < end)]
    inside.sort(key=lambda r: (r.updated_at, r.request_id))
    return with_repeats(inside)


def with_repeats(ordered: list[SimAfterSale]) -> list[SimAfterSale]:
    """The list with each `duplicate_on_pages` request listed once more right after the
    next one."""
    listed: list[SimAfterSale] = []
    pending: list[SimAfterSale] = []
    for request in ordered:
        listed.append(request)
        listed.extend(pending)
        pending = [request] if "duplicate_on_pages" in request.defects else []
    return listed + pending


def answer(request: SimAfterSale, *, agree: bool, amount: Decimal | None, note: str,
           now: datetime, version: int | None = None, deadline: bool = True) -> str | None:
    """Apply a seller's answer, or name why the platform refuses it (None: accepted).

    `deadline=False` is for platforms that set the seller no answer deadline (Shopify)."""
    if request.status != REQUESTED:
        return ALREADY_ANSWERED
    if deadline and now > request.respond_by:
        return PAST_DEADLINE
    if version is not None and version != request.version:
        return WRONG_VERSION
    if agree and amount is not None and amount > request.asked:
        return AMOUNT_TOO_HIGH
    request.status = AGREED if agree else REFUSED
    request.answers.append({"agree": agree, "amount": amount if agree else None, "note": note})
    request.updated_at = max(now.replace(microsecond=0), request.updated_at)
    request.version += 1
    return None
