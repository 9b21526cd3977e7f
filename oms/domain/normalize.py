"""Turning the dirty values platforms send into the forms the pipeline stores.

Phones become E.164, provinces become their official Chinese names, amounts become
Decimal cents, currencies become upper-case ISO 4217 codes. Nothing here guesses: a
value that cannot be read with certainty is flagged with a reason for the review queue,
and a value the platform masked or encrypted is kept exactly as it came, because
inventing plaintext would ship parcels to made-up people.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import phonenumbers

# ---------------------------------------------------------------------------
# masking and plain text
# ---------------------------------------------------------------------------

# PDD ciphertexts start with '$' (phones) or '~' (names, addresses); see
# marketplace-apis.md §6.3 [M]. Platform masks hide characters with '*'.
CIPHERTEXT_PREFIXES = ("$", "~")
MASK_CHARACTERS = ("*", "＊")

# Zero-width characters arrive from copy-pasted addresses and break equality checks.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def is_masked(value: str | None) -> bool:
    """True when the platform hid the real value behind '*' or gave a ciphertext."""
    if not value:
        return False
    text = value.strip()
    return any(mark in text for mark in MASK_CHARACTERS) or text.startswith(
        CIPHERTEXT_PREFIXES
    )


def normalize_text(value: object) -> str | None:
    """Trim, collapse runs of any whitespace (full-width included) to one space; blank is None."""
    if value is None:
        return None
    words = str(value).translate(_INVISIBLE).split()
    return " ".join(words) or None


# ---------------------------------------------------------------------------
# phones
# ---------------------------------------------------------------------------

REASON_MISSING = "missing"
REASON_UNEXPECTED_CHARACTERS = "unexpected characters"
REASON_TOO_SHORT = "too short"
REASON_TOO_LONG = "too long"
REASON_UNKNOWN_COUNTRY_CODE = "unknown country code"
REASON_NOT_VALID = "not a valid number"

# Markers that can only mean "extension follows": 转/分机 on Chinese landlines,
# ext/x/# in Western notation.
_EXPLICIT_EXTENSION = re.compile(
    r"^(?P<main>.*?\d)\s*(?:转|轉|分机|分機|ext\.?|x|#)\s*(?P<ext>\d{1,6})\s*$",
    re.IGNORECASE,
)
# A trailing "-123" is an extension only when the part before it is a valid number on
# its own (Taobao's virtual numbers look like 18877771111-123, §5.4).
_DASH_EXTENSION = re.compile(r"^(?P<main>.*\d)\s*-\s*(?P<ext>\d{1,6})$")
# Letters are refused outright: phonenumbers would read 1-800-FLOWERS as digits.
_PHONE_CHARACTERS = re.compile(r"^[\d\s+\-.()]+$")

_PARSE_ERROR_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: REASON_UNKNOWN_COUNTRY_CODE,
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: REASON_TOO_SHORT,
    phonenumbers.NumberParseException.TOO_SHORT_NSN: REASON_TOO_SHORT,
    phonenumbers.NumberParseException.TOO_LONG: REASON_TOO_LONG,
}
_LENGTH_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: REASON_TOO_SHORT,
    phonenumbers.ValidationResult.TOO_LONG: REASON_TOO_LONG,
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: REASON_UNKNOWN_COUNTRY_CODE,
}


@dataclass(frozen=True)
class NormalizedPhone:
    """The outcome of reading one phone value.

    `valid` means nothing is wrong with the value: either it is a real number (then
    `e164` holds it) or the platform masked it (then `masked_value` holds the mask or
    ciphertext verbatim, and `e164` is None because the plaintext is unknown to us).
    """

    e164: str | None
    valid: bool
    masked: bool
    reason: str | None
    extension: str | None = None
    masked_value: str | None = None

    @property
    def value(self) -> str | None:
        """What to store in the order: the E.164 number, else the platform's mask."""
        return self.e164 or self.masked_value


def normalize_phone(raw: str | None, region: str = "CN") -> NormalizedPhone:
    """Read a phone as written by a buyer or a platform; numbers without '+' use `region`."""
    if raw is None or not raw.strip():
        return _invalid_phone(REASON_MISSING)
    if is_masked(raw):
        return NormalizedPhone(None, True, True, None, masked_value=raw.strip())
    text = normalize_text(unicodedata.normalize("NFKC", raw)) or ""
    main, extension = text, None
    explicit = _EXPLICIT_EXTENSION.match(text)
    if explicit:
        main, extension = explicit["main"], explicit["ext"]
    if not _PHONE_CHARACTERS.match(main) or not any(ch.isdigit() for ch in main):
        return _invalid_phone(REASON_UNEXPECTED_CHARACTERS)

    e164, reason = _parse_e164(main, region)
    if e164 is None and extension is None:
        dashed = _DASH_EXTENSION.match(main)
        if dashed:
            head_e164, _ = _parse_e164(dashed["main"], region)
            if head_e164 is not None:
                e164, extension = head_e164, dashed["ext"]
    if e164 is None:
        return _invalid_phone(reason or REASON_NOT_VALID)
    return NormalizedPhone(e164, True, False, None, extension=extension)


def _parse_e164(text: str, region: str) -> tuple[str | None, str | None]:
    """The E.164 form of `text`, or None with the reason it is not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        return None, _PARSE_ERROR_REASONS.get(error.error_type, REASON_NOT_VALID)
    # Extensions are split off before we get here; one found now came from syntax we
    # did not expect, so refuse it rather than drop those digits silently.
    if number.extension or not phonenumbers.is_valid_number(number):
        return None, _LENGTH_REASONS.get(_length_verdict(number), REASON_NOT_VALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def _length_verdict(number: phonenumbers.PhoneNumber) -> int:
    """Whether the digit count is the problem, judged as a mobile where it looks like one.

    Seven digits starting with 1 fit some landline length, so the general check calls
    them possible; a seller reading the review queue needs "too short" instead.
    """
    national = phonenumbers.national_significant_number(number)
    if number.country_code == 86 and national.startswith("1"):
        mobile = phonenumbers.PhoneNumberType.MOBILE
        return phonenumbers.is_possible_number_for_type_with_reason(number, mobile)
    return phonenumbers.is_possible_number_with_reason(number)


def _invalid_phone(reason: str) -> NormalizedPhone:
    return NormalizedPhone(None, False, False, reason)


# Showing 3 + 4 digits of anything shorter would reveal nearly the whole number.
_SHORTEST_PARTLY_SHOWN = 10
_HIDDEN = "****"


def mask_phone(value: str | None) -> str:
    """A phone safe for logs and artifacts: '+8613800138000' -> '138****8000'."""
    if value is None or not value.strip():
        return ""
    if is_masked(value):
        # A platform mask is already safe; a ciphertext is noise in a log line.
        text = value.strip()
        return _HIDDEN if text.startswith(CIPHERTEXT_PREFIXES) else text
    text = unicodedata.normalize("NFKC", value).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+86"):
        digits = digits[2:]
    elif text.startswith("0086"):
        digits = digits[4:]
    if len(digits) < _SHORTEST_PARTLY_SHOWN:
        return _HIDDEN
    return f"{digits[:3]}{_HIDDEN}{digits[-4:]}"


# ---------------------------------------------------------------------------
# provinces
# ---------------------------------------------------------------------------

# One row per provincial-level division: standard name, short forms, one-character
# abbreviations, Latin names (lower case, no spaces), ISO 3166-2:CN letter code and the
# GB/T 2260 two-digit code.
_Names = tuple[str, ...]
_PROVINCE_TABLE: tuple[tuple[str, _Names, _Names, _Names, str, str], ...] = (
    ("北京市", ("北京",), ("京",), ("beijing",), "BJ", "11"),
    ("天津市", ("天津",), ("津",), ("tianjin",), "TJ", "12"),
    ("河北省", ("河北",), ("冀",), ("hebei",), "HE", "13"),
    ("山西省", ("山西",), ("晋",), ("shanxi",), "SX", "14"),
    ("内蒙古自治区", ("内蒙古", "内蒙"), ("蒙",),
     ("innermongolia", "neimongol", "neimenggu"), "NM", "15"),
    ("辽宁省", ("辽宁",), ("辽",), ("liaoning",), "LN", "21"),
    ("吉林省", ("吉林",), ("吉",), ("jilin",), "JL", "22"),
    ("黑龙江省", ("黑龙江",), ("黑",), ("heilongjiang",), "HL", "23"),
    ("上海市", ("上海",), ("沪",), ("shanghai",), "SH", "31"),
    ("江苏省", ("江苏",), ("苏",), ("jiangsu",), "JS", "32"),
    ("浙江省", ("浙江",), ("浙",), ("zhejiang",), "ZJ", "33"),
    ("安徽省", ("安徽",), ("皖",), ("anhui",), "AH", "34"),
    ("福建省", ("福建",), ("闽",), ("fujian",), "FJ", "35"),
    ("江西省", ("江西",), ("赣",), ("jiangxi",), "JX", "36"),
    ("山东省", ("山东",), ("鲁",), ("shandong",), "SD", "37"),
    ("河南省", ("河南",), ("豫",), ("henan",), "HA", "41"),
    ("湖北省", ("湖北",), ("鄂",), ("hubei",), "HB", "42"),
    ("湖南省", ("湖南",), ("湘",), ("hunan",), "HN", "43"),
    ("广东省", ("广东",), ("粤",), ("guangdong",), "GD", "44"),
    ("广西壮族自治区", ("广西", "广西壮族"), ("桂",), ("guangxi", "guangxizhuang"), "GX", "45"),
    ("海南省", ("海南",), ("琼",), ("hainan",), "HI", "46"),
    ("重庆市", ("重庆",), ("渝",), ("chongqing",), "CQ", "50"),
    ("四川省", ("四川",), ("川", "蜀"), ("sichuan",), "SC", "51"),
    ("贵州省", ("贵州",), ("贵", "黔"), ("guizhou",), "GZ", "52"),
    ("云南省", ("云南",), ("云", "滇"), ("yunnan",), "YN", "53"),
    ("西藏自治区", ("西藏",), ("藏",), ("tibet", "xizang"), "XZ", "54"),
    ("陕西省", ("陕西",), ("陕", "秦"), ("shaanxi",), "SN", "61"),
    ("甘肃省", ("甘肃",), ("甘", "陇"), ("gansu",), "GS", "62"),
    ("青海省", ("青海",), ("青",), ("qinghai",), "QH", "63"),
    ("宁夏回族自治区", ("宁夏", "宁夏回族"), ("宁",), ("ningxia", "ningxiahui"), "NX", "64"),
    ("新疆维吾尔自治区", ("新疆", "新疆维吾尔"), ("新",),
     ("xinjiang", "xinjianguygur", "xinjianguyghur", "xinjianguighur"), "XJ", "65"),
    ("台湾省", ("台湾",), ("台",), ("taiwan",), "TW", "71"),
    ("香港特别行政区", ("香港", "香港特区"), ("港",), ("hongkong",), "HK", "81"),
    ("澳门特别行政区", ("澳门", "澳门特区"), ("澳",), ("macau", "macao"), "MO", "82"),
)

PROVINCES: tuple[str, ...] = tuple(row[0] for row in _PROVINCE_TABLE)

# The ISO 3166-2:CN numeric codes used before 2017 put Hong Kong and Macao at 91 and 92.
_OLD_ISO_NUMERIC = {"91": "香港特别行政区", "92": "澳门特别行政区"}

# Traditional characters that occur in the names above, mapped to their simplified form.
_TRADITIONAL_TO_SIMPLIFIED = str.maketrans(
    "廣東臺灣龍遼寧蘇陝肅貴雲慶門維爾區內別滬閩贛魯粵瓊隴壯",
    "广东台湾龙辽宁苏陕肃贵云庆门维尔区内别沪闽赣鲁粤琼陇壮",
)
_LATIN_SUFFIXES = (
    "specialadministrativeregion", "autonomousregion", "municipality", "province",
    "zizhiqu", "sheng", "city", "shi", "sar",
)
_ISO_CODE = re.compile(r"^(?:CN[-_ ]?)?(?P<code>[A-Z]{2})$")
_ISO_NUMERIC = re.compile(r"^CN[-_ ]?(?P<code>\d{2})$")


@dataclass(frozen=True)
class NormalizedProvince:
    """`name` is one of PROVINCES when recognized; `raw` is always the value as given."""

    name: str | None
    recognized: bool
    masked: bool
    raw: str | None


def _proper_suffix(standard: str) -> str:
    for suffix in ("特别行政区", "自治区", "省", "市"):
        if standard.endswith(suffix):
            return suffix
    raise ValueError(f"no administrative suffix in {standard!r}")


def _build_province_index() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Chinese aliases, Latin keys and codes, each mapped to the standard name.

    Built once at import; an alias claimed by two provinces is a bug in the table, so it
    fails loudly instead of letting the last row win.
    """
    chinese: dict[str, str] = {}
    latin: dict[str, str] = {}
    codes: dict[str, str] = dict(_OLD_ISO_NUMERIC)

    def claim(index: dict[str, str], alias: str, standard: str) -> None:
        if index.setdefault(alias, standard) != standard:
            raise ValueError(f"province alias {alias!r} is ambiguous")

    for standard, shorts, abbreviations, latin_names, letters, digits in _PROVINCE_TABLE:
        suffix = _proper_suffix(standard)
        for alias in (standard, *abbreviations):
            claim(chinese, alias, standard)
        for short in shorts:
            claim(chinese, short, standard)
            claim(chinese, short + suffix, standard)
        for name in latin_names:
            claim(latin, name, standard)
        claim(codes, letters, standard)
        claim(codes, digits, standard)
    return chinese, latin, codes


_CHINESE_ALIASES, _LATIN_ALIASES, _CODES = _build_province_index()


def normalize_province(raw: str | None) -> NormalizedProvince:
    """Map any common spelling of a Chinese province to its standard name; never guess."""
    if raw is None or not raw.strip():
        return NormalizedProvince(None, False, False, raw)
    if is_masked(raw):
        return NormalizedProvince(None, False, True, raw)
    name = _lookup_province(unicodedata.normalize("NFKC", raw))
    return NormalizedProvince(name, name is not None, False, raw)


def _lookup_province(text: str) -> str | None:
    compact = "".join(text.split()).translate(_TRADITIONAL_TO_SIMPLIFIED)
    if compact in _CHINESE_ALIASES:
        return _CHINESE_ALIASES[compact]
    upper = " ".join(text.split()).upper()
    if match := _ISO_CODE.match(upper):
        return _CODES.get(match["code"])
    if match := _ISO_NUMERIC.match(upper):
        return _CODES.get(match["code"])
    return _LATIN_ALIASES.get(_latin_key(text))


def _latin_key(text: str) -> str:
    """'Guangdong Province' -> 'guangdong'; abbreviations like 'A.R.' are not expanded."""
    key = "".join(ch for ch in text.lower() if ch.isascii() and ch.isalpha())
    stripped = True
    while stripped:
        stripped = False
        for suffix in _LATIN_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key, stripped = key[: -len(suffix)], True
    return key


# ---------------------------------------------------------------------------
# money
# ---------------------------------------------------------------------------

CENT = Decimal("0.01")
_AMOUNT_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_CURRENCY_ALIASES = {"RMB": "CNY", "人民币": "CNY"}
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def normalize_amount(value: str | int | float | Decimal) -> Decimal:
    """A money amount as Decimal rounded half-up to cents; ValueError on anything else."""
    if isinstance(value, bool):  # bool is an int, but True is never an amount
        raise ValueError(f"amount must be a number, got a boolean: {value!r}")
    if isinstance(value, float):
        # via str, so 0.1 + 0.2 reads as 0.30000000000000004, not the binary expansion
        value = str(value)
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if not _AMOUNT_TEXT.match(text):
            raise ValueError(f"amount is not a plain decimal number: {value!r}")
        value = Decimal(text)
    elif isinstance(value, int):
        value = Decimal(value)
    elif not isinstance(value, Decimal):
        raise ValueError(f"amount must be str, int, float or Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"amount must be finite, got {value}")
    try:
        return value.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as error:
        raise ValueError(f"amount is too large to hold in cents: {value}") from error


def normalize_currency(code: str | None) -> str:
    """An upper-case ISO 4217 code ('rmb' -> 'CNY'); ValueError unless it has that shape.

    Only the shape is checked, not membership in the ISO list, so a made-up 'XYZ'
    passes; the validation suite is the place for a list of accepted currencies.
    """
    if not isinstance(code, str):
        raise ValueError(f"currency code must be text, got {code!r}")
    text = unicodedata.normalize("NFKC", code).strip().upper()
    text = _CURRENCY_ALIASES.get(text, text)
    if not _CURRENCY_CODE.match(text):
        raise ValueError(f"currency is not a three-letter ISO 4217 code: {code!r}")
    return text
