"""Keeping every shop's token alive: refresh ahead of expiry, refresh on the spot when a
call finds the token expired, warn before a token that cannot be refreshed lapses, and
tell on-call once per incident.

A refresh of one shop runs under its lease in `shop_tokens` (one worker of any process
at a time) and in this order: recover a journaled answer left by a crash, refresh, write
the answer to the journal, store it, clear the journal. Only then is the new access
token used. A single-use refresh token the platform has spent is therefore always on
disk or in the store, never only in a dead process's memory.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from sqlalchemy import Connection, select

from connectors.base import ShopAccess
from oms.config import get_settings
from oms.db.incidents import open_incidents, report_recovery, report_trouble
from oms.db.schema import shop_tokens
from oms.db.shops import get_shop, save_shop, shop_credentials
from oms.db.tokens import (
    record_refresh_error,
    release_refresh_lease,
    take_over_refresh_lease,
    take_refresh_lease,
)
from oms.domain.errors import ConnectorError, TokenExpired, TokenRefreshFailed, Unavailable
from oms.domain.tokens import (
    STAGE_RANK,
    ShopTokens,
    describe_span,
    expiry_of_last_resort,
    expiry_warning_stage,
    refresh_is_due,
    refresh_supported,
    split_credentials,
    tokens_from_credentials,
)
from tasks.alerts import (
    ALREADY_ALERTED_MARKER,
    TOKEN_EXPIRY_RESOLVED,
    TOKEN_EXPIRY_WARNING,
    TOKEN_REFRESH_FAILED,
    TOKEN_REFRESH_RECOVERED,
    announce,
    redact,
)
from tasks.resources import connector_for, engine, http_client, shop_access
from tasks.token_store import RefreshJournal, load_tokens, save_tokens

T = TypeVar("T")

REFRESH_INCIDENT = "token-refresh"
EXPIRY_INCIDENT = "token-expiry"
# A retryable refresh failure (the platform's token service down) pages only when the
# token is this close to lapsing; earlier, the next scheduled refresh will try again.
URGENT_BEFORE_EXPIRY = timedelta(minutes=30)
LEASE_POLL_SECONDS = 0.1


@dataclass
class RefreshOutcome:
    shop_code: str
    platform: str
    action: str  # refreshed | not-due | renewed-elsewhere | cannot-refresh | no-tokens | failed
    access_expires_at: datetime | None = None
    recovered_from_journal: bool = False
    detail: str = ""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# ---- shops and their tokens -----------------------------------------------------------

def register_shop(conn: Connection, *, code: str, platform: str, name: str, base_url: str,
                  credentials: dict, now: datetime | None = None) -> None:
    """Save a shop from the credentials a platform's authorisation handed out: its
    identifiers and sealed app secrets in `shops`, its tokens in the token store.

    Credentials without token fields (a changed app secret, say) keep the stored tokens.
    """
    now = now or now_utc()
    identifiers, secrets, token_fields = split_credentials(credentials)
    save_shop(conn, code=code, platform=platform, name=name, base_url=base_url,
              credentials={**identifiers, **secrets}, now=now)
    if token_fields:
        save_tokens(conn, code, tokens_from_credentials(platform, token_fields, now), now)


def set_tokens(shop_code: str, token_fields: dict, now: datetime | None = None) -> ShopTokens:
    """Store tokens a person obtained by re-authorising the shop, and close its token
    incidents (announcing "resolved" to on-call)."""
    now = now or now_utc()
    with engine().begin() as conn:
        shop = get_shop(conn, shop_code)
        tokens = tokens_from_credentials(shop["platform"], token_fields, now)
        save_tokens(conn, shop_code, tokens, now, refreshed=True)
    _announce_recovery(shop_code, shop["platform"], tokens, now)
    return tokens


def shop_secret_values(shop_code: str) -> tuple[str, ...]:
    """Every secret value of the shop (tokens, app secrets), for `redact`."""
    try:
        access = shop_access(shop_code)
    except Exception:  # nothing readable, nothing to hide
        return ()
    return tuple(str(v) for v in access.credentials.values() if v)


def call_with_token_retry(shop_code: str, use: Callable[[ShopAccess], T]) -> T:
    """Run `use` with the shop's access; if the platform says the token expired, refresh
    on the spot and run it once more. A refresh that fails raises TokenRefreshFailed."""
    access = shop_access(shop_code)
    try:
        return use(access)
    except TokenExpired as expired:
        renew_after_expiry(shop_code, access.credentials.get("access_token", ""), expired)
    return use(shop_access(shop_code))


def renew_after_expiry(shop_code: str, failed_token: str, cause: TokenExpired) -> RefreshOutcome:
    outcome = refresh_shop(shop_code, force=True, stale_access_token=failed_token)
    if outcome.action in ("refreshed", "renewed-elsewhere"):
        return outcome
    if outcome.action == "failed":
        raise _refresh_failure_error(shop_code, outcome)
    # The platform refused a token no refresh can renew: that is the expiry incident.
    with engine().begin() as conn:
        platform = get_shop(conn, shop_code)["platform"]
        tokens = load_tokens(conn, shop_code) or ShopTokens()
    _warn_expiry(shop_code, platform, tokens, now_utc(), refused=True)
    raise TokenRefreshFailed(
        f"({ALREADY_ALERTED_MARKER}) {cause}; this token cannot be refreshed",
        platform=platform, code="reauthorisation_required", next_step=_reauthorise_step(shop_code, platform))


# ---- refresh --------------------------------------------------------------------------

def refresh_shop(shop_code: str, *, force: bool = False, stale_access_token: str | None = None,
                 now: datetime | None = None) -> RefreshOutcome:
    """Refresh the shop's token if due (or `force`d); never two refreshes at once.

    `stale_access_token` is the token a call just found expired: if another worker has
    replaced it meanwhile, there is nothing left to do.
    """
    with _refresh_lease(shop_code):
        return _refresh_holding_lease(shop_code, force, stale_access_token, now or now_utc())


def _refresh_holding_lease(shop_code: str, force: bool, stale_access_token: str | None,
                           now: datetime) -> RefreshOutcome:
    journal = RefreshJournal()
    with engine().begin() as conn:
        shop = get_shop(conn, shop_code)
        tokens = load_tokens(conn, shop_code)
        recovered = journal.pending(shop_code)
        if recovered is not None:  # a crash between the answer and the store
            save_tokens(conn, shop_code, recovered, now, refreshed=True)
            tokens = recovered
    if recovered is not None:
        journal.clear(shop_code)
    platform = shop["platform"]
    outcome = RefreshOutcome(shop_code, platform, "not-due", recovered_from_journal=recovered is not None)
    if tokens is None or not tokens.access_token:
        outcome.action = "no-tokens"
        return outcome
    outcome.access_expires_at = tokens.access_expires_at
    credentials = shop_credentials(shop)
    if stale_access_token is not None and tokens.access_token != stale_access_token:
        outcome.action = "renewed-elsewhere"
        return outcome
    if not refresh_supported(platform, credentials, tokens):
        outcome.action = "cannot-refresh"
        return outcome
    if not force and not refresh_is_due(tokens, now):
        if recovered is not None:
            outcome.action = "refreshed"  # the journaled answer was this refresh
        return outcome
    access = ShopAccess(shop_code, platform, shop["base_url"], {**credentials, **tokens.as_credentials()})
    secrets = (*tokens.secret_values(), *(str(v) for v in credentials.values()))
    try:
        with http_client() as http:
            grant = connector_for(access, http).refresh_access(tokens.refresh_token)
    except ConnectorError as error:
        return _refresh_failed(outcome, tokens, redact(str(error), secrets), error, now,
                               refused_by_platform=stale_access_token is not None)
    renewed = tokens.renewed(grant.access_token, grant.access_expires_at, now,
                             grant.refresh_token, grant.refresh_expires_at)
    journal.write(shop_code, renewed)
    with engine().begin() as conn:
        save_tokens(conn, shop_code, renewed, now, refreshed=True)
    journal.clear(shop_code)
    outcome.action, outcome.access_expires_at = "refreshed", renewed.access_expires_at
    _announce_recovery(shop_code, platform, renewed, now)
    return outcome


@contextmanager
def _refresh_lease(shop_code: str) -> Iterator[None]:
    settings = get_settings()
    lasting = timedelta(seconds=settings.token_refresh_lease_seconds)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + settings.token_refresh_lease_seconds + 1
    while not _take_lease(shop_code, holder, lasting):
        if time.monotonic() > deadline:
            raise Unavailable(f"shop {shop_code}: another worker has held the token refresh "
                              f"for over {lasting.total_seconds():.0f} s", code="refresh_busy")
        time.sleep(LEASE_POLL_SECONDS)
    try:
        yield
    finally:
        with engine().begin() as conn:
            release_refresh_lease(conn, shop_code, holder)


def _take_lease(shop_code: str, holder: str, lasting: timedelta) -> bool:
    with engine().begin() as conn:
        if take_refresh_lease(conn, shop_code, holder, now_utc(), lasting):
            return True
        row = conn.execute(select(shop_tokens.c.lease_holder)
                           .where(shop_tokens.c.shop_code == shop_code)).first()
        if row is None:
            return True  # a shop without tokens has nothing to refresh and nothing to lock
        if row.lease_holder and _holder_died(row.lease_holder):
            # A worker of this host that died mid-refresh: take over rather than wait out
            # its lease (its journal, on this disk, is recovered first thing).
            return take_over_refresh_lease(conn, shop_code, row.lease_holder, holder, now_utc(), lasting)
    return False


def _holder_died(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# ---- telling on-call ------------------------------------------------------------------

def _refresh_failed(outcome: RefreshOutcome, tokens: ShopTokens, error_text: str,
                    error: ConnectorError, now: datetime, *,
                    refused_by_platform: bool = False) -> RefreshOutcome:
    """Record a failed refresh; open (and announce) the incident when it is urgent: the
    refusal is permanent, or the token has lapsed or soon will.

    `refused_by_platform`: the refresh was made because the platform called the access
    token expired, whatever its stored expiry says.
    """
    shop_code, platform = outcome.shop_code, outcome.platform
    permanent = not error.retryable
    expires = tokens.access_expires_at
    lapsed = refused_by_platform or (expires is not None and expires <= now)
    urgent = permanent or lapsed or expires is None or expires - now < URGENT_BEFORE_EXPIRY
    next_step = _reauthorise_step(shop_code, platform) if permanent else _wait_step(platform)
    outcome.action, outcome.detail = "failed", error_text
    with engine().begin() as conn:
        record_refresh_error(conn, shop_code, error_text, now)
        trouble = report_trouble(conn, REFRESH_INCIDENT, shop_code, now, platform=platform,
                                 detail={"error": error_text, "next_step": next_step}) if urgent else None
    if trouble is not None and trouble.notify:
        lapse = (f"is refused by {platform} as expired" if refused_by_platform else
                 "has expired" if lapsed else
                 f"expires in {describe_span(expires - now)}" if expires is not None else
                 "has an unknown expiry")
        announce(
            TOKEN_REFRESH_FAILED, shop_code=shop_code, platform=platform,
            headline=f"[OMS] Token refresh failed: {platform} shop {shop_code}",
            message=(f"The {platform} shop {shop_code} could not renew its access token: "
                     f"{error_text}. Its access token {lapse}; until it is renewed, orders "
                     f"of this shop are not synced and tracking is not written back. "
                     f"Next step: {next_step}"),
            error=error_text, next_step=next_step, incident=trouble.incident.id,
        )
    return outcome


def _refresh_failure_error(shop_code: str, outcome: RefreshOutcome) -> TokenRefreshFailed:
    with engine().connect() as conn:
        alerted = any(i.subject == shop_code for i in open_incidents(conn, REFRESH_INCIDENT))
    # The marker leads: state messages are cut short on the way to the server.
    marker = f"({ALREADY_ALERTED_MARKER}) " if alerted else ""
    return TokenRefreshFailed(
        f"{marker}shop {shop_code}: token refresh failed: {outcome.detail}",
        platform=outcome.platform, code="refresh_failed",
        next_step=_reauthorise_step(shop_code, outcome.platform))


def _announce_recovery(shop_code: str, platform: str, tokens: ShopTokens, now: datetime) -> None:
    with engine().begin() as conn:
        closed = report_recovery(conn, REFRESH_INCIDENT, shop_code, now)
        expiry_closed = report_recovery(conn, EXPIRY_INCIDENT, shop_code, now)
    until = tokens.access_expires_at.isoformat(timespec="minutes") if tokens.access_expires_at else "an unknown time"
    if closed is not None:
        announce(
            TOKEN_REFRESH_RECOVERED, shop_code=shop_code, platform=platform,
            headline=f"[OMS] Token refresh works again: {platform} shop {shop_code}",
            message=(f"The {platform} shop {shop_code} renewed its access token at "
                     f"{now.isoformat(timespec='minutes')}; it is valid until {until}. Refresh "
                     f"had failed since {closed.opened_at.isoformat(timespec='minutes')} "
                     f"({closed.occurrences} failed attempt(s)). Nothing more to do."),
            incident=closed.id,
        )
    if expiry_closed is not None:
        announce(
            TOKEN_EXPIRY_RESOLVED, shop_code=shop_code, platform=platform,
            headline=f"[OMS] Re-authorised: {platform} shop {shop_code} has a new token",
            message=f"The {platform} shop {shop_code} has a new token, valid until {until}.",
            incident=expiry_closed.id,
        )


def warn_if_expiring(shop_code: str, now: datetime | None = None) -> str | None:
    """For a shop whose token only a person can renew: warn on-call at 7, 3 and 1 days
    and under 2 hours before it lapses (once per stage); returns the stage reached."""
    now = now or now_utc()
    with engine().connect() as conn:
        shop = get_shop(conn, shop_code)
        tokens = load_tokens(conn, shop_code)
    if tokens is None or not tokens.access_token:
        return None
    return _warn_expiry(shop_code, shop["platform"], tokens, now)


def _warn_expiry(shop_code: str, platform: str, tokens: ShopTokens, now: datetime,
                 refused: bool = False) -> str | None:
    lapses = expiry_of_last_resort(tokens)
    stage = "expired" if refused else expiry_warning_stage(lapses, now)
    if stage is None:
        return None
    with engine().begin() as conn:
        trouble = report_trouble(conn, EXPIRY_INCIDENT, shop_code, now, platform=platform,
                                 stage=stage, stage_rank=STAGE_RANK,
                                 detail={"expires_at": lapses.isoformat() if lapses else None})
    if trouble.notify:
        step = _reauthorise_step(shop_code, platform)
        when = ("has expired" if stage == "expired" or lapses is None or lapses <= now
                else f"expires in {describe_span(lapses - now)} ({lapses.isoformat(timespec='minutes')})")
        announce(
            TOKEN_EXPIRY_WARNING, shop_code=shop_code, platform=platform,
            headline=f"[OMS] Token {when.split(' (')[0]}: {platform} shop {shop_code} must be re-authorised",
            message=(f"The {platform} shop {shop_code} holds a token that cannot be refreshed, "
                     f"and it {when}. When it lapses, order sync and tracking write-back stop "
                     f"for this shop. Next step: {step}"),
            stage=stage, expires_at=lapses.isoformat() if lapses else "", next_step=step,
            incident=trouble.incident.id,
        )
    return stage


def _reauthorise_step(shop_code: str, platform: str) -> str:
    return (f"re-authorise the shop: the seller signs in to the {platform} seller centre and "
            f"grants our app access again; load the new tokens with `oms tokens set {shop_code}` "
            f"and confirm with `oms tokens refresh {shop_code}`.")


def _wait_step(platform: str) -> str:
    return (f"the {platform} token service is failing; if the next refresh-tokens run does not "
            f"recover it, check {platform}'s open-platform status and our network path to it.")
