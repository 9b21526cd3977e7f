"""Alert events: what the pipeline tells on-call, as Prefect events an automation routes.

Every alert is an event named for its trouble (`oms.token.refresh-failed`,
`oms.connector.unhealthy`, ...) with the shop as its resource and a payload that carries
a ready `headline` and `message` (platform, shop, the error, and what the person on
call should do), so one notification template serves every kind. Events are emitted
only when an incident opens, escalates or closes (see `oms.db.incidents`): the
automation forwards each one, and the dedupe lives here, not in the notification.

Nothing secret goes in: callers pass error texts through `redact` with the shop's
secrets first.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

TOKEN_REFRESH_FAILED = "oms.token.refresh-failed"
TOKEN_REFRESH_RECOVERED = "oms.token.refresh-recovered"
TOKEN_EXPIRY_WARNING = "oms.token.expiry-warning"
TOKEN_EXPIRY_RESOLVED = "oms.token.expiry-resolved"
CONNECTOR_UNHEALTHY = "oms.connector.unhealthy"
CONNECTOR_STALLED = "oms.connector.stalled"
CONNECTOR_RECOVERED = "oms.connector.recovered"
STOCK_LOW = "oms.stock.low"  # a SKU fell under its reorder point: replenish
STOCK_REPLENISHED = "oms.stock.replenished"
STOCK_SYNC_FAILED = "oms.stock-sync.failed"  # a platform was not told what is left
STOCK_SYNC_RECOVERED = "oms.stock-sync.recovered"
STOCK_DRIFT_REPAIRED = "oms.stock.drift-repaired"  # the audit found totals off their rows
SLA_WARNING = "oms.sla.warning"  # an order's ship-by deadline is near, tracking not accepted
SLA_BREACH = "oms.sla.breach"  # past the deadline: the platform may fine the shop
WRITE_BACK_FAILED = "oms.write-back.failed"  # a tracking number will not reach the platform by itself
INTERCEPTION_NEEDED = "oms.shipment.interception-needed"  # cancelled after handover: stop the parcel
STATUS_DRIFT_FOUND = "oms.status.drift"  # our status and the platform's disagree and we cannot repair it
AFTER_SALES_ESCALATED = "oms.after-sales.escalated"  # nobody answered at a refund node in time
AFTER_SALES_FAILED = "oms.after-sales.failed"  # a platform refused our refund answer
QUALITY_FAILED = "oms.quality.failed"  # a batch failed a suite's batch-level check
RECONCILIATION_DIFFERENCES = "oms.reconciliation.differences"  # the platform and we disagree about a day
RISK_HOLDS_WAITING = "oms.risk.holds-waiting"  # suspicious orders wait for a person

# Events that open trouble, and events that announce its end; the alert automations of
# `oms alerts setup` match these two lists.
TROUBLE_EVENTS = (TOKEN_REFRESH_FAILED, TOKEN_EXPIRY_WARNING, CONNECTOR_UNHEALTHY,
                  CONNECTOR_STALLED, QUALITY_FAILED, STOCK_LOW, STOCK_SYNC_FAILED,
                  STOCK_DRIFT_REPAIRED, SLA_WARNING, SLA_BREACH, WRITE_BACK_FAILED, INTERCEPTION_NEEDED,
                  STATUS_DRIFT_FOUND, AFTER_SALES_ESCALATED, AFTER_SALES_FAILED,
                  RECONCILIATION_DIFFERENCES, RISK_HOLDS_WAITING)
RESOLVED_EVENTS = (TOKEN_REFRESH_RECOVERED, TOKEN_EXPIRY_RESOLVED, CONNECTOR_RECOVERED,
                   STOCK_REPLENISHED, STOCK_SYNC_RECOVERED)

# Put in the message of an error whose trouble on-call has already been told about (a
# refresh refused: the incident's alert went out). A run failing of it is still Failed
# in the UI, but the failed-run automation skips state messages carrying this marker,
# so a shop that stays broken pages once, not once per scheduled run.
ALREADY_ALERTED_MARKER = "on-call already alerted"


def shop_resource(shop_code: str, platform: str) -> dict[str, str]:
    return {"prefect.resource.id": f"oms.shop.{shop_code}", "prefect.resource.name": shop_code,
            "oms.platform": platform, "oms.shop": shop_code}


def announce(event: str, *, shop_code: str, platform: str, headline: str, message: str,
             **facts: Any) -> None:
    """Emit one alert event; `facts` are plain values (strings, numbers) for templates."""
    payload = {"headline": headline, "message": message, "platform": platform,
               "shop": shop_code, **facts}
    emit_event(event=event, resource=shop_resource(shop_code, platform), payload=payload)


def announce_stock(event: str, *, subject: str, headline: str, message: str, **facts: Any) -> None:
    """Emit an alert about stock rather than a shop: the SKU (or the audit) is the resource."""
    payload = {"headline": headline, "message": message, "subject": subject, **facts}
    emit_event(event=event, resource={"prefect.resource.id": f"oms.stock.{subject}",
                                      "prefect.resource.name": subject}, payload=payload)


def redact(text: str, secrets: list[str] | tuple[str, ...] | set[str]) -> str:
    """The text with every secret value (4 characters or more) replaced by ***."""
    for secret in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 4),
                         key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
