"""Which orders may share a parcel: the merge key ignores typing noise, never masks."""

from __future__ import annotations

from oms.domain.identity import merge_key

BASE = dict(shop_code="shop-a", buyer_ref="buyer-1", receiver_name="张三", receiver_phone="+8613800138000",
            province="上海市", city="上海市", district="浦东新区", address="张江路 18 号", masked=False)


def key(**changes):
    return merge_key(**(BASE | changes))


def test_the_same_address_typed_with_full_width_digits_and_spaces_gets_the_same_key():
    assert key(address="张江路１８号 ") == key() is not None


def test_another_street_number_another_buyer_or_another_shop_gets_another_key():
    assert len({key(), key(address="张江路 19 号"), key(buyer_ref="buyer-2"), key(shop_code="shop-b")}) == 4


def test_a_masked_receiver_never_merges():
    assert key(masked=True) is None


def test_without_a_buyer_id_the_receiver_name_and_phone_identify_the_buyer():
    assert key(buyer_ref=None) == key(buyer_ref=None, receiver_name="张 三")
    assert key(buyer_ref=None) != key(buyer_ref=None, receiver_phone="+8613900139000")
