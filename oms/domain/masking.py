"""Hiding buyers' personal data before text or rows reach a log line or an artifact.

Two ways in. Free text (a log message, a markdown report) is scanned for phone numbers
and e-mail addresses, the only personal data that has a shape; names and street
addresses have none, so code must never put them in text. Structured rows (a table
artifact, a payload) are masked by field name, which also covers names and addresses.

Ids matter as much as privacy here: an operator who cannot read an order id or a
tracking number cannot act. So a digit run counts as a phone only when its form says so:

- written internationally ('+65 9123 4567', '0086-138...') and valid for its country;
- bare digits in exactly the Chinese mobile form (11 digits, 1[3-9]...) or a national
  trunk form starting with 0, valid in one of the regions our shops sell to;
- digits grouped by spaces, dashes or brackets, 7 to 15 of them, valid in such a region,
  and not a date or a thousands-grouped amount.

Anything glued to letters, dashes, dots, slashes or other digits (SF1234567890123,
231204-123456789012345, 2024-01-02T03:04:05, 12.50) is part of something else and kept.
Taobao, Douyin and JD order ids (12 to 19 bare digits) never match the bare forms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import phonenumbers

from oms.domain.normalize import CIPHERTEXT_PREFIXES, is_masked, normalize_province

HIDDEN = "****"

# Where our shops sell: mainland China and the Shopee, Lazada, Amazon and Shopify
# markets. A grouped number is a phone when one of them reads it as a valid one.
LIKELY_REGIONS = ("CN", "HK", "MO", "TW", "SG", "MY", "TH", "ID", "PH", "VN",
                  "JP", "KR", "US", "CA", "GB", "DE", "FR", "IT", "ES", "AU")

# ---------------------------------------------------------------------------
# free text
# ---------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])([A-Za-z0-9][A-Za-z0-9._%+-]*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")

# Characters that make a digit run part of an id, a path, a number or a ciphertext when
# they touch it. Chinese characters are deliberately absent: '电话13800138000' is a phone.
_GLUE_BEFORE = r"A-Za-z0-9_\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A+\-－./\\#$~@"
_GLUE_AFTER = r"A-Za-z0-9_\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A\-－/\\@"
_DIGIT = r"[0-9\uFF10-\uFF19]"
_PHONE_CANDIDATE = re.compile(
    rf"(?<![{_GLUE_BEFORE}])"
    r"(?:\(?[+＋]|\()?"  # '+', '(+' or '(' in front
    rf"{_DIGIT}(?:[ \-－]?\)?[ \-－]?\(?{_DIGIT})*"  # digits, single separators between
    # not a decimal, a time, an amount in thousands or a domain name
    rf"(?![{_GLUE_AFTER}]|[.:]{_DIGIT}|,{_DIGIT}{{3}}(?!{_DIGIT})|\.[A-Za-z])"
)
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_NATIONAL_TRUNK = re.compile(r"^0\d{8,11}$")
_DATE = re.compile(r"^(?:\d{4}([-/ ])\d{1,2}\1\d{1,2}|\d{1,2}([-/ ])\d{1,2}\2\d{4})$")
_THOUSANDS = re.compile(r"^\d{1,3}(?: \d{3})+$")
_SHORTEST_PHONE, _LONGEST_PHONE = 7, 15
# Showing 3 + 4 digits of anything shorter would reveal nearly the whole number.
_SHORTEST_PARTLY_SHOWN = 10


def mask_text(text: str) -> str:
    """The text with every e-mail address and phone number in it masked."""
    if not text:
        return text
    text = _EMAIL.sub(lambda found: mask_email(found.group(0)), text)
    return _PHONE_CANDIDATE.sub(lambda found: _mask_candidate(found.group(0)), text)


def mask_email(value: str) -> str:
    """'alice@example.com' -> 'a***@example.com': the domain stays, it names no one."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local:
        return HIDDEN
    return f"{local[0]}***@{domain}"


def _mask_candidate(candidate: str) -> str:
    parts = candidate.split(" ")
    if len(parts) > 1 and any(_is_whole_phone(part) for part in parts):
        # '5 13800138000 7' is three numbers side by side, not one phone of 13 digits;
        # '(415) 555-2671' is one phone, its parts too short to stand alone.
        return " ".join(_mask_candidate(part) for part in parts)
    number = _as_phone(candidate)
    if number is not None:
        return _masked_number(number, international=_is_international(candidate))
    return candidate


def _is_whole_phone(part: str) -> bool:
    number = _as_phone(part)
    return number is not None and len(phonenumbers.national_significant_number(number)) >= _SHORTEST_PARTLY_SHOWN


def _as_phone(candidate: str) -> phonenumbers.PhoneNumber | None:
    """The phone number the candidate is, or None when its form says it is something else."""
    text = unicodedata.normalize("NFKC", candidate).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not _SHORTEST_PHONE <= len(digits) <= _LONGEST_PHONE + 2:  # +2: a written '00' prefix
        return None
    if _is_international(text):
        return _valid(_international_form(text, digits), None)
    if text == digits:
        if _CN_MOBILE.match(digits):
            return _valid(digits, "CN")
        if _NATIONAL_TRUNK.match(digits):
            return _valid_in_any_region(digits)
        return None
    if _DATE.match(text) or _THOUSANDS.match(text) or len(digits) > _LONGEST_PHONE:
        return None
    return _valid_in_any_region(text)


def _is_international(text: str) -> bool:
    text = unicodedata.normalize("NFKC", text).lstrip("(").lstrip()
    return text.startswith("+") or text.startswith("00")


def _international_form(text: str, digits: str) -> str:
    if text.lstrip("(").lstrip().startswith("00"):
        return "+" + digits[2:]
    return text


def _valid(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _valid_in_any_region(text: str) -> phonenumbers.PhoneNumber | None:
    for region in LIKELY_REGIONS:
        number = _valid(text, region)
        if number is not None:
            return number
    return None


def _masked_number(number: phonenumbers.PhoneNumber, *, international: bool) -> str:
    """'138****8000' for Chinese numbers, '+65 ****67' style for the rest."""
    national = phonenumbers.national_significant_number(number)
    if len(national) >= _SHORTEST_PARTLY_SHOWN:
        shown = f"{national[:3]}{HIDDEN}{national[-4:]}"
    else:
        shown = f"{HIDDEN}{national[-2:]}"
    if number.country_code == 86 or not international:
        return shown
    return f"+{number.country_code} {shown}"


# ---------------------------------------------------------------------------
# single values
# ---------------------------------------------------------------------------


def mask_phone_value(value: object) -> str:
    """A value stored as a phone, whatever its spelling; unreadable ones are hidden whole."""
    text = _text_of(value)
    if not text:
        return ""
    if is_masked(text):
        return HIDDEN if text.startswith(CIPHERTEXT_PREFIXES) else text
    number = _as_phone(text) or _as_phone(unicodedata.normalize("NFKC", text).replace(" ", ""))
    if number is None:
        return HIDDEN
    return _masked_number(number, international=_is_international(text))


def mask_name(value: object) -> str:
    """'张小明' -> '张**', 'John Smith' -> 'J*** S***': enough to tell parcels apart."""
    text = _text_of(value)
    if not text:
        return ""
    if is_masked(text):
        return HIDDEN if text.startswith(CIPHERTEXT_PREFIXES) else text
    if " " not in text and any(_is_cjk(ch) for ch in text):
        return text[0] + "*" * max(len(text) - 1, 1)
    return " ".join(word[0] + "***" for word in text.split())


def mask_address(value: object) -> str:
    """The province and city stay, the rest is hidden: '广东省深圳市南山区科技园路1号' -> '广东省深圳市****'.

    Addresses without a Chinese province in front keep only a last comma-separated part
    free of digits (a town or a country), as in '1 Main St, Flat 2, Springfield' -> '****, Springfield'.
    """
    text = _text_of(value)
    if not text:
        return ""
    if is_masked(text):
        return HIDDEN if text.startswith(CIPHERTEXT_PREFIXES) else text
    region = _chinese_region_prefix(text)
    if region:
        return f"{region}{HIDDEN}"
    head, comma, last = text.rpartition(",")
    if comma and head.strip() and last.strip() and not any(ch.isdigit() for ch in last):
        return f"{HIDDEN}, {last.strip()}"
    return HIDDEN


def mask_postal_code(value: object) -> str:
    text = _text_of(value)
    return f"{text[:3]}{HIDDEN}" if len(text) > 3 else (HIDDEN if text else "")


_CITY = re.compile(r"^[\u4e00-\u9fff]{1,6}?(?:市|自治州|地区|盟)")
_LONGEST_PROVINCE = 8  # 新疆维吾尔自治区


def _chinese_region_prefix(text: str) -> str:
    """The leading province (and city, when one follows) of a Chinese address, else ''."""
    province = ""
    for length in range(min(_LONGEST_PROVINCE, len(text)), 1, -1):
        if normalize_province(text[:length]).recognized:
            province = text[:length]
            break
    if not province:
        return ""
    city = _CITY.match(text[len(province):])
    return province + (city.group(0) if city else "")


def _is_cjk(character: str) -> bool:
    return "\u4e00" <= character <= "\u9fff" or "\u3400" <= character <= "\u4dbf"


def _text_of(value: object) -> str:
    return "" if value is None else str(value).strip()


# ---------------------------------------------------------------------------
# structured rows
# ---------------------------------------------------------------------------

# Field names are compared in snake case: 'receiverName', 'Receiver Name' and
# 'receiver_name' are one field.
_PHONE_WORDS = {"phone", "mobile", "tel", "telephone", "cellphone", "cell"}
_EMAIL_WORDS = {"email", "mail"}
_ADDRESS_WORDS = {"address", "addr", "address1", "address2", "street", "street1", "street2"}
_POSTAL_FIELDS = {"zip", "zip_code", "zipcode", "postcode", "postal_code", "post_code", "receiver_postal_code",
                  "receiver_zip"}
_NAME_FIELDS = {"name", "full_name", "fullname", "first_name", "last_name", "real_name", "consignee", "recipient",
                "receiver", "addressee", "nick", "nickname", "buyer_nick"}
# '<who>_name' is a person's name for these; 'shop_name' or 'sku_name' is not.
_PERSON_WORDS = {"receiver", "buyer", "customer", "contact", "consignee", "recipient", "shipping", "billing",
                 "sender", "user", "member"}
_ADDRESS_DETAIL_FIELDS = {"detail", "detail_address", "detailed_address", "full_address", "town_detail", "line1",
                          "line2", "address_line1", "address_line2", "address_line_1", "address_line_2"}


def field_kind(name: str) -> str | None:
    """'phone', 'email', 'name', 'address', 'postal' or None for a field that holds none."""
    key = _snake(name)
    words = set(key.split("_"))
    if key in _POSTAL_FIELDS:
        return "postal"
    if words & _PHONE_WORDS:
        return "phone"
    if words & _EMAIL_WORDS or key == "e_mail":
        return "email"
    if words & _ADDRESS_WORDS or key in _ADDRESS_DETAIL_FIELDS:
        return "address"
    if key in _NAME_FIELDS or "nick" in words or (words & {"name"} and words & _PERSON_WORDS):
        return "name"
    return None


_MASK_BY_KIND = {"phone": mask_phone_value, "email": mask_email, "name": mask_name, "address": mask_address,
                 "postal": mask_postal_code}


def mask_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the row with personal fields masked by name and every other text scanned."""
    return {key: _mask_field(key, value) for key, value in row.items()}


def _mask_field(key: object, value: Any) -> Any:
    kind = field_kind(str(key))
    if isinstance(value, Mapping):
        # 'shipping_address': {...} is a row of its own: its city stays, its street goes.
        return mask_row(value)
    if isinstance(value, (list, tuple)):
        return [_mask_field(key, item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if kind is not None:
        if kind == "email":
            return mask_email(str(value)) if str(value).strip() else ""
        return _MASK_BY_KIND[kind](value)
    if isinstance(value, str):
        return mask_text(value)
    return value  # numbers, amounts and times carry no personal data of their own


def redact_table(table: list[Mapping[str, Any]] | Mapping[str, list[Any]]) -> Any:
    """A table artifact's data, masked: a list of rows, or columns by name (Prefect takes both)."""
    if isinstance(table, Mapping):
        return {column: [_mask_field(column, value) for value in values] for column, values in table.items()}
    return [mask_row(row) if isinstance(row, Mapping) else _mask_field("", row) for row in table]


def redact_markdown(markdown: str) -> str:
    """A markdown artifact's text with phones and e-mails masked (names must not be in it)."""
    return mask_text(markdown)


def _snake(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^0-9a-z]+", "_", spaced.lower()).strip("_")
