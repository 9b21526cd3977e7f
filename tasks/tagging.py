"""Tagging task: tag paid orders for picking priority and hold the suspicious ones.

`tag-and-hold` takes one batch of paid orders that have no tags yet, reads the context
the rules need in a few queries, evaluates every order (`oms.domain.tagging`) and writes
tags and holds in one transaction. It is idempotent: a tagged order is not taken again,
and a hold is unique per order and rule while open.

`tag_waiting_orders` is the step fulfil-orders runs before allocation: it walks every
untagged order batch by batch, then tells each shop's operators once per run about the
holds it opened (RISK_HOLDS_WAITING) and publishes them as a table artifact. Neither
carries personal data: hold details mask phones and never quote addresses.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from prefect import task
from prefect.artifacts import create_table_artifact

from oms.db.tagging import NewHold, gather_context, orders_to_tag, platform_order_ids, save_verdicts
from oms.domain.tagging import evaluate
from oms.tagging_rules import load_tagging_rules
from tasks.alerts import RISK_HOLDS_WAITING, announce
from tasks.policy import BATCH_TASK
from tasks.resources import engine

ORDERS_NAMED_IN_AN_ALERT = 10


@dataclass
class TaggingSummary:
    considered: int = 0
    last_id: int = 0  # keyset cursor for the next batch
    tags: Counter = field(default_factory=Counter)  # tag -> orders, priority tags included
    new_holds: list[NewHold] = field(default_factory=list)


@task(name="tag-and-hold", **BATCH_TASK)
def tag_and_hold(batch_size: int, after_id: int = 0) -> TaggingSummary:
    """Tag and, where a rule says so, hold up to `batch_size` untagged paid orders."""
    rules = load_tagging_rules()  # before the transaction: a broken file stops the run
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        batch = orders_to_tag(conn, batch_size, after_id)
        contexts = gather_context(conn, batch, rules, now)
        verdicts = [evaluate(order.facts, contexts[order.facts.order_id], rules, now) for order in batch]
        held = [verdict.order_id for verdict in verdicts if verdict.holds]
        new_holds = save_verdicts(conn, verdicts, batch, platform_order_ids(conn, held), now)
    return TaggingSummary(
        considered=len(batch),
        last_id=max((order.facts.order_id for order in batch), default=after_id),
        tags=Counter(tag for verdict in verdicts for tag in verdict.stored_tags),
        new_holds=new_holds,
    )


@dataclass
class TaggingRun:
    tagged: int = 0
    held: int = 0  # orders given at least one new hold
    new_holds: list[NewHold] = field(default_factory=list)


def tag_waiting_orders(batch_size: int) -> TaggingRun:
    """Tag every untagged paid order, then announce and publish the holds opened."""
    run = TaggingRun()
    cursor = 0
    while True:
        batch = tag_and_hold(batch_size, after_id=cursor)
        run.tagged += batch.considered
        run.new_holds.extend(batch.new_holds)
        if batch.considered < batch_size:
            break
        cursor = batch.last_id
    run.held = len({hold.order_id for hold in run.new_holds})
    if run.new_holds:
        _announce_by_shop(run.new_holds)
        _publish(run.new_holds)
    return run


def _announce_by_shop(holds: list[NewHold]) -> None:
    by_shop: dict[tuple[str, str], list[NewHold]] = defaultdict(list)
    for hold in holds:
        by_shop[(hold.shop_code, hold.platform)].append(hold)
    for (shop, platform), found in sorted(by_shop.items()):
        held_orders = sorted({hold.platform_order_id for hold in found})
        rules = Counter(hold.rule for hold in found)
        by_rule = ", ".join(f"{rule} {n}" for rule, n in sorted(rules.items()))
        shown = ", ".join(held_orders[:ORDERS_NAMED_IN_AN_ALERT])
        more = len(held_orders) - ORDERS_NAMED_IN_AN_ALERT
        announce(
            RISK_HOLDS_WAITING, shop_code=shop, platform=platform,
            headline=f"{len(held_orders)} orders of {shop} wait for a risk review before they ship",
            message=(f"Shop {shop} ({platform}): orders {shown}{f' and {more} more' if more > 0 else ''} "
                     f"were held before allocation by {by_rule}. See why with `oms holds list --shop {shop}`; "
                     "once checked, `oms holds release ORDER_ID --reason \"...\"` and the next "
                     "fulfil-orders run allocates them."),
            held_orders=len(held_orders), by_rule=by_rule,
        )


def _publish(holds: list[NewHold]) -> None:
    create_table_artifact(
        key="risk-holds",
        table=[{"order id": hold.order_id, "shop": hold.shop_code, "platform order": hold.platform_order_id,
                "rule": hold.rule, "detail": hold.detail} for hold in holds],
        description="Orders held for review by this run (not allocated until released: `oms holds list`)",
    )
