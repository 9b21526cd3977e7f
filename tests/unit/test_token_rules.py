"""When tokens are refreshed, when on-call is warned, and which credentials are secret."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from oms.domain.tokens import (
    ShopTokens,
    expiry_of_last_resort,
    expiry_warning_stage,
    refresh_due_at,
    refresh_is_due,
    refresh_supported,
    split_credentials,
    tokens_from_credentials,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def issued(life: timedelta) -> ShopTokens:
    return ShopTokens("access", "refresh", NOW + life, NOW + timedelta(days=30), NOW)


def test_a_shopee_token_of_four_hours_is_refreshed_at_three_hours():
    tokens = tokens_from_credentials("shopee", {"access_token": "a", "refresh_token": "r"}, NOW)
    assert tokens.access_expires_at == NOW + timedelta(hours=4)
    assert not refresh_is_due(tokens, NOW + timedelta(hours=2, minutes=59))
    assert refresh_is_due(tokens, NOW + timedelta(hours=3))


def test_an_amazon_hour_token_is_refreshed_after_three_quarters_of_an_hour():
    tokens = tokens_from_credentials("amazon", {"access_token": "a", "refresh_token": "r"}, NOW)
    assert refresh_due_at(tokens) == NOW + timedelta(minutes=45)


def test_tokens_with_a_stated_expiry_are_refreshed_by_it_not_by_the_platform_default():
    expiry = (NOW + timedelta(days=2)).isoformat()
    tokens = tokens_from_credentials("pdd", {"access_token": "a", "refresh_token": "r",
                                             "access_expires_at": expiry}, NOW)
    assert refresh_due_at(tokens) == NOW + timedelta(hours=36)


def test_a_short_token_still_leaves_a_quarter_hour_for_a_second_attempt():
    tokens = issued(timedelta(minutes=40))
    assert refresh_due_at(tokens) == NOW + timedelta(minutes=25)


def test_a_token_of_unknown_life_is_never_due_and_waits_for_the_platform_to_say_expired():
    tokens = tokens_from_credentials("jd", {"access_token": "a", "refresh_token": "r"}, NOW)
    assert tokens.access_expires_at is None
    assert not refresh_is_due(tokens, NOW + timedelta(days=400))


@pytest.mark.parametrize(("left", "stage"), [
    (timedelta(days=8), None),
    (timedelta(days=7), None),
    (timedelta(days=6, hours=23), "7d"),
    (timedelta(days=2), "3d"),
    (timedelta(hours=20), "1d"),
    (timedelta(hours=2), "1d"),
    (timedelta(hours=1, minutes=59), "2h"),
    (timedelta(0), "expired"),
    (-timedelta(hours=5), "expired"),
])
def test_expiry_warnings_step_up_at_seven_three_one_days_and_under_two_hours(left, stage):
    assert expiry_warning_stage(NOW + left, NOW) == stage


def test_a_refreshable_shop_lapses_with_its_refresh_token_and_another_with_its_access_token():
    refreshable = issued(timedelta(hours=4))
    fixed = ShopTokens("access", "", NOW + timedelta(days=300), None, NOW)
    assert expiry_of_last_resort(refreshable) == refreshable.refresh_expires_at
    assert expiry_of_last_resort(fixed) == fixed.access_expires_at


def test_credentials_split_into_identifiers_app_secrets_and_tokens():
    identifiers, secrets, tokens = split_credentials({
        "partner_id": "2001", "shop_id": "60", "partner_key": "pk", "access_token": "a",
        "refresh_token": "r", "access_expires_at": "2026-12-01T12:00:00+00:00"})
    assert identifiers == {"partner_id": "2001", "shop_id": "60"}
    assert secrets == {"partner_key": "pk"}
    assert set(tokens) == {"access_token", "refresh_token", "access_expires_at"}


@pytest.mark.parametrize(("platform", "identifiers", "refresh_token", "supported"), [
    ("shopee", {}, "r", True),
    ("jd", {}, "", False),
    ("taobao", {"app_kind": "self_use"}, "r", False),
    ("taobao", {"app_kind": "service_market"}, "r", True),
    ("shopify", {}, "r", False),
])
def test_only_shops_a_refresh_can_renew_are_refreshed(platform, identifiers, refresh_token, supported):
    tokens = ShopTokens("access", refresh_token, NOW + timedelta(days=1), None, NOW)
    assert refresh_supported(platform, identifiers, tokens) is supported


def test_a_refresh_that_brings_no_refresh_token_keeps_the_old_one():
    tokens = issued(timedelta(hours=1))
    renewed = tokens.renewed("new-access", NOW + timedelta(hours=2), NOW + timedelta(hours=1))
    assert renewed.refresh_token == "refresh"
    assert renewed.refresh_expires_at == tokens.refresh_expires_at
    rotated = tokens.renewed("new-access", NOW + timedelta(hours=2), NOW, "new-refresh",
                             NOW + timedelta(days=30))
    assert rotated.refresh_token == "new-refresh"


def test_tokens_survive_their_json_form():
    tokens = issued(timedelta(hours=4))
    assert ShopTokens.from_json(tokens.to_json()) == tokens


def test_a_token_time_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="time zone"):
        tokens_from_credentials("shopee", {"access_token": "a", "access_expires_at": "2026-12-01T12:00:00"}, NOW)
