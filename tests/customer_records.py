"""A labelled, seeded set of receiver records for measuring customer resolution.

Every record carries the id of the synthetic person it belongs to (`person`), so a
resolver's clusters can be scored pair by pair. Nobody in it is real: names are drawn
from short lists of common given names and surnames, e-mails use the reserved
example.* domains, and phones come from ranges set aside for fiction where the country
has one (US 555-01xx, the UK's Ofcom drama ranges, Australia's ACMA 5550/7010 ranges).
Chinese, Singaporean and Malaysian numbers are random digits of the right shape, tied
to no one.

The noise follows what the platforms and buyers really send:

- one person orders several times, on several platforms, under one stable buyer id per
  platform that the platform gives some of the time (and Taobao masks some of the time);
- phones in national and international forms, with spaces, dashes, "+86", "0086",
  "(0)"; masked ("138****8000", "******67") or PDD ciphertext ("$...$");
- names masked ("张*", "J*** S****"), with typos (Latin names more than Chinese ones),
  surname first; addresses with province and city repeated or left out, 省/市 dropped,
  full-width digits, Street/St, Apartment/Apt/#, small typos;
- missing values in every column.

And the hard cases, each a decision the labels make:

- people who share a masked phone: their numbers differ only in the hidden middle;
- people with the most common names (张伟, 王芳, John Smith) living in different places;
- neighbours in one building (same street number, another flat): different people;
- households: another person at the very same address (often the same surname), with
  a phone and e-mail of their own. They are different customers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pandas as pd
import phonenumbers

CHINESE_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
CHINESE_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯鹏飞晨欣怡婷雪琳子轩梓涵一诺佳"
# Characters a buyer's input method offers for the same sound, for rare name typos.
CHINESE_NEAR = {"伟": "玮", "芳": "方", "娜": "纳", "静": "晶", "丽": "莉", "强": "蔷", "磊": "垒", "军": "君",
                "杰": "洁", "明": "铭", "华": "桦", "红": "虹", "文": "雯", "辉": "晖", "宇": "雨", "浩": "皓"}
COMMON_CHINESE_NAMES = ("张伟", "王伟", "王芳", "李娜", "刘洋", "张敏")
LATIN_FIRST = ("James John Robert Michael William David Richard Joseph Thomas Charles Mary Patricia Jennifer "
               "Linda Elizabeth Barbara Susan Jessica Sarah Karen Emma Olivia Ava Isabella Sophia Mia Amelia "
               "Harper Evelyn Liam Noah Oliver Elijah Lucas Mason Logan Ethan Aiden Jacob Chloe Grace Lily Zoe "
               "Hannah Nora Wei Mei Siti Nur Ahmad Raj Priya Arjun Tan Lim").split()
LATIN_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Wilson "
              "Anderson Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker "
              "Young Allen King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter "
              "Phillips Evans Turner Parker Collins Edwards Stewart Morris Murphy Cook Rogers Tan Lim Ng Wong "
              "Chen Kumar Singh Abdullah Rahman").split()
COMMON_LATIN_NAMES = ("John Smith", "Mary Smith", "David Lee", "Michael Brown")

CHINESE_PLACES = (
    ("上海市", "上海市", ("浦东新区", "徐汇区", "静安区", "闵行区"), "200"),
    ("北京市", "北京市", ("朝阳区", "海淀区", "东城区", "丰台区"), "100"),
    ("广东省", "深圳市", ("南山区", "福田区", "宝安区"), "518"),
    ("广东省", "广州市", ("天河区", "越秀区", "海珠区"), "510"),
    ("浙江省", "杭州市", ("西湖区", "余杭区", "滨江区"), "310"),
    ("江苏省", "南京市", ("鼓楼区", "玄武区", "江宁区"), "210"),
    ("四川省", "成都市", ("武侯区", "锦江区", "高新区"), "610"),
    ("湖北省", "武汉市", ("洪山区", "江汉区", "武昌区"), "430"),
)
CHINESE_STREETS = ("人民路", "建设路", "中山路", "解放路", "张江路", "科技园路", "文化路", "长江路", "和平路",
                   "新华路", "青年路", "胜利路", "光明路", "朝阳路", "东风路", "学府路")
CHINESE_COMPOUNDS = ("阳光花园", "翠苑小区", "金地花园", "万科城", "华府", "碧桂园", "绿城小区", "幸福里", "")
# Ideographs a hurried buyer gets wrong in a street name.
CHINESE_STREET_TYPOS = {"路": "璐", "建": "健", "中": "忠", "新": "心", "和": "合", "光": "广", "园": "圆"}

LATIN_STREETS = ("Baker", "Oak", "Maple", "Elm", "High", "Church", "Station", "Victoria", "George", "King",
                 "Queen", "Park", "Mill", "Cedar", "Pine", "Orchard", "Bukit Timah", "Ampang", "Orchard")
LATIN_SUFFIXES = (("Street", "St"), ("Road", "Rd"), ("Avenue", "Ave"), ("Lane", "Ln"), ("Drive", "Dr"))
LATIN_UNIT_WORDS = ("Apt {}", "Apt. {}", "#{}", "Unit {}", "Apartment {}")

# country: cities with a region, a postcode maker, platforms (weights)
ABROAD = {
    "US": (("San Francisco", "CA"), ("Seattle", "WA"), ("Austin", "TX"), ("Boston", "MA"), ("Denver", "CO")),
    "GB": (("London", "England"), ("Leeds", "England"), ("Manchester", "England"), ("Glasgow", "Scotland")),
    "AU": (("Sydney", "NSW"), ("Melbourne", "VIC"), ("Brisbane", "QLD"), ("Perth", "WA")),
    "SG": (("Singapore", ""),),
    "MY": (("Kuala Lumpur", "Wilayah Persekutuan"), ("Petaling Jaya", "Selangor"), ("Penang", "Pulau Pinang")),
}
COUNTRY_WEIGHTS = (("CN", 62), ("US", 9), ("GB", 5), ("AU", 8), ("SG", 8), ("MY", 8))
PLATFORMS = {
    "CN": (("taobao", 30), ("pdd", 25), ("jd", 20), ("douyin", 15), ("shopify", 5), ("amazon", 5)),
    "US": (("amazon", 50), ("shopify", 45), ("spreadsheet", 5)),
    "GB": (("amazon", 50), ("shopify", 45), ("spreadsheet", 5)),
    "AU": (("amazon", 45), ("shopify", 45), ("spreadsheet", 10)),
    "SG": (("shopee", 45), ("lazada", 35), ("amazon", 10), ("shopify", 10)),
    "MY": (("shopee", 50), ("lazada", 40), ("shopify", 10)),
}
RECORDS_PER_PERSON = ((1, 30), (2, 25), (3, 18), (4, 12), (5, 8), (6, 4), (8, 2), (12, 1))
# How often a platform gives the buyer id, masks the phone, masks the name, masks the address.
PLATFORM_HABITS = {
    "taobao": (0.7, 0.4, 0.3, 0.0), "pdd": (0.5, 0.5, 0.2, 0.15), "jd": (0.6, 0.3, 0.1, 0.0),
    "douyin": (0.6, 0.4, 0.3, 0.05), "shopee": (0.8, 0.3, 0.2, 0.0), "lazada": (0.7, 0.1, 0.05, 0.0),
    "amazon": (0.8, 0.0, 0.0, 0.0), "shopify": (0.85, 0.0, 0.0, 0.0), "spreadsheet": (0.0, 0.0, 0.0, 0.0),
}
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example")
FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass
class Address:
    country: str
    street: str
    number: int
    building: int  # Chinese: building (栋); abroad: unused
    flat: int  # Chinese: room (室); abroad: apartment (0 = none)
    city: str
    region: str
    district: str
    postcode: str
    compound: str = ""  # Chinese: the residential compound's name
    suffix: int = 0  # abroad: which of LATIN_SUFFIXES


@dataclass
class Person:
    ident: int
    country: str
    name: str
    phone: tuple[str, str] | None  # (country code, national significant number)
    email: str | None
    homes: list[Address]
    buyer_ids: dict[str, str] = field(default_factory=dict)


def labelled_customer_records(people: int, seed: int = 8) -> pd.DataFrame:
    """About 2.7 records per person, shuffled; the column `person` is the truth."""
    maker = _PersonMaker(random.Random(seed))
    persons = maker.people(people)
    rng = random.Random(seed + 1)
    rows = []
    for person in persons:
        for _ in range(_weighted(rng, RECORDS_PER_PERSON)):
            rows.append(_record(rng, person))
    rng.shuffle(rows)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# people
# ---------------------------------------------------------------------------


class _PersonMaker:
    """Draws people, then turns some into the hard cases described in the module docstring."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_numbers: set[tuple[str, str]] = set()
        self.pools = {country: _fictional_numbers(country) for country in ("US", "GB", "AU")}
        for pool in self.pools.values():
            rng.shuffle(pool)

    def people(self, count: int) -> list[Person]:
        persons: list[Person] = []
        for ident in range(count):
            roll = self.rng.random()
            if persons and roll < 0.08:
                persons.append(self.household_member(ident, self.rng.choice(persons)))
            elif persons and roll < 0.14:
                persons.append(self.neighbour(ident, self.rng.choice(persons)))
            elif persons and roll < 0.19:
                persons.append(self.mask_twin(ident, self.rng.choice(persons)))
            else:
                persons.append(self.stranger(ident))
        return persons

    def stranger(self, ident: int, country: str | None = None) -> Person:
        rng = self.rng
        country = country or _weighted(rng, COUNTRY_WEIGHTS)
        name = self.name(country)
        homes = [self.address(country)]
        if rng.random() < 0.2:
            homes.append(self.address(country))  # an office, or a parent's flat
        return Person(ident, country, name, self.phone(country), self.email(), homes)

    def household_member(self, ident: int, other: Person) -> Person:
        person = self.stranger(ident, other.country)
        if other.country == "CN" and self.rng.random() < 0.7:
            person.name = other.name[0] + person.name[1:]
        elif other.country != "CN" and self.rng.random() < 0.7:
            person.name = person.name.split()[0] + " " + other.name.split()[-1]
        person.homes = [other.homes[0]] + person.homes[1:]
        return person

    def neighbour(self, ident: int, other: Person) -> Person:
        person = self.stranger(ident, other.country)
        home = other.homes[0]
        flat = home.flat + self.rng.randint(1, 9) * (100 if home.country == "CN" else 1)
        person.homes[0] = Address(**{**home.__dict__, "flat": flat})
        if self.rng.random() < 0.3:
            person.name = other.name  # the building has two 张伟
        return person

    def mask_twin(self, ident: int, other: Person) -> Person:
        """A stranger whose phone shows the same digits as `other`'s once masked."""
        person = self.stranger(ident, "CN")
        if other.phone and other.phone[0] == "86":
            number = other.phone[1]
            while True:
                twin = ("86", number[:3] + f"{self.rng.randrange(10_000):04d}" + number[7:])
                if twin not in self.used_numbers:
                    break
            self.used_numbers.add(twin)
            person.phone = twin
        return person

    def name(self, country: str) -> str:
        rng = self.rng
        if country == "CN":
            if rng.random() < 0.04:
                return rng.choice(COMMON_CHINESE_NAMES)
            given = "".join(rng.choice(CHINESE_GIVEN) for _ in range(rng.choice((1, 2, 2))))
            return rng.choice(CHINESE_SURNAMES[:12] if rng.random() < 0.6 else CHINESE_SURNAMES) + given
        if rng.random() < 0.04:
            return rng.choice(COMMON_LATIN_NAMES)
        return f"{rng.choice(LATIN_FIRST)} {rng.choice(LATIN_LAST)}"

    def phone(self, country: str) -> tuple[str, str] | None:
        rng = self.rng
        if country in self.pools:
            pool = self.pools[country]
            return pool.pop() if pool else None  # fiction ran out: this person gives no phone
        while True:
            if country == "CN":
                number = ("86", rng.choice(("13", "15", "18", "17", "19")) + f"{rng.randrange(10**9):09d}")
            elif country == "SG":
                number = ("65", rng.choice("89") + f"{rng.randrange(10**7):07d}")
            else:
                number = ("60", "1" + rng.choice("2346789") + f"{rng.randrange(10**7):07d}")
            if number not in self.used_numbers:
                self.used_numbers.add(number)
                return number

    def email(self) -> str | None:
        rng = self.rng
        if rng.random() < 0.3:
            return None
        syllables = ("wei", "li", "ming", "xiao", "jun", "an", "sky", "blue", "cat", "star", "moon", "rain")
        handle = "".join(rng.choice(syllables) for _ in range(2)) + str(rng.randrange(10**6))
        return f"{handle}@{rng.choice(EMAIL_DOMAINS)}"

    def address(self, country: str) -> Address:
        rng = self.rng
        if country == "CN":
            province, city, districts, postcode = rng.choice(CHINESE_PLACES)
            return Address("CN", rng.choice(CHINESE_STREETS), rng.randint(1, 999), rng.randint(1, 30),
                           rng.randint(1, 33) * 100 + rng.randint(1, 8), city, province, rng.choice(districts),
                           postcode + f"{rng.randrange(1000):03d}", rng.choice(CHINESE_COMPOUNDS))
        city, region = rng.choice(ABROAD[country])
        flat = rng.randint(1, 40) if rng.random() < 0.5 else 0
        return Address(country, rng.choice(LATIN_STREETS), rng.randint(1, 2999), 0, flat, city, region, "",
                       _postcode(rng, country), suffix=rng.randrange(len(LATIN_SUFFIXES)))


def _fictional_numbers(country: str) -> list[tuple[str, str]]:
    """Every number in the country's ranges for drama and examples, as (code, national)."""
    if country == "US":
        area_codes = [code for code in range(201, 990)
                      if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{code}5550100"))]
        return [("1", f"{code}55501{line:02d}") for code in area_codes for line in range(100)]
    if country == "GB":
        prefixes = ("7700900", "2079460", "1134960", "1144960", "1154960", "1164960", "1174960", "1184960",
                    "1214960", "1314960", "1414960", "1514960", "1614960", "1914980")
        return [("44", prefix + f"{line:0{10 - len(prefix)}d}") for prefix in prefixes
                for line in range(1000)]
    prefixes = ("25550", "27010", "35550", "37010", "75550", "77010", "85550", "87010")
    return [("61", prefix + f"{line:04d}") for prefix in prefixes for line in range(10_000)]


def _postcode(rng: random.Random, country: str) -> str:
    if country == "US":
        return f"{rng.randrange(10000, 99999)}"
    if country == "GB":
        district = rng.choice(["LS1", "M1", "G2", "SW1A", "E1"])
        return f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFG')}{rng.choice('HJLNPQ')}"
    if country == "AU":
        return f"{rng.randrange(2000, 6999)}"
    return f"{rng.randrange(10000, 99999)}" if country == "MY" else f"{rng.randrange(100000, 829999)}"


# ---------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------


def _record(rng: random.Random, person: Person) -> dict:
    platform = _weighted(rng, PLATFORMS[person.country])
    gives_id, masks_phone, masks_name, masks_address = PLATFORM_HABITS[platform]
    home = person.homes[0] if len(person.homes) == 1 or rng.random() < 0.8 else person.homes[1]
    address, city, province, postcode = _address_fields(rng, home)
    if rng.random() < masks_address:
        address = "~" + _random_hex(rng, 24) + "~" if platform == "pdd" else "*****"
    buyer_id = None
    if rng.random() < gives_id:
        buyer_id = person.buyer_ids.setdefault(platform, _buyer_id(rng, platform))
        if platform == "taobao" and rng.random() < 0.3:
            buyer_id = buyer_id[0] + "**" + buyer_id[-1]
    return {
        "name": _spelled_name(rng, person.name, masked=rng.random() < masks_name, platform=platform),
        "phone": _spelled_phone(rng, person.phone, masked=rng.random() < masks_phone, platform=platform),
        "email": _spelled_email(rng, person.email, platform),
        "address": _missing(rng, address, 0.02),
        "city": _missing(rng, city, 0.08),
        "province": _missing(rng, province, 0.1),
        "postcode": _missing(rng, postcode, 0.2),
        "platform": platform,
        "platform_buyer_id": buyer_id,
        "person": person.ident,
    }


def _spelled_name(rng: random.Random, name: str, masked: bool, platform: str) -> str | None:
    if rng.random() < 0.02:
        return rng.choice((None, "", " "))
    chinese = "\u4e00" <= name[0] <= "\u9fff"
    if masked:
        if platform == "pdd" and rng.random() < 0.5:
            return "~" + _random_hex(rng, 16) + "~"
        return name[0] + "*" * (len(name) - 1) if chinese else " ".join(w[0] + "***" for w in name.split())
    if chinese:
        if rng.random() < 0.02:
            name = name[0] + "".join(CHINESE_NEAR.get(ch, ch) for ch in name[1:])
        return name if rng.random() < 0.9 else " ".join(name)
    roll = rng.random()
    if roll < 0.08:
        name = _latin_typo(rng, name)
    elif roll < 0.13:
        first, last = name.split(maxsplit=1)
        name = f"{last}, {first}"
    elif roll < 0.2:
        name = name.upper() if rng.random() < 0.5 else name.lower()
    return name


def _spelled_phone(rng: random.Random, phone: tuple[str, str] | None, masked: bool, platform: str) -> str | None:
    if phone is None or rng.random() < 0.05:
        return rng.choice((None, ""))
    code, national = phone
    if masked:
        if platform == "pdd" and rng.random() < 0.6:
            return "$" + _random_hex(rng, 20) + "$"
        if code == "86":
            return national[:3] + "****" + national[-4:]
        return "*" * (len(national) - 2) + national[-2:]
    return rng.choice(_phone_spellings(code, national))


def _phone_spellings(code: str, national: str) -> list[str]:
    if code == "86":
        a, b, c = national[:3], national[3:7], national[7:]
        return [national, national, f"+86{national}", f"+86 {a} {b} {c}", f"0086-{a}-{b}-{c}", f"{a}-{b}-{c}",
                f"{a} {b} {c}"]
    if code == "1":
        a, b, c = national[:3], national[3:6], national[6:]
        return [f"+1 {a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"1-{a}-{b}-{c}", f"+1{national}"]
    if code == "44":
        split = 2 if national.startswith("20") else 4 if national.startswith("7") else 3
        head, tail = national[:split], national[split:]
        return [f"+44 {head} {tail}", f"0{head} {tail}", f"+44 (0){head} {tail}", f"0{national}"]
    if code == "61":
        return [f"+61 {national[0]} {national[1:5]} {national[5:]}", f"(0{national[0]}) {national[1:5]} {national[5:]}",
                f"0{national}"]
    if code == "65":
        return [f"+65 {national[:4]} {national[4:]}", f"{national[:4]} {national[4:]}", f"+65{national}"]
    return [f"+60 {national[:2]}-{national[2:5]} {national[5:]}", f"0{national[:2]}-{national[2:5]} {national[5:]}",
            f"+60{national}"]


def _spelled_email(rng: random.Random, email: str | None, platform: str) -> str | None:
    shown = {"shopify": 0.9, "amazon": 0.5, "shopee": 0.3, "lazada": 0.4, "spreadsheet": 0.5}.get(platform, 0.1)
    if email is None or rng.random() > shown:
        return None
    local, domain = email.split("@")
    roll = rng.random()
    if roll < 0.1:
        return local[0] + "****@" + domain  # the platform hid it
    if roll < 0.2:
        return email.upper()
    if roll < 0.25:
        return f"{local}+shop@{domain}"
    return f" {email} " if roll < 0.28 else email


def _address_fields(rng: random.Random, home: Address) -> tuple[str, str, str, str]:
    if home.country == "CN":
        return _chinese_address(rng, home), home.city, home.region, home.postcode
    return _latin_address(rng, home), home.city, home.region, home.postcode


def _chinese_address(rng: random.Random, home: Address) -> str:
    building = rng.choice((f"{home.building}栋", f"{home.building}号楼", f"{home.building}幢"))
    room = rng.choice((f"{home.flat}室", f"{home.flat}", f"{home.flat}房"))
    street = home.street
    if rng.random() < 0.05:
        street = "".join(CHINESE_STREET_TYPOS.get(ch, ch) if rng.random() < 0.5 else ch for ch in street)
    body = f"{street}{home.number}号{home.compound}{building}{room}"
    roll = rng.random()
    if roll < 0.3:
        body = f"{home.region}{home.city}{home.district}{body}"
    elif roll < 0.45:
        body = f"{home.region.rstrip('省市')}{home.city.rstrip('市')}{home.district}{body}"
    elif roll < 0.6:
        body = f"{home.district}{body}"
    if rng.random() < 0.1:
        body = body.translate(FULL_WIDTH_DIGITS)
    if rng.random() < 0.1:
        body = body.replace("号", "号 ").replace("栋", "栋 ")
    return body


def _latin_address(rng: random.Random, home: Address) -> str:
    long_suffix, short_suffix = LATIN_SUFFIXES[home.suffix]
    street = f"{home.number} {home.street} {rng.choice((long_suffix, short_suffix, short_suffix + '.'))}"
    if rng.random() < 0.08:
        street = _latin_typo(rng, street)
    if home.flat:
        unit = rng.choice(LATIN_UNIT_WORDS).format(home.flat)
        street = f"{street}, {unit}" if rng.random() < 0.7 else f"{unit}, {street}"
    roll = rng.random()
    if roll < 0.1:
        return street.upper()
    return street.lower() if roll < 0.15 else street


def _latin_typo(rng: random.Random, text: str) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    at = rng.choice(letters[1:-1])
    kind = rng.randrange(3)
    if kind == 0:
        return text[:at] + text[at + 1:]
    if kind == 1:
        return text[:at] + text[at] + text[at:]
    return text[:at] + text[at + 1] + text[at] + text[at + 2:] if at + 1 < len(text) else text


def _buyer_id(rng: random.Random, platform: str) -> str:
    if platform == "taobao":
        return "tb" + _random_hex(rng, 10)
    if platform == "amazon":
        return "A" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(13))
    return str(rng.randrange(10**11, 10**12))


def _missing(rng: random.Random, value: str, share: float) -> str | None:
    return rng.choice((None, "")) if rng.random() < share else value


def _random_hex(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(4 * length):0{length}x}"


def _weighted(rng: random.Random, choices):
    values, weights = zip(*choices)
    return rng.choices(values, weights=weights)[0]
