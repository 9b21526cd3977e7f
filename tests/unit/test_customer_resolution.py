"""One customer across channels: the resolver's pairwise quality on a labelled set, and
the behaviours a seller would notice (masks never join strangers, formats do not split
one buyer, odd input does not crash)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oms.domain.identity import MatchingPolicy, customer_match_keys, resolve_customers
from tests.customer_records import labelled_customer_records

F1_FLOOR = 0.95


def pairwise_scores(truth: pd.Series, clusters: pd.Series) -> tuple[float, float, float]:
    """Precision, recall and F1 over record pairs, from contingency counts (no pair list)."""

    def pairs(counts: np.ndarray) -> int:
        return int((counts * (counts - 1) // 2).sum())

    together = pairs(pd.DataFrame({"t": truth.to_numpy(), "c": clusters.to_numpy()}).value_counts().to_numpy())
    predicted, actual = pairs(clusters.value_counts().to_numpy()), pairs(truth.value_counts().to_numpy())
    precision = together / predicted if predicted else 1.0
    recall = together / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def record(**fields) -> dict:
    blank = dict.fromkeys(("name", "phone", "email", "address", "city", "province", "postcode", "platform",
                           "platform_buyer_id"))
    return blank | fields


def clusters_of(*rows: dict, index=None) -> list[int]:
    return resolve_customers(pd.DataFrame(list(rows), index=index)).tolist()


@pytest.fixture(scope="module")
def labelled():
    records = labelled_customer_records(1500, seed=8)
    return records.drop(columns="person"), records["person"]


def test_the_resolver_finds_one_customer_per_person_on_the_labelled_set(labelled):
    records, truth = labelled
    precision, recall, f1 = pairwise_scores(truth, resolve_customers(records))
    floor = pairwise_scores(truth, resolve_customers(records, MatchingPolicy(fuzzy=False)))
    summary = (f"{len(records)} records of {truth.nunique()} people: precision {precision:.4f}, recall {recall:.4f}, "
               f"F1 {f1:.4f}; exact keys only: precision {floor[0]:.4f}, recall {floor[1]:.4f}, F1 {floor[2]:.4f}")
    print("\n" + summary)
    assert f1 >= F1_FLOOR, summary


def test_two_people_who_share_a_masked_phone_stay_two_customers():
    first = record(name="王芳", phone="138****8000", address="人民路1号1栋101室", city="上海市", platform="taobao")
    second = record(name="李娜", phone="138****8000", address="建设路9号3栋902室", city="北京市", platform="taobao")
    masked_names = [record(name="张*", phone="138****8000", platform="pdd")] * 2
    assert len(set(clusters_of(first, second))) == 2
    assert len(set(clusters_of(*masked_names))) == 2


def test_one_number_in_international_and_national_form_is_one_customer():
    rows = [record(name="刘洋", phone=phone, platform=platform) for phone, platform in
            (("+86 138 0013 8000", "shopify"), ("13800138000", "taobao"), ("0086-138-0013-8000", "amazon"),
             ("138-0013-8000", "jd"))]
    assert len(set(clusters_of(*rows))) == 1


def test_a_national_number_abroad_joins_the_same_number_written_with_its_country_code():
    rows = [record(phone="+61 491 570 006", platform="amazon"), record(phone="0491 570 006", platform="shopify"),
            record(phone="(415) 555-0123", platform="amazon"), record(phone="+1 415 555 0123", platform="shopify")]
    assert clusters_of(*rows) == [0, 0, 2, 2]


def test_the_same_platform_buyer_id_is_one_customer_but_not_across_platforms():
    rows = [record(name="A", platform="shopee", platform_buyer_id="12345"),
            record(name="B", platform="shopee", platform_buyer_id="12345"),
            record(name="C", platform="lazada", platform_buyer_id="12345")]
    assert clusters_of(*rows) == [0, 0, 2]


def test_a_household_at_one_address_is_several_customers_and_a_typo_is_not():
    address = dict(address="2784 Elm Drive, Apt 29", city="Boston", platform="shopify")
    rows = [record(name="Arjun Wong", **address), record(name="Mary Wong", **address),
            record(name="Arjun Wnog", **(address | {"address": "#29, 2784 Elm Dr."})), record(name="王芳", **address)]
    assert clusters_of(*rows) == [0, 1, 0, 3]


def test_the_records_index_is_kept_and_ids_are_positions_of_the_first_record():
    rows = [record(email="a@example.com"), record(email="b@example.com"), record(email=" A@Example.com ")]
    result = resolve_customers(pd.DataFrame(rows, index=["x", "y", "z"]))
    assert result.index.tolist() == ["x", "y", "z"]
    assert result.dtype == np.int64
    assert result.tolist() == [0, 1, 0]


def test_missing_values_everywhere_do_not_crash_and_join_nobody():
    frame = pd.DataFrame({"name": [None, np.nan, "", "  "], "phone": [np.nan, None, "", 13800138000.0],
                          "email": [None, "", np.nan, "*****"], "address": [np.nan] * 4, "platform": [None] * 4})
    assert clusters_of(*frame.to_dict("records")) == [0, 1, 2, 3]


def test_an_empty_frame_gives_an_empty_series():
    result = resolve_customers(pd.DataFrame(columns=["name", "phone", "email"]))
    assert result.empty and result.dtype == np.int64


def test_the_same_input_always_gives_the_same_ids(labelled):
    records, _ = labelled
    assert resolve_customers(records).equals(resolve_customers(records.copy()))


def test_match_keys_give_e164_phones_and_nothing_for_masks():
    rows = [record(phone="+86 138 0013 8000", email="Li+shop@Example.com", platform="jd", platform_buyer_id="77"),
            record(phone="138****8000", email="l****@example.com", platform="taobao", platform_buyer_id="t**5")]
    keys = customer_match_keys(pd.DataFrame(rows, index=[10, 20]))
    assert keys.loc[10].tolist() == ["+8613800138000", "li@example.com", "jd:77"]
    assert keys.loc[20].tolist() == [None, None, None]
