"""`oms alerts setup` and `oms alerts test`: the channels of `config/alerts.yaml` as
notification blocks on the Prefect server, and the three automations that route to them.

- `oms-alerts` forwards every trouble event of `tasks.alerts` (`TROUBLE_EVENTS`), its
  headline as the subject and its message as the body;
- `oms-resolved` forwards the events that announce the end of trouble, "RESOLVED: " first;
- `oms-failed-runs` tells on-call about every failed or crashed run of our flows, with
  the state message and a link to the run in the Prefect UI, except runs that failed of
  trouble on-call was already told about (their state message carries
  `tasks.alerts.ALREADY_ALERTED_MARKER`): a shop that stays broken pages once, not once
  per scheduled run.

Running it again changes nothing: block documents are overwritten by name and each
automation is found by name and replaced, so there is always exactly one of each.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.exceptions import ObjectNotFound
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.settings import PREFECT_UI_URL
from prefect.utilities.asyncutils import run_coro_as_sync

from tasks.alert_channels import BLOCK_CLASSES, KINDS, Channel
from tasks.alerts import ALREADY_ALERTED_MARKER, RESOLVED_EVENTS, TROUBLE_EVENTS, redact

ALERTS_AUTOMATION = "oms-alerts"
RESOLVED_AUTOMATION = "oms-resolved"
FAILED_RUNS_AUTOMATION = "oms-failed-runs"

# Every `@flow(name=...)` of flows/; a test keeps the two lists equal, so a new flow is
# watched from its first failure on.
WATCHED_FLOWS = (
    "ingest-orders",
    "ingest-all-shops",
    "fulfil-orders",
    "write-back-tracking",
    "refresh-tokens",
    "check-connector-health",
    "sync-stock",
    "audit-stock",
    "receive-stock",
    "confirm-pickups",
    "sla-watch",
    "check-status-drift",
    "reconcile-orders",
    "data-quality-summary",
    "purge-personal-data",
    "ingest-after-sales",
    "process-after-sales",
    "approve-refund",
)

# The alert events carry ready texts (see tasks/alerts.py), so one template serves all.
ALERT_SUBJECT = "{{ event.payload.headline }}"
ALERT_BODY = "{{ event.payload.message }}"
RESOLVED_SUBJECT = "RESOLVED: {{ event.payload.headline }}"
# `flow` and `flow_run` are looked up by the server from the event's resources; the state
# is the one the event announced, not whatever the run moved on to since.
FAILED_RUN_SUBJECT = "{{ flow_run.state.name }}: {{ flow.name }} run {{ flow_run.name }}"
FAILED_RUN_BODY = (
    "Flow {{ flow.name }}, run {{ flow_run.name }}, ended {{ flow_run.state.name }}.\n"
    "{{ flow_run.state.message }}\n"
)

TEST_SUBJECT = "OMS test alert"


@dataclass(frozen=True)
class ChannelStatus:
    name: str
    kind: str
    status: str  # configured | kept | skipped | ok | error
    detail: str = ""


@dataclass(frozen=True)
class AutomationStatus:
    name: str
    outcome: str  # created | updated
    actions: int
    id: UUID


@dataclass(frozen=True)
class AlertingReport:
    channels: list[ChannelStatus]
    automations: list[AutomationStatus]

    @property
    def ok(self) -> bool:
        return bool(self.automations) and not any(c.status == "error" for c in self.channels)


def ensure_alerting(channels: Sequence[Channel]) -> AlertingReport:
    """Save the configured channels as blocks and point the three automations at them.

    With no channel saved the automations are left as they are: an automation without
    actions would look like alerting while telling no one.
    """
    register_block_types()
    statuses: list[ChannelStatus] = []
    block_ids: list[UUID] = []
    for channel in channels:
        status, block_id = _save_channel(channel)
        statuses.append(status)
        if block_id is not None:
            block_ids.append(block_id)
    if not block_ids:
        return AlertingReport(statuses, [])
    ui_url = PREFECT_UI_URL.value()
    with get_client(sync_client=True) as client:
        automations = [_put_automation(client, automation)
                       for automation in alert_automations(block_ids, ui_url)]
    return AlertingReport(statuses, automations)


def register_block_types() -> None:
    """Our block types must be known to the server before documents of them are saved."""
    for block_class in BLOCK_CLASSES:
        block_class.register_type_and_schema()


def alert_automations(block_ids: Sequence[UUID], ui_url: str | None = None) -> list[AutomationCore]:
    """The three automations, each sending to every given notification block; `ui_url` is
    the Prefect UI that links to failed runs fall back on."""
    return [
        _automation(ALERTS_AUTOMATION, "Trouble events of the pipeline, to on-call",
                    EventTrigger(expect=set(TROUBLE_EVENTS), for_each={"prefect.resource.id"},
                                 posture=Posture.Reactive, threshold=1, within=0),
                    block_ids, ALERT_SUBJECT, ALERT_BODY),
        _automation(RESOLVED_AUTOMATION, "The end of trouble, to on-call",
                    EventTrigger(expect=set(RESOLVED_EVENTS), for_each={"prefect.resource.id"},
                                 posture=Posture.Reactive, threshold=1, within=0),
                    block_ids, RESOLVED_SUBJECT, ALERT_BODY),
        _automation(FAILED_RUNS_AUTOMATION, "Failed or crashed runs of the pipeline's flows",
                    EventTrigger(expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                                 match={"prefect.resource.id": "prefect.flow-run.*",
                                        "prefect.state-message": _without(ALREADY_ALERTED_MARKER)},
                                 match_related={"prefect.resource.role": "flow",
                                                "prefect.resource.name": list(WATCHED_FLOWS)},
                                 for_each={"prefect.resource.id"},
                                 posture=Posture.Reactive, threshold=1, within=0),
                    block_ids, FAILED_RUN_SUBJECT, FAILED_RUN_BODY + run_link(ui_url)),
    ]


def _without(text: str) -> str:
    """A label pattern matching every value that does not contain `text` (the server
    matches labels as globs, "!" negating)."""
    literal = "".join(f"[{c}]" if c in "*?[" else c for c in text)
    return f"!*{literal}*"


def run_link(ui_url: str | None) -> str:
    """The template of the absolute link to the failed run.

    The server's `ui_url` filter builds it from the server's own PREFECT_UI_URL (or
    PREFECT_API_URL), which a plain `prefect server start` has neither of: it renders
    "None". So the UI that this set-up talked to is written in as the fallback.
    """
    if not ui_url:
        return "{{ flow_run|ui_url }}"
    runs = json.dumps(f"{ui_url.rstrip('/')}/runs/flow-run/")  # a Jinja string literal
    return f"{{{{ flow_run|ui_url or {runs} ~ flow_run.id }}}}"


def send_test_alert(channels: Sequence[Channel]) -> list[ChannelStatus]:
    """Send one message through every configured channel, straight from here (not via
    the server): `ok`, or `error` with what the channel answered."""
    sent_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    async def send_all() -> list[ChannelStatus]:
        return list(await asyncio.gather(*(_test_one(channel, sent_at) for channel in channels)))

    return run_coro_as_sync(send_all())


async def _test_one(channel: Channel, sent_at: str) -> ChannelStatus:
    if not channel.configured:
        return _skipped(channel)
    body = (f"Channel {channel.name} ({channel.kind}) reaches on-call. Sent by `oms alerts test` "
            f"from {socket.gethostname()} at {sent_at}; nothing is wrong.")
    try:
        await channel.block.notify(body=body, subject=TEST_SUBJECT)
    except Exception as error:  # reported per channel; the others are still tried
        return ChannelStatus(channel.name, channel.kind, "error", _scrubbed(error, channel))
    return ChannelStatus(channel.name, channel.kind, "ok")


def _save_channel(channel: Channel) -> tuple[ChannelStatus, UUID | None]:
    if not channel.configured:
        return _kept_or_skipped(channel)
    try:
        block_id = channel.block.save(channel.name, overwrite=True)
    except Exception as error:  # one bad channel must not keep the others from on-call
        return ChannelStatus(channel.name, channel.kind, "error", _scrubbed(error, channel)), None
    return ChannelStatus(channel.name, channel.kind, "configured"), block_id


def _kept_or_skipped(channel: Channel) -> tuple[ChannelStatus, UUID | None]:
    """A channel whose variables are unset here keeps the block the server already has:
    running the set-up from a machine without the WeCom URL must not take WeCom away
    from on-call."""
    slug = KINDS[channel.kind].block_class.get_block_type_slug()
    try:
        with get_client(sync_client=True) as client:
            saved = client.read_block_document_by_name(channel.name, slug, include_secrets=False)
    except ObjectNotFound:
        return _skipped(channel), None
    return ChannelStatus(channel.name, channel.kind, "kept",
                         f"{', '.join(channel.missing_env)} unset here; the saved block stays"), saved.id


def _skipped(channel: Channel) -> ChannelStatus:
    return ChannelStatus(channel.name, channel.kind, "skipped", f"set {', '.join(channel.missing_env)}")


def _scrubbed(error: Exception, channel: Channel) -> str:
    return redact(f"{type(error).__name__}: {error}", channel.secret_values())


def _automation(name: str, description: str, trigger: EventTrigger, block_ids: Sequence[UUID],
                subject: str, body: str) -> AutomationCore:
    # `enabled` is given, not defaulted: an update sends only the fields that were set,
    # and an automation someone paused must come back on.
    return AutomationCore(
        name=name, description=description, enabled=True, trigger=trigger,
        actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)
                 for block_id in block_ids],
    )


def _put_automation(client, automation: AutomationCore) -> AutomationStatus:
    existing = client.read_automations_by_name(automation.name)
    if not existing:
        created = client.create_automation(automation)
        return AutomationStatus(automation.name, "created", len(automation.actions), created)
    kept, *duplicates = existing
    client.update_automation(kept.id, automation)
    # Two set-ups racing, or one made by hand in the UI: one of each is the rule.
    for duplicate in duplicates:
        client.delete_automation(duplicate.id)
    return AutomationStatus(automation.name, "updated", len(automation.actions), kept.id)
