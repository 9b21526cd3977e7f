"""One customer across channels: which receiver records belong to the same person.

A record is one order's receiver as a platform gave it: name, phone, e-mail, address,
city, province, postcode, the platform and the platform's own buyer id. Records are
joined into customers in two ways, and the customer is the connected component of the
resulting graph (union-find, done as connected components over a sparse graph):

1. **Exact keys.** The same phone number (read into one canonical form whatever way it
   was written), the same e-mail address (lower case, "+tag" dropped), or the same
   platform buyer id on the same platform. One shared key is enough.
2. **Name and address.** Inside a block of records whose street address carries the same
   numbers (house, building, flat) in the same city, or the same numbers and the same
   first letter of the name, two records join when their names agree and their addresses
   are alike. Chinese names must agree exactly once spacing and width are gone, because
   one changed character in a two-character name is usually another person (a sibling or
   a parent at the same address); Latin names may differ by a typo.

What is never evidence on its own: a masked or encrypted value ("138****5678", "张*",
"$...$", an e-mail with '*'), a phone made of one repeated digit, a missing value. Two
people who share a masked phone therefore stay apart unless something real joins them.
The one use of masks (`masked_corroboration`): a record with a masked name joins a
record at the same address (same flat numbers, alike text) when its mask fits the other
name ("王*" and "王磊") and both phones show the same seven digits ("174****7463" and
"174 7078 7463"). The address is the evidence; the two masks only have to agree, which
a neighbour or a relative almost never does. A household (the same address, different
names) stays as separate customers.

Phones written without a country code are read with this policy, so that the same
number typed in different ways gives one key:

- with '+' or an international "00" prefix: the country code is as written;
- else, when the record's country is known (an optional `country` column, or a Chinese
  platform - taobao, pdd, jd, douyin - or a recognised Chinese province): read in that
  country, so "021-6234 5678" on Taobao is +86 21 6234 5678;
- else 11 digits starting 1[3-9] are a Chinese mobile, unless the digits after the
  leading 1 form a valid North American number (then it is +1 with its trunk prefix);
- else the digits, less one leading trunk '0', are kept as a national number. When
  exactly one number with a country code in the same batch has that national part, the
  record takes that number ("0412 345 678" on Amazon joins "+61 412 345 678");
  otherwise the national digits are the key as they are.

Everything is vectorised over the frame with pandas and numpy; the phonenumbers library
is asked once per distinct spelling that the fast Chinese-mobile path does not cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
from rapidfuzz import fuzz, process
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from oms.domain.normalize import PROVINCES, normalize_province

RECORD_COLUMNS = (
    "name", "phone", "email", "address", "city", "province", "postcode", "platform", "platform_buyer_id",
)
CHINESE_PLATFORMS = frozenset({"taobao", "tmall", "pdd", "pinduoduo", "jd", "douyin"})


@dataclass(frozen=True)
class MatchingPolicy:
    """The knobs of the resolver; the defaults are the ones measured in the benchmark.

    `fuzzy=False` leaves only the exact keys (the floor the benchmark compares against).
    Scores are rapidfuzz's 0-100. A block larger than `largest_block` is not compared
    pairwise (its pairs grow with the square); such blocks are mostly a shared building
    address typed without flat numbers, where names alone would join strangers anyway.
    """

    fuzzy: bool = True
    latin_name_score: float = 88.0
    address_score: float = 80.0
    address_scorer: str = "token_set_ratio"
    chinese_address_scorer: str = "partial_ratio"
    largest_block: int = 60
    masked_corroboration: bool = True


DEFAULT_POLICY = MatchingPolicy()

_ADDRESS_SCORERS = {
    "ratio": fuzz.ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "WRatio": fuzz.WRatio,
    "partial_ratio": fuzz.partial_ratio,
}


# ---------------------------------------------------------------------------
# the two entry points
# ---------------------------------------------------------------------------


def resolve_customers(records: pd.DataFrame, policy: MatchingPolicy = DEFAULT_POLICY) -> pd.Series:
    """A cluster id per record (int64, on the records' index): one id per person.

    The id is the position (0-based, in the frame's order) of the cluster's first record,
    so the same input always gives the same ids.
    """
    count = len(records)
    if count == 0:
        return pd.Series([], index=records.index, dtype="int64", name="customer")
    keys = _match_keys(records)
    lefts, rights = [np.arange(count)], [np.arange(count)]
    for column in ("phone_key", "email", "buyer"):
        left, right = _edges_sharing_a_key(keys[column].to_numpy(dtype=object))
        lefts.append(left)
        rights.append(right)
    if policy.fuzzy:
        left, right = _name_and_address_edges(records, policy)
        lefts.append(left)
        rights.append(right)
    labels = _first_position_of_component(np.concatenate(lefts), np.concatenate(rights), count)
    return pd.Series(labels, index=records.index, dtype="int64", name="customer")


def customer_match_keys(records: pd.DataFrame) -> pd.DataFrame:
    """The exact keys of each record, to find stored orders that may be the same customer.

    Columns: `phone` (E.164, None when masked, missing or of unknown country), `email`
    (normalised) and `buyer` ("platform:buyer_id"); None where a record has no such key.
    The pipeline fetches stored orders sharing any of them and resolves them together
    with the new batch.
    """
    keys = _match_keys(records)
    frame = pd.DataFrame(
        {"phone": keys["e164"], "email": keys["email"], "buyer": keys["buyer"]}, index=records.index
    )
    return frame.astype(object).where(frame != "", None)


def _match_keys(records: pd.DataFrame) -> pd.DataFrame:
    """Exact keys, "" where a record has none (cheaper than None in vectorised code)."""
    platform = _text(records, "platform").str.strip().str.lower()
    region = _region_hints(records, platform)
    phones = phone_keys(_text(records, "phone"), region)
    return pd.DataFrame(
        {
            "e164": phones["e164"].to_numpy(),
            "phone_key": phones["key"].to_numpy(),
            "email": _on_distinct(_text(records, "email"), email_keys).to_numpy(),
            "buyer": buyer_keys(platform, _text(records, "platform_buyer_id")).to_numpy(),
        },
        index=records.index,
    )


# ---------------------------------------------------------------------------
# reading the columns
# ---------------------------------------------------------------------------


def _text(records: pd.DataFrame, column: str) -> pd.Series:
    """The column as NFKC text, "" for missing; numbers (phones read from Excel) as digits."""
    if column not in records.columns:
        return pd.Series("", index=records.index, dtype=object)
    values = records[column]
    if pd.api.types.is_float_dtype(values):
        values = values.astype("Int64")
    values = values.astype(object)
    missing = values.isna().to_numpy()
    text = values.map(_one_value_as_text, na_action="ignore") if values.map(type).ne(str).any() else values
    text = pd.Series(np.where(missing, "", text.to_numpy(dtype=object)), index=records.index, dtype=object)
    return _on_distinct(text, lambda distinct: distinct.str.normalize("NFKC").str.strip())


def _on_distinct(values: pd.Series, transform):
    """`transform` run once per distinct value, spread back over the rows.

    Python-backed string columns cost a Python call per element and operation, and a
    buyer's orders repeat the same spellings, so working on distinct values pays.
    """
    codes, distinct = pd.factorize(values.to_numpy(dtype=object))
    result = transform(pd.Series(distinct, dtype=object))
    expanded = result.iloc[codes]
    expanded.index = values.index
    return expanded


def _one_value_as_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_masked(text: pd.Series) -> pd.Series:
    """Platform masks contain '*'; PDD ciphertexts start with '$' or '~' (see normalize)."""
    return text.str.contains("*", regex=False) | text.str.startswith(("$", "~"))


def _region_hints(records: pd.DataFrame, platform: pd.Series) -> pd.Series:
    """The country a phone without country code is read in, "" when nothing says."""
    region = pd.Series("", index=records.index, dtype=object)
    chinese_province = _text(records, "province").map(_is_chinese_province)
    region = region.mask(chinese_province.to_numpy(dtype=bool) | platform.isin(CHINESE_PLATFORMS).to_numpy(), "CN")
    if "country" in records.columns:
        country = _text(records, "country").str.upper()
        region = region.mask(country.str.fullmatch(r"[A-Z]{2}").to_numpy(dtype=bool), country)
    return region


@lru_cache(maxsize=4096)
def _is_chinese_province(text: str) -> bool:
    return bool(text) and normalize_province(text).name in PROVINCES


# ---------------------------------------------------------------------------
# phones
# ---------------------------------------------------------------------------

_EXTENSION = re.compile(r"\s*(?:转|轉|分机|分機|ext\.?|x|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_CHINESE_MOBILE = r"1[3-9]\d{9}"
# Filler numbers typed to get past a form ("13800000000", "0000000"): seven or more of
# one digit in a row is not a number anyone answers.
_FILLER = r".*(\d)\1{6,}.*"
_SHORTEST_NATIONAL = 7


def phone_keys(phone: pd.Series, region: pd.Series) -> pd.DataFrame:
    """`e164` (the number, when its country is known) and `key` (what to match on); "" if none.

    `key` is the E.164 form where it is known, else "national:<digits>"; see the module
    docstring for the policy on numbers without a country code.
    """
    spelled = pd.Series(phone.to_numpy(dtype=object) + "\x1f" + region.to_numpy(dtype=object), index=phone.index)
    read = _on_distinct(spelled, _read_distinct_phones)
    key = _phone_match_key(read)
    return pd.DataFrame({"e164": read["e164"].to_numpy(), "key": key.to_numpy()}, index=phone.index)


def _read_distinct_phones(spelled: pd.Series) -> pd.DataFrame:
    """`e164` with its national part `within`, or `national` digits when the country is unknown."""
    parts = spelled.str.split("\x1f", n=1, expand=True)
    text, region = parts[0].str.replace(_EXTENSION, "", regex=True), parts[1]
    usable = ~_is_masked(text) & text.str.fullmatch(r"[\d\s+\-.()]*\d[\d\s+\-.()]*")
    digits = text.str.replace(r"\D", "", regex=True)
    international = text.str.startswith("+") | digits.str.startswith("00")
    digits = digits.mask(~text.str.startswith("+") & digits.str.startswith("00"), digits.str.slice(2))

    blank = pd.Series("", index=spelled.index, dtype=object)
    e164, within, national = blank.copy(), blank.copy(), blank.copy()
    fast_international = usable & international & digits.str.fullmatch("86" + _CHINESE_MOBILE)
    fast_national = usable & ~international & (region == "CN") & digits.str.fullmatch(_CHINESE_MOBILE)
    e164 = e164.mask(fast_international, "+" + digits).mask(fast_national, "+86" + digits)
    within = within.mask(fast_international, digits.str.slice(2)).mask(fast_national, digits)

    slow = usable & ~fast_international & ~fast_national
    if slow.any():
        read = [_read_phone(d, i, r) for d, i, r in zip(digits[slow], international[slow], region[slow])]
        e164.loc[slow], within.loc[slow], national.loc[slow] = (list(column) for column in zip(*read))
    filler = within.str.fullmatch(_FILLER) | national.str.fullmatch(_FILLER)
    return pd.DataFrame({"e164": e164.mask(filler, ""), "within": within.mask(filler, ""),
                         "national": national.mask(filler, "")})


def _read_phone(digits: str, international: bool, region: str) -> tuple[str, str, str]:
    """(E.164, its national part, "") when the country is known, ("", "", national digits) when not."""
    if international:
        return _parsed("+" + digits, None) + ("",)
    if region:
        return _parsed(digits, region) + ("",)
    if re.fullmatch(r"1\d{10}", digits):
        north_american = _parsed("+" + digits, None, valid_only=True)
        if north_american[0]:
            return north_american + ("",)
        if re.fullmatch(_CHINESE_MOBILE, digits):
            return "+86" + digits, digits, ""
    national = digits[1:] if digits.startswith("0") else digits
    return ("", "", national) if len(national) >= _SHORTEST_NATIONAL else ("", "", "")


def _parsed(text: str, region: str | None, valid_only: bool = False) -> tuple[str, str]:
    """E.164 and national part of a number of plausible length ("", "" otherwise).

    Only the length is checked, not the number plan, so made-up numbers a buyer uses
    consistently still join his orders; the quality suite judges validity, not this.
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return "", ""
    accepted = phonenumbers.is_valid_number(number) if valid_only else phonenumbers.is_possible_number(number)
    if not accepted:
        return "", ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, e164[len(str(number.country_code)) + 1:]


def _phone_match_key(read: pd.DataFrame) -> pd.Series:
    """E.164 where known; a national number adopts the one E.164 in the batch ending in it."""
    known = read.loc[read["e164"] != "", ["within", "e164"]].drop_duplicates()
    unique = known.drop_duplicates("within", keep=False).set_index("within")["e164"]
    national = read["national"]
    adopted = national.map(unique).fillna("") if len(unique) else pd.Series("", index=read.index, dtype=object)
    key = read["e164"].mask(read["e164"] == "", adopted)
    return key.mask((key == "") & (national != ""), "national:" + national)


# ---------------------------------------------------------------------------
# e-mails and buyer ids
# ---------------------------------------------------------------------------

_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s.]+"
_DOTLESS_DOMAINS = ("@gmail.com", "@googlemail.com")


def email_keys(email: pd.Series) -> pd.Series:
    """Lower case, "+tag" dropped (and Gmail's dots); "" for masked or malformed."""
    text = email.str.lower()
    usable = ~_is_masked(text) & text.str.fullmatch(_EMAIL)
    parts = text.str.rsplit("@", n=1, expand=True).reindex(columns=[0, 1]).fillna("")
    local = parts[0].str.replace(r"\+.*$", "", regex=True)
    domain = "@" + parts[1].str.replace("googlemail.com", "gmail.com", regex=False)
    local = local.mask(domain.isin(_DOTLESS_DOMAINS), local.str.replace(".", "", regex=False))
    return (local + domain).where(usable & (local != ""), "")


def buyer_keys(platform: pd.Series, buyer_id: pd.Series) -> pd.Series:
    """"platform:buyer_id" ("" when either is missing or the id is masked)."""
    usable = (platform != "") & (buyer_id != "") & ~_is_masked(buyer_id)
    return (platform + ":" + buyer_id).where(usable, "")


# ---------------------------------------------------------------------------
# names and addresses
# ---------------------------------------------------------------------------

_CJK = r"[\u3400-\u9fff]"
# Spellings of one thing, so that "Baker Street Apt 5" and "Baker St #5" compare alike;
# unit words go altogether, the flat's number stays.
_LATIN_WORDS = {
    "street": "st", "road": "rd", "avenue": "ave", "drive": "dr", "lane": "ln", "boulevard": "blvd",
    "court": "ct", "place": "pl", "crescent": "cres", "terrace": "tce", "highway": "hwy", "jalan": "jln",
    "north": "n", "south": "s", "east": "e", "west": "w",
    **dict.fromkeys(("apartment", "apt", "unit", "suite", "ste", "flat", "no", "number"), ""),
}
_LATIN_WORD = re.compile(r"\b(?:" + "|".join(_LATIN_WORDS) + r")\b")
_CHINESE_WORDS = {"号楼": "栋", "幢": "栋", "座": "栋", "房": "室"}
_CHINESE_WORD = re.compile("|".join(_CHINESE_WORDS))
# Province, city and district at the start of a Chinese address are repeated by some
# platforms and left out by others; only the part after them is compared.
_CHINESE_ADMIN_PREFIX = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,8}?(?:省|自治区|特别行政区))?(?:[\u4e00-\u9fff]{2,4}?市)?"
    r"(?:[\u4e00-\u9fff]{1,4}?(?:区|县))?"
)
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_DIGIT_RUN = re.compile(r"\d+")
_CJK_CHARACTER = re.compile(_CJK)


def name_forms(name: pd.Series) -> pd.DataFrame:
    """`written` (casefolded, no punctuation) and `sorted` (Latin words sorted, so "Smith,
    John" meets "John Smith"); both "" when masked or missing. `mask` keeps a masked name
    as shown ("王*", "j*** s****"), for the corroboration rule."""
    folded = name.str.casefold()
    text = folded.str.replace(r"[^\w\s]|_", " ", regex=True)
    chinese = text.str.contains(_CJK)
    written = text.str.split().str.join(" ")
    ordered = text.str.split().map(lambda parts: " ".join(sorted(parts)))
    written = written.where(~chinese, text.str.replace(r"\s+", "", regex=True))
    ordered = ordered.where(~chinese, written)
    masked = _is_masked(name)
    shown_mask = folded.where(masked & ~folded.str.startswith(("$", "~")), "")
    return pd.DataFrame({"written": written.where(~masked, ""), "sorted": ordered.where(~masked, ""),
                         "mask": shown_mask, "chinese": chinese.to_numpy(dtype=bool)}, index=name.index)


def address_forms(address: pd.Series) -> pd.DataFrame:
    """`text` to compare (abbreviations unified), `numbers` (its digit runs, sorted) and
    `chinese` (spaces mean nothing in it, so they are gone); "" when masked or missing."""
    forms = [_address_form(value) for value in address.to_numpy(dtype=object)]
    return pd.DataFrame(forms, columns=["text", "numbers", "chinese"], index=address.index)


def _address_form(address: str) -> tuple[str, str, bool]:
    if not address or "*" in address or address.startswith(("$", "~")):
        return "", "", False
    text = address.casefold()
    chinese = bool(_CJK_CHARACTER.search(text))
    if chinese:
        text = _CHINESE_ADMIN_PREFIX.sub("", "".join(text.split()))
        text = _CHINESE_WORD.sub(lambda found: _CHINESE_WORDS[found[0]], text)
    text = _LATIN_WORD.sub(lambda found: _LATIN_WORDS[found[0]], _PUNCTUATION.sub(" ", text).replace("#", " "))
    numbers = "-".join(sorted(str(int(run)) for run in _DIGIT_RUN.findall(text)))
    return " ".join(text.split()), numbers, chinese


def _city_forms(city: pd.Series) -> pd.Series:
    text = city.str.casefold().str.replace(r"\s+|市$|\bcity\b", "", regex=True)
    return text.where(~_is_masked(city), "")


def _name_and_address_edges(records: pd.DataFrame, policy: MatchingPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of records whose names agree and whose addresses are alike, within blocks."""
    names = _on_distinct(_text(records, "name"), name_forms)
    addresses = _on_distinct(_text(records, "address"), address_forms)
    city = _on_distinct(_text(records, "city"), _city_forms)
    has_name = (names["sorted"] != "") | (policy.masked_corroboration & (names["mask"] != ""))
    comparable = has_name & (addresses["numbers"] != "")
    initial = (names["sorted"] + names["mask"]).str.slice(0, 1)
    blocks = [
        (addresses["numbers"] + "|" + city).where(comparable & (city != ""), ""),
        (addresses["numbers"] + "|" + initial).where(comparable, ""),
    ]
    pairs = [_pairs_within_blocks(block.to_numpy(dtype=object), policy.largest_block) for block in blocks]
    left = np.concatenate([p[0] for p in pairs])
    right = np.concatenate([p[1] for p in pairs])
    if len(left) == 0:
        return left, right
    left, right = _unique_pairs(left, right, len(records))
    address_score = _address_scores(addresses, left, right, policy)
    names_agree = _names_agree(names, left, right, policy)
    if policy.masked_corroboration:
        names_agree |= _masks_corroborate(names, _text(records, "phone"), left, right)
    accepted = names_agree & (address_score >= policy.address_score)
    return left[accepted], right[accepted]


def _address_scores(addresses: pd.DataFrame, left: np.ndarray, right: np.ndarray,
                    policy: MatchingPolicy) -> np.ndarray:
    """Each pair's address similarity, Chinese pairs with their own scorer (no words to split)."""
    text = addresses["text"].to_numpy(dtype=object)
    chinese = addresses["chinese"].to_numpy(dtype=bool)
    either = chinese[left] | chinese[right]
    scores = np.empty(len(left), dtype=np.float64)
    for subset, scorer_name in ((either, policy.chinese_address_scorer), (~either, policy.address_scorer)):
        scorer = _ADDRESS_SCORERS[scorer_name]
        scores[subset] = process.cpdist(text[left[subset]], text[right[subset]], scorer=scorer, workers=-1)
    return scores


def _names_agree(names: pd.DataFrame, left: np.ndarray, right: np.ndarray, policy: MatchingPolicy) -> np.ndarray:
    """Chinese names equal (see the module docstring); Latin names alike as written or sorted."""
    written = names["written"].to_numpy(dtype=object)
    ordered = names["sorted"].to_numpy(dtype=object)
    chinese = names["chinese"].to_numpy(dtype=bool)
    present = (ordered[left] != "") & (ordered[right] != "")
    as_written = process.cpdist(written[left], written[right], scorer=fuzz.ratio, workers=-1)
    as_sorted = process.cpdist(ordered[left], ordered[right], scorer=fuzz.ratio, workers=-1)
    latin_alike = np.maximum(as_written, as_sorted) >= policy.latin_name_score
    return present & np.where(chinese[left] | chinese[right], ordered[left] == ordered[right], latin_alike)


def _masks_corroborate(names: pd.DataFrame, phones: pd.Series, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A masked name and a masked phone that both fit the other record's (the address is checked by the caller).

    Neither mask is evidence alone; together, at an address with the same flat number,
    a stranger would need the same surname and the same seven shown phone digits.
    """
    visible = _on_distinct(phones, _visible_phone_digits).to_numpy(dtype=object)
    mask = names["mask"].to_numpy(dtype=object)
    written = names["written"].to_numpy(dtype=object)
    one_masked = (mask[left] != "") != (mask[right] != "")
    candidates = np.flatnonzero(one_masked & (visible[left] != "") & (visible[right] != ""))
    agree = np.zeros(len(left), dtype=bool)
    for at in candidates:
        a, b = left[at], right[at]
        shown, full = (mask[a], written[b]) if mask[a] else (mask[b], written[a])
        agree[at] = visible[a] == visible[b] and _mask_fits(shown, full)
    return agree


def _visible_phone_digits(phone: pd.Series) -> pd.Series:
    """"138|8000" for "138****8000" or "13800138000": the three first and four last digits."""
    digits = phone.str.replace(r"[^\d*]", "", regex=True).str.replace(r"^(?:0086|86)(?=1\d{2}[\d*]{4}\d{4}$)", "",
                                                                       regex=True)
    shape = digits.str.fullmatch(r"1\d{2}(?:\*{4}|\d{4})\d{4}")
    return (digits.str.slice(0, 3) + "|" + digits.str.slice(-4)).where(shape, "")


def _mask_fits(mask: str, name: str) -> bool:
    """"王*" fits "王磊", "j*** s****" fits "john smith": every shown letter where it is."""
    if not name:
        return False
    mask_words, name_words = mask.split(), name.split()
    if len(mask_words) != len(name_words):
        return False
    return all(word.split("*")[0] and other.startswith(word.split("*")[0])
               for word, other in zip(mask_words, name_words))


def _pairs_within_blocks(block: np.ndarray, largest_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions that share a non-empty block key, blocks up to a size."""
    codes, _ = pd.factorize(block)
    codes = np.where(block == "", -1, codes)
    members = np.flatnonzero(codes >= 0)
    members = members[np.argsort(codes[members], kind="stable")]
    sorted_codes = codes[members]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(members) else members
    sizes = np.diff(np.r_[starts, len(members)])
    lefts, rights = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    for size in np.unique(sizes):
        if size < 2 or size > largest_block:
            continue
        block_starts = starts[sizes == size]
        first, second = np.triu_indices(size, k=1)
        lefts.append(members[(block_starts[:, None] + first).ravel()])
        rights.append(members[(block_starts[:, None] + second).ravel()])
    return np.concatenate(lefts), np.concatenate(rights)


def _unique_pairs(left: np.ndarray, right: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.minimum(left, right), np.maximum(left, right)
    unique = np.unique(low.astype(np.int64) * count + high)
    return unique // count, unique % count


# ---------------------------------------------------------------------------
# joining
# ---------------------------------------------------------------------------


def _edges_sharing_a_key(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each record with a key, joined to the first record holding the same key."""
    codes, _ = pd.factorize(keys)
    holders = np.flatnonzero(keys != "")
    if len(holders) == 0:
        return holders, holders
    first = pd.Series(holders).groupby(codes[holders]).transform("min").to_numpy()
    return holders, first


def _first_position_of_component(left: np.ndarray, right: np.ndarray, count: int) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    first = np.full(component.max() + 1, count, dtype=np.int64)
    np.minimum.at(first, component, np.arange(count, dtype=np.int64))
    return first[component]
