"""Where a simulated shop sells: country, currency and how its buyers' addresses look.

Mainland shops (the default) get the dirty Chinese receivers of `sandbox.generator`;
cross-border platforms (Shopee, Lazada, Amazon) serve shops in other countries, whose
orders carry that country's currency, phone numbers, regions and postcodes. Names and
addresses come from Faker and belong to nobody.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import phonenumbers
from faker import Faker


@dataclass(frozen=True)
class Market:
    country: str  # ISO 3166 alpha-2
    currency: str  # ISO 4217
    faker_locale: str


CHINA = Market("CN", "CNY", "zh_CN")
SINGAPORE = Market("SG", "SGD", "en_GB")
THAILAND = Market("TH", "THB", "th_TH")
PHILIPPINES = Market("PH", "PHP", "en_PH")
VIETNAM = Market("VN", "VND", "vi_VN")
INDONESIA = Market("ID", "IDR", "id_ID")
TAIWAN = Market("TW", "TWD", "zh_TW")
BRAZIL = Market("BR", "BRL", "pt_BR")
UNITED_STATES = Market("US", "USD", "en_US")
UNITED_KINGDOM = Market("GB", "GBP", "en_GB")
GERMANY = Market("DE", "EUR", "de_DE")
JAPAN = Market("JP", "JPY", "ja_JP")

MARKETS = {m.country: m for m in (CHINA, SINGAPORE, THAILAND, PHILIPPINES, VIETNAM, INDONESIA,
                                  TAIWAN, BRAZIL, UNITED_STATES, UNITED_KINGDOM, GERMANY, JAPAN)}


def foreign_receiver(market: Market, fake: Faker, rng: random.Random) -> dict:
    """Receiver fields of one buyer in `market` (never China: see the generator)."""
    region = _region(fake)
    return {
        "buyer_id": f"buyer-{rng.randrange(10**8):08d}",
        "receiver_name": fake.name(),
        "phone": mobile_number(market.country, rng),
        "province": region,
        "city": fake.city(),
        "district": None,
        "address": fake.street_address(),
        "postal_code": fake.postcode(),
        "country_code": market.country,
    }


def _region(fake: Faker) -> str | None:
    for provider in ("state", "province", "administrative_unit", "prefecture"):
        if hasattr(fake, provider):
            return getattr(fake, provider)()
    return None  # city states such as Singapore have none


def mobile_number(country: str, rng: random.Random) -> str:
    """A valid mobile number of `country` in international form, varied by `rng`."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    digits = str(example.national_number)
    for _ in range(20):
        tail = "".join(rng.choices("0123456789", k=4))
        candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-4]}{tail}")
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
