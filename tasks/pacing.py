"""Coarse concurrency per platform across every worker: Prefect global concurrency limits.

Each platform counts calls per app, not per worker, so two deployments fetching Shopee
shops at once share one budget. A task that talks to a platform holds one slot of the
platform's limit (`platform_slot`) for as long as it talks; the connectors' token buckets
smooth the calls inside it. The limits are created by `oms limits setup` (and by the demo
and the test harness); a limit that is missing stops the task with a clear error instead
of letting it run unthrottled. Taking a slot costs about 60 ms here, once per task run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from oms.config import PLATFORMS, get_settings

LIMIT_PREFIX = "oms-platform-"
# A task killed while holding a slot gives it back after this long, not never.
SLOT_LEASE_SECONDS = 900


class MissingPlatformLimit(RuntimeError):
    pass


def limit_name(platform: str) -> str:
    return LIMIT_PREFIX + platform


@contextmanager
def platform_slot(platform: str) -> Iterator[None]:
    """Hold one slot of the platform's limit; waits while all slots are taken."""
    name = limit_name(platform)
    try:
        with concurrency(name, occupy=1, strict=True, lease_duration=SLOT_LEASE_SECONDS):
            yield
    except ConcurrencySlotAcquisitionError as error:
        # Prefect raises the same class for a timeout; only the message tells them apart.
        if "must be created" not in str(error):
            raise
        raise MissingPlatformLimit(
            f"Prefect has no global concurrency limit {name!r}; run `oms limits setup` "
            "against this Prefect server before running flows"
        ) from error


def ensure_platform_limits() -> dict[str, int]:
    """Create or update one limit per platform from the settings; safe to run again."""
    settings = get_settings()
    wanted = {platform: settings.concurrency_for(platform) for platform in PLATFORMS}
    with get_client(sync_client=True) as client:
        for platform, slots in wanted.items():
            name = limit_name(platform)
            try:
                current = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
                continue
            if current.limit != slots or not current.active:
                client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(limit=slots, active=True))
    return wanted
