"""The clean step for receivers at home and abroad."""

from __future__ import annotations

from dataclasses import replace

from oms.domain.cleaning import clean_order
from oms.domain.order import Receiver
from tests.factories import make_order


def cleaned_with(receiver: Receiver, currency: str = "CNY"):
    return clean_order(make_order(receiver=receiver, currency=currency))


def test_a_chinese_receiver_gets_the_standard_province_and_an_e164_phone():
    result = cleaned_with(Receiver(name="测试", phone="138 0013 8000", province="粤", city="广州市",
                                   address="测试路 1 号"))
    assert result.order.receiver.province == "广东省"
    assert result.order.receiver.phone == "+8613800138000"
    assert result.facts["province_state"] == "recognized"


def test_a_phone_abroad_is_read_in_the_receivers_country_and_its_region_is_kept_as_given():
    receiver = Receiver(name="Test Buyer", phone="8123 4567", province=None, city="Singapore",
                        address="1 Test Road #01-01", postal_code="018989", country_code="sg")
    result = cleaned_with(receiver, currency="SGD")
    assert result.order.receiver.phone == "+6581234567"
    assert result.order.receiver.country_code == "SG"
    assert result.facts["phone_state"] == "valid"
    assert result.facts["province_state"] == "abroad"
    assert result.facts["currency"] == "SGD"


def test_a_us_state_is_not_mistaken_for_an_unknown_chinese_province():
    receiver = Receiver(name="Test Buyer", phone="(201) 555-0123", province="New Jersey",
                        city="Hoboken", address="1 Test St", country_code="US")
    result = cleaned_with(receiver, currency="USD")
    assert result.order.receiver.province == "New Jersey"
    assert result.facts["province_state"] == "abroad"
    assert result.facts["phone_state"] == "valid"


def test_an_address_the_platform_withholds_is_withheld_not_missing():
    withheld = Receiver(city="Seattle", province="WA", postal_code="98101", country_code="US", masked=True)
    facts = cleaned_with(withheld, "USD").facts
    assert (facts["address_state"], facts["phone_state"]) == ("withheld", "masked")
    missing = cleaned_with(replace(withheld, masked=False), "USD").facts
    assert (missing["address_state"], missing["phone_state"]) == ("missing", "missing")


def test_a_masked_receiver_whose_phone_is_simply_absent_is_missing_not_masked():
    # PDD sends masks and ciphertexts of what the buyer typed; no ciphertext, no phone.
    receiver = Receiver(name="王*", phone=None, province="上海市", city="上海市", address="***",
                        masked=True, encrypted={"name": "~enc~", "address": "~enc~"})
    assert cleaned_with(receiver).facts["phone_state"] == "missing"


def test_a_masked_address_without_its_ciphertext_is_missing_and_taobaos_oaid_stands_for_it():
    douyin = Receiver(name="王*", phone="138****8000", province="上海市", city="上海市",
                      address="浦东***", masked=True, encrypted={"name": "#a#b##", "phone": "$c$$"})
    assert cleaned_with(douyin).facts["address_state"] == "missing"
    taobao = replace(douyin, encrypted={"oaid": "oaid-1"})
    assert cleaned_with(taobao).facts["address_state"] == "encrypted"
