"""Normalisation of phones, provinces, text, amounts and currencies: pure, no I/O."""

from decimal import Decimal

import pytest

from oms.domain.normalize import (
    PROVINCES,
    is_masked,
    mask_phone,
    normalize_amount,
    normalize_currency,
    normalize_phone,
    normalize_province,
    normalize_text,
)

# ---------------------------------------------------------------------------
# phones
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "0086 13800138000",
        "008613800138000",
        "86 13800138000",
        "8613800138000",
        "138-0013-8000",
        "138.0013.8000",
        "(+86) 138 0013 8000",
        "（+86）138-0013-8000",
        "１３８ ００１３ ８０００",
        "＋８６ １３８００１３８０００",
        "\u3000138 0013 8000\u3000",
    ],
)
def test_mobile_written_in_any_common_notation_becomes_e164(raw):
    phone = normalize_phone(raw)
    assert phone == normalize_phone("13800138000")
    assert (phone.e164, phone.valid, phone.masked, phone.reason) == (
        "+8613800138000", True, False, None,
    )
    assert phone.value == "+8613800138000"


@pytest.mark.parametrize(
    "raw, e164",
    [
        ("010-12345678", "+861012345678"),
        ("(010) 1234 5678", "+861012345678"),
        ("0755 8888 1234", "+8675588881234"),
        ("0755-88881234", "+8675588881234"),
        ("+86 755 8888 1234", "+8675588881234"),
        ("+1 206 555 0100", "+12065550100"),  # a foreign number written in full stays foreign
    ],
)
def test_landlines_with_area_codes_and_foreign_numbers_become_e164(raw, e164):
    phone = normalize_phone(raw)
    assert (phone.e164, phone.valid, phone.extension) == (e164, True, None)


@pytest.mark.parametrize(
    "raw, e164, extension",
    [
        ("010-12345678-123", "+861012345678", "123"),
        ("010-12345678转8001", "+861012345678", "8001"),
        ("0755 8888 1234 ext. 12", "+8675588881234", "12"),
        ("18877771111-123", "+8618877771111", "123"),  # Taobao virtual number
    ],
)
def test_extension_is_kept_apart_from_the_e164_number(raw, e164, extension):
    phone = normalize_phone(raw)
    assert (phone.e164, phone.valid, phone.extension) == (e164, True, extension)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("1380013", "too short"),
        ("12345678901", "not a valid number"),  # no mobile range starts with 12
        ("138001380001", "too long"),  # one digit too many
        ("12345678", "too short"),  # a local landline without its area code cannot be placed
        ("1380013800a", "unexpected characters"),
        ("1-800-FLOWERS", "unexpected characters"),
        ("abc", "unexpected characters"),
        ("13800138000/13900139000", "unexpected characters"),
        ("---", "unexpected characters"),
        # the last dash does not make "12345" an extension: 0755-8888 is no number either
        ("0755-8888-12345", "not a valid number"),
        ("+999 123 4567", "unknown country code"),
    ],
)
def test_invalid_phones_are_flagged_with_a_reason_and_never_guessed(raw, reason):
    phone = normalize_phone(raw)
    assert (phone.e164, phone.valid, phone.masked, phone.reason) == (None, False, False, reason)
    assert phone.value is None


@pytest.mark.parametrize(
    "raw",
    [
        "138****8000",
        "1*********5",
        "$Y/YKpKSabc$AgAAAAKjdef$0$$",
        "~AgAAAAKj5K0abc~e3T2WeW7~0~~",
        "138＊＊＊＊8000",
    ],
)
def test_masked_or_encrypted_phones_are_kept_as_given(raw):
    phone = normalize_phone(f"  {raw} ")
    assert (phone.valid, phone.masked, phone.e164, phone.reason) == (True, True, None, None)
    assert phone.masked_value == raw
    assert phone.value == raw


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000"])
def test_missing_phone_is_reported_as_missing(raw):
    phone = normalize_phone(raw)
    assert (phone.valid, phone.masked, phone.e164, phone.reason) == (False, False, None, "missing")


@pytest.mark.parametrize(
    "value, shown",
    [
        ("+8613800138000", "138****8000"),
        ("13800138000", "138****8000"),
        ("0086 138 0013 8000", "138****8000"),
        ("+861012345678", "101****5678"),
        ("+12065550100", "120****0100"),
        ("138****8000", "138****8000"),  # already masked by the platform
        ("$Y/YKpKSabc$AgAAAAKj$0$$", "****"),  # ciphertext is not worth a log line
        ("12345", "****"),
        ("123456789", "****"),
        (None, ""),
        ("", ""),
    ],
)
def test_masking_a_phone_for_logs_keeps_only_first_three_and_last_four_digits(value, shown):
    assert mask_phone(value) == shown


# ---------------------------------------------------------------------------
# provinces
# ---------------------------------------------------------------------------

# At least one short form for every division; the test below checks the coverage.
SHORT_FORMS = {
    "北京": "北京市", "天津": "天津市", "上海": "上海市", "重庆": "重庆市",
    "河北": "河北省", "山西": "山西省", "辽宁": "辽宁省", "吉林": "吉林省",
    "黑龙江": "黑龙江省", "江苏": "江苏省", "浙江": "浙江省", "安徽": "安徽省",
    "福建": "福建省", "江西": "江西省", "山东": "山东省", "河南": "河南省",
    "湖北": "湖北省", "湖南": "湖南省", "广东": "广东省", "海南": "海南省",
    "四川": "四川省", "贵州": "贵州省", "云南": "云南省", "陕西": "陕西省",
    "甘肃": "甘肃省", "青海": "青海省", "台湾": "台湾省",
    "内蒙": "内蒙古自治区", "内蒙古": "内蒙古自治区", "广西": "广西壮族自治区",
    "西藏": "西藏自治区", "宁夏": "宁夏回族自治区", "新疆": "新疆维吾尔自治区",
    "香港": "香港特别行政区", "澳门": "澳门特别行政区",
    "广西自治区": "广西壮族自治区", "新疆自治区": "新疆维吾尔自治区", "香港特区": "香港特别行政区",
}

ONE_CHARACTER = {
    "京": "北京市", "津": "天津市", "沪": "上海市", "渝": "重庆市", "冀": "河北省",
    "晋": "山西省", "辽": "辽宁省", "吉": "吉林省", "黑": "黑龙江省", "苏": "江苏省",
    "浙": "浙江省", "皖": "安徽省", "闽": "福建省", "赣": "江西省", "鲁": "山东省",
    "豫": "河南省", "鄂": "湖北省", "湘": "湖南省", "粤": "广东省", "琼": "海南省",
    "川": "四川省", "蜀": "四川省", "贵": "贵州省", "黔": "贵州省", "云": "云南省",
    "滇": "云南省", "陕": "陕西省", "秦": "陕西省", "甘": "甘肃省", "陇": "甘肃省",
    "青": "青海省", "桂": "广西壮族自治区", "蒙": "内蒙古自治区", "藏": "西藏自治区",
    "宁": "宁夏回族自治区", "新": "新疆维吾尔自治区", "港": "香港特别行政区",
    "澳": "澳门特别行政区", "台": "台湾省",
}


def test_there_are_exactly_34_distinct_provincial_divisions():
    assert len(PROVINCES) == len(set(PROVINCES)) == 34
    assert sum(name.endswith("省") for name in PROVINCES) == 23
    assert sum(name.endswith("自治区") for name in PROVINCES) == 5
    assert sum(name.endswith("市") for name in PROVINCES) == 4
    assert sum(name.endswith("特别行政区") for name in PROVINCES) == 2


@pytest.mark.parametrize("standard", PROVINCES)
def test_every_standard_province_name_is_recognized_as_itself(standard):
    province = normalize_province(standard)
    assert (province.name, province.recognized, province.masked, province.raw) == (
        standard, True, False, standard,
    )


def test_every_province_has_a_short_form_in_this_table():
    assert set(SHORT_FORMS.values()) == set(PROVINCES)
    assert set(ONE_CHARACTER.values()) == set(PROVINCES)


@pytest.mark.parametrize("short, standard", SHORT_FORMS.items())
def test_short_forms_become_the_standard_name(short, standard):
    province = normalize_province(short)
    assert (province.name, province.recognized, province.raw) == (standard, True, short)


@pytest.mark.parametrize("abbreviation, standard", ONE_CHARACTER.items())
def test_one_character_abbreviations_become_the_standard_name(abbreviation, standard):
    assert normalize_province(abbreviation).name == standard


@pytest.mark.parametrize(
    "raw, standard",
    [
        ("Beijing", "北京市"),
        ("guangdong", "广东省"),
        ("Guangdong Province", "广东省"),
        ("Shanxi", "山西省"),
        ("Shaanxi", "陕西省"),
        ("Inner Mongolia", "内蒙古自治区"),
        ("Inner Mongolia Autonomous Region", "内蒙古自治区"),
        ("Guangxi Zhuang Autonomous Region", "广西壮族自治区"),
        ("Xinjiang Uygur Autonomous Region", "新疆维吾尔自治区"),
        ("Tibet", "西藏自治区"),
        ("Hong Kong", "香港特别行政区"),
        ("Hong Kong SAR", "香港特别行政区"),
        ("Macao", "澳门特别行政区"),
        ("Chongqing Shi", "重庆市"),
        ("GD", "广东省"),
        ("CN-GD", "广东省"),
        ("cn-sn", "陕西省"),
        ("HA", "河南省"),
        ("CN-44", "广东省"),
        ("CN-11", "北京市"),
        ("CN-81", "香港特别行政区"),
        ("CN-91", "香港特别行政区"),
    ],
)
def test_latin_names_and_iso_codes_become_the_standard_name(raw, standard):
    assert normalize_province(raw).name == standard


@pytest.mark.parametrize(
    "raw, standard",
    [
        ("廣東", "广东省"),
        ("廣東省", "广东省"),
        ("臺灣", "台湾省"),
        ("台灣省", "台湾省"),
        ("黑龍江省", "黑龙江省"),
        ("內蒙古", "内蒙古自治区"),
        ("新疆維吾爾自治區", "新疆维吾尔自治区"),
        ("香港特別行政區", "香港特别行政区"),
        ("澳門", "澳门特别行政区"),
    ],
)
def test_traditional_characters_become_the_simplified_standard_name(raw, standard):
    assert normalize_province(raw).name == standard


@pytest.mark.parametrize("raw", ["  广东 ", "\u3000广东省\u3000", "广东\t", "广 东 省"])
def test_whitespace_around_a_province_is_ignored_and_raw_is_kept(raw):
    province = normalize_province(raw)
    assert (province.name, province.recognized, province.raw) == ("广东省", True, raw)


@pytest.mark.parametrize(
    "raw",
    [
        "广栋",  # typo
        "Guangdon",  # typo
        "吉林市",  # a city in 吉林省, not the province
        "北京省",  # wrong suffix
        "广州",  # a city
        "44",  # a bare number could be any platform's own province id
        "XX",
        "California",
    ],
)
def test_unknown_or_misspelled_provinces_are_not_guessed(raw):
    province = normalize_province(raw)
    assert (province.name, province.recognized, province.masked, province.raw) == (
        None, False, False, raw,
    )


@pytest.mark.parametrize("raw", ["广*", "**省", "*"])
def test_masked_province_stays_masked(raw):
    province = normalize_province(raw)
    assert (province.name, province.recognized, province.masked, province.raw) == (
        None, False, True, raw,
    )


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_missing_province_is_not_recognized(raw):
    province = normalize_province(raw)
    assert (province.name, province.recognized, province.masked) == (None, False, False)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, masked",
    [
        ("林*坤", True),
        ("138****8000", True),
        ("$Y/YKpKS$AgAA$0$$", True),
        ("~AgAAAAKj~e3T2~0~~", True),
        ("  ~AgAA~0~~", True),
        ("林小坤", False),
        ("13800138000", False),
        ("price 5$", False),  # only a leading '$' marks a ciphertext
        ("", False),
        (None, False),
    ],
)
def test_masked_values_are_told_apart_from_plain_ones(value, masked):
    assert is_masked(value) is masked


@pytest.mark.parametrize(
    "value, text",
    [
        ("  广东省  深圳市 ", "广东省 深圳市"),
        ("南山区\u3000科技园\t\n1号", "南山区 科技园 1号"),
        ("a\u200bb", "ab"),
        ("", None),
        ("\u3000 \t", None),
        (None, None),
        (518000, "518000"),
    ],
)
def test_text_is_trimmed_and_whitespace_collapsed(value, text):
    assert normalize_text(value) == text


@pytest.mark.parametrize(
    "value, amount",
    [
        ("12.5", Decimal("12.50")),
        (" 12.345 ", Decimal("12.35")),  # half-up, as a cashier rounds
        ("12.344", Decimal("12.34")),
        ("０.５", Decimal("0.50")),
        ("-3", Decimal("-3.00")),
        (7, Decimal("7.00")),
        (0.1 + 0.2, Decimal("0.30")),
        (19.99, Decimal("19.99")),
        (2.675, Decimal("2.68")),  # the binary float is 2.67499..., the buyer saw 2.675
        (Decimal("1.005"), Decimal("1.01")),
    ],
)
def test_amounts_become_decimals_in_cents(value, amount):
    result = normalize_amount(value)
    assert result == amount
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value",
    [
        "", "abc", "12,50", "¥12", "1.2.3", "NaN", "inf",
        float("nan"), Decimal("Infinity"), True, None, [1],
    ],
)
def test_garbage_amounts_are_refused_with_a_clear_message(value):
    with pytest.raises(ValueError, match="amount"):
        normalize_amount(value)


@pytest.mark.parametrize(
    "code, currency",
    [
        ("CNY", "CNY"), ("cny", "CNY"), (" usd ", "USD"),
        ("RMB", "CNY"), ("rmb", "CNY"), ("人民币", "CNY"),
    ],
)
def test_currencies_become_upper_case_iso_codes(code, currency):
    assert normalize_currency(code) == currency


@pytest.mark.parametrize("code", ["", "  ", "CN", "YUAN", "US$", "12A", None, 156])
def test_garbage_currencies_are_refused(code):
    with pytest.raises(ValueError, match="currency"):
        normalize_currency(code)
