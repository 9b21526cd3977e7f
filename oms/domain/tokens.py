"""Shop tokens and the rules about them: which credential fields are secret, when a token
is due for refresh, and how loudly to warn about one that cannot be refreshed.

Each platform's lifetimes come from the reference (§1–§8): Shopee's access token lives
4 h and is refreshed at about 3 h, Amazon's LWA token 1 h, Lazada, Douyin and Pinduoduo
by the `expires_in` they answer with. A token is refreshed once three quarters of its
life has passed, with a floor that leaves room for a failed attempt and a retry on the
next schedule. Tokens that no refresh can renew (Taobao self-use apps, some JD app
kinds, Shopify offline tokens) get warnings as their expiry nears: 7, 3 and 1 days, then
under 2 hours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

# Credential fields that are tokens: they move between the platform and the token store.
TOKEN_FIELDS = ("access_token", "refresh_token", "access_expires_at", "refresh_expires_at")
# Credential fields that are the app's own secrets: sealed at rest, never shown.
APP_SECRET_FIELDS = ("app_secret", "partner_key", "client_secret", "checkword", "password")

# Refresh when this share of a token's life has passed (Shopee: 3 h of 4 h).
REFRESH_AT_SHARE_OF_LIFE = 0.75
# ... but never later than this before expiry, so one failed run still leaves time.
REFRESH_MARGIN_FLOOR = timedelta(minutes=15)

# A token's life when the platform's answer did not say, by platform [H] unless noted;
# None: unknown, read `expires_in` (PDD, Taobao and JD vary by app kind).
DEFAULT_ACCESS_LIFETIME: dict[str, timedelta | None] = {
    "shopee": timedelta(hours=4),
    "amazon": timedelta(hours=1),
    "lazada": timedelta(days=30),
    "douyin": timedelta(days=7),
    "shopify": None,
    "pdd": None,
    "taobao": None,
    "jd": None,
}

# Warnings for tokens that must be re-authorised, most severe last.
EXPIRY_WARNING_STAGES: tuple[tuple[str, timedelta], ...] = (
    ("7d", timedelta(days=7)),
    ("3d", timedelta(days=3)),
    ("1d", timedelta(days=1)),
    ("2h", timedelta(hours=2)),
    ("expired", timedelta(0)),
)
STAGE_RANK = {name: rank for rank, (name, _) in enumerate(EXPIRY_WARNING_STAGES)}


@dataclass(frozen=True)
class ShopTokens:
    """What the token store holds for one shop; the two tokens are secret, the times not."""

    access_token: str = ""
    refresh_token: str = ""
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    issued_at: datetime | None = None

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token)

    def secret_values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.access_token, self.refresh_token) if v)

    def as_credentials(self) -> dict[str, str]:
        """The fields connectors read from a shop's credentials."""
        fields = {"access_token": self.access_token, "refresh_token": self.refresh_token}
        if self.access_expires_at is not None:
            fields["access_expires_at"] = self.access_expires_at.isoformat()
        return fields

    def renewed(self, access_token: str, access_expires_at: datetime, now: datetime,
                refresh_token: str | None = None,
                refresh_expires_at: datetime | None = None) -> "ShopTokens":
        """These tokens after a refresh; a platform that keeps the refresh token (LWA)
        answers without one, and the old one stays."""
        return replace(
            self, access_token=access_token, access_expires_at=access_expires_at, issued_at=now,
            refresh_token=refresh_token or self.refresh_token,
            refresh_expires_at=refresh_expires_at if refresh_token else self.refresh_expires_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "access_expires_at": _iso(self.access_expires_at),
                "refresh_expires_at": _iso(self.refresh_expires_at),
                "issued_at": _iso(self.issued_at)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ShopTokens":
        return cls(str(data.get("access_token") or ""), str(data.get("refresh_token") or ""),
                   _parse(data.get("access_expires_at")), _parse(data.get("refresh_expires_at")),
                   _parse(data.get("issued_at")))


def split_credentials(credentials: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(identifiers, app secrets, token fields) of a shop's credentials as a platform or
    the sandbox handed them out; identifiers may be stored and shown, the rest not."""
    identifiers, secrets, tokens = {}, {}, {}
    for name, value in credentials.items():
        if name in TOKEN_FIELDS:
            tokens[name] = value
        elif name in APP_SECRET_FIELDS:
            secrets[name] = value
        else:
            identifiers[name] = value
    return identifiers, secrets, tokens


def tokens_from_credentials(platform: str, fields: dict[str, Any], now: datetime) -> ShopTokens:
    """The tokens of a fresh authorisation; a missing expiry is the platform's default
    life from now, when the platform has one."""
    access_expires = _parse(fields.get("access_expires_at"))
    lifetime = DEFAULT_ACCESS_LIFETIME.get(platform)
    if access_expires is None and lifetime is not None and fields.get("access_token"):
        access_expires = now + lifetime
    return ShopTokens(str(fields.get("access_token") or ""), str(fields.get("refresh_token") or ""),
                      access_expires, _parse(fields.get("refresh_expires_at")), now)


# Platforms whose tokens no refresh renews whatever the shop holds: Shopify's offline
# tokens (a refused one means the app was removed), and files with no tokens at all.
NEVER_REFRESHED = ("shopify", "spreadsheet")
TAOBAO_REFRESHING_APP_KIND = "service_market"  # only 服务市场 apps may refresh [H]


def refresh_supported(platform: str, identifiers: dict[str, Any], tokens: ShopTokens) -> bool:
    """Whether a refresh can renew this shop's token, or only a person re-authorising it."""
    if platform in NEVER_REFRESHED or not tokens.can_refresh:
        return False
    if platform == "taobao":
        return identifiers.get("app_kind", TAOBAO_REFRESHING_APP_KIND) == TAOBAO_REFRESHING_APP_KIND
    return True


def refresh_due_at(tokens: ShopTokens) -> datetime | None:
    """When the access token should be refreshed; None if its expiry is unknown."""
    expires = tokens.access_expires_at
    if expires is None:
        return None
    issued = tokens.issued_at or expires
    by_share = issued + (expires - issued) * REFRESH_AT_SHARE_OF_LIFE
    return min(by_share, expires - REFRESH_MARGIN_FLOOR)


def refresh_is_due(tokens: ShopTokens, now: datetime) -> bool:
    due = refresh_due_at(tokens)
    return due is not None and now >= due


def expiry_of_last_resort(tokens: ShopTokens) -> datetime | None:
    """When the shop stops working unless a person re-authorises it: the access token's
    expiry if it cannot be refreshed, else the refresh token's."""
    return tokens.refresh_expires_at if tokens.can_refresh else tokens.access_expires_at


def expiry_warning_stage(expires_at: datetime | None, now: datetime) -> str | None:
    """The most severe warning stage reached ("7d" ... "2h", "expired"), or None."""
    if expires_at is None:
        return None
    left = expires_at - now
    if left <= timedelta(0):
        return "expired"
    reached = None
    for name, threshold in EXPIRY_WARNING_STAGES[:-1]:
        if left < threshold:
            reached = name
    return reached


def describe_span(span: timedelta) -> str:
    """A short human span: '3 d 4 h', '1 h 05 min', '40 s'."""
    seconds = int(abs(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"token time {value!r} has no time zone")
    return parsed
