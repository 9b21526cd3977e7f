"""Carrier choice from rate cards: who takes a parcel, at what price, and the sentence why."""

from decimal import Decimal
from pathlib import Path

import pytest

from oms.carrier_rules import load_carrier_rules
from oms.domain.shipping import CarrierRules, ParcelFacts, choose_carrier

CARRIERS_YAML = Path(__file__).resolve().parents[2] / "config" / "carriers.yaml"
SHANGHAI, GUANGDONG, TIBET = "上海市", "广东省", "西藏自治区"
# What the connectors can write back, as far as these tests need (platform -> carriers).
PLATFORM_CODES = {"pdd": {"SF", "ZTO", "YTO", "JD", "JT"}, "jd": {"SF", "ZTO", "YTO", "JD"},
                  "taobao": {"SF", "ZTO", "YTO", "JD", "JT"}}
CAINIAO_CODES = {"SF", "ZTO", "YTO", "STO", "YUNDA", "EMS", "JT"}


def terms(service="standard", max_kg=30, first=None, extra=None, **more):
    first = first or {"local": 4, "near": 5, "far": 6, "remote": 15}
    extra = extra or dict.fromkeys(first, 1)
    return {"service": service, "max_weight_kg": max_kg,
            "rate_card": {"first_kg": first, "extra_kg": extra}, **more}


def document(**changes):
    base = {
        "carriers": {
            "SF": terms("express", first={"local": 12, "near": 14, "far": 18, "remote": 23, "abroad": 110},
                        extra={"local": 2, "near": 4, "far": 6, "remote": 12, "abroad": 45}),
            "ZTO": terms(max_kg=20, first={"local": 3, "near": 4, "far": 6, "remote": 12}),
            "YTO": terms(first={"local": 3.5, "near": 4.5, "far": 6.5, "remote": 11}),
            "JT": terms(first={"local": 3.2, "near": 4.2, "far": 6.2, "remote": 13}),
        },
        "platforms": {"pdd": {"accepts": ["SF", "ZTO", "YTO"]}, "taobao": {"masked": "cainiao"}},
        "cainiao": {"sells": ["ZTO", "SF"]},
    }
    base.update(changes)
    return base


def rules(**changes) -> CarrierRules:
    return CarrierRules.from_mapping(document(**changes), source="carriers.yaml").checked_against(
        PLATFORM_CODES, CAINIAO_CODES, source="carriers.yaml")


def parcel(grams=1200, province=GUANGDONG, platform="pdd", **more) -> ParcelFacts:
    return ParcelFacts(grams, province, more.pop("warehouse", "WH-SH"), more.pop("warehouse_province", SHANGHAI),
                       platform, **more)


def test_the_cheapest_carrier_wins_and_the_sentence_names_every_price():
    choice = choose_carrier(parcel(), rules())
    # 1.2 kg is two started kilos; Shanghai to Guangdong is far: ZTO 6+1, YTO 6.5+1, SF 18+6.
    assert (choice.carrier, choice.cost, choice.service) == ("ZTO", Decimal("7"), "standard")
    assert choice.reason == ("ZTO: cheapest of 3 carriers that take 1.2 kg from WH-SH to 广东省 and that "
                             "Pinduoduo accepts (¥7.00; YTO ¥7.50, SF ¥24.00); ruled out: "
                             "not accepted by Pinduoduo (JT)")


def test_a_parcel_over_a_carriers_weight_limit_goes_to_the_next_cheapest():
    choice = choose_carrier(parcel(grams=25_000), rules())
    assert choice.carrier == "YTO"
    assert "over a 20 kg limit (ZTO)" in choice.reason and "25 kg" in choice.reason


def test_a_parcel_too_heavy_for_everyone_is_refused_with_each_limit():
    choice = choose_carrier(parcel(grams=35_000), rules())
    assert not choice.ok and choice.carrier is None and choice.cost is None
    assert choice.reason.startswith("no carrier can take 35 kg from WH-SH to 广东省")
    assert "over a 30 kg limit (SF, YTO)" in choice.reason and "over a 20 kg limit (ZTO)" in choice.reason


def test_a_province_a_carrier_does_not_serve_rules_it_out():
    changed = document()
    changed["carriers"]["ZTO"]["provinces"] = {"except": ["西藏"]}
    choice = choose_carrier(parcel(province=TIBET), rules(carriers=changed["carriers"]))
    assert choice.carrier == "YTO"  # remote: YTO 11+1 beats SF 23+12
    assert "not serving 西藏自治区 (ZTO)" in choice.reason


def test_a_zone_missing_from_every_rate_card_that_platform_accepts_is_a_refusal():
    choice = choose_carrier(parcel(country="US", province=None), rules(platforms={"pdd": {"accepts": ["ZTO", "YTO"]}}))
    assert not choice.ok
    assert "no abroad price to US (ZTO, YTO)" in choice.reason and "not accepted by Pinduoduo (SF, JT)" in choice.reason


def test_a_platform_that_accepts_none_of_the_carriers_gets_a_refusal_saying_so():
    choice = choose_carrier(parcel(), rules(platforms={"pdd": {"accepts": []}}))
    assert not choice.ok
    assert choice.reason.endswith("not accepted by Pinduoduo (SF, ZTO, YTO, JT)")


def test_platform_acceptance_is_what_the_file_names_within_what_the_connector_can_write_back():
    settled = rules()
    assert settled.accepted_by("pdd") == {"SF", "ZTO", "YTO"}
    # JD is not in the file: it accepts every configured carrier its connector can name.
    assert settled.accepted_by("jd") == {"SF", "ZTO", "YTO"}
    assert choose_carrier(parcel(platform="jd"), settled).carrier == "ZTO"


def test_carriers_without_an_account_are_ruled_out():
    choice = choose_carrier(parcel(), rules(), with_accounts={"SF", "YTO"})
    assert choice.carrier == "YTO"
    assert "no account configured (ZTO, JT)" in choice.reason


def test_a_masked_taobao_receiver_goes_via_cainiao_with_a_carrier_cainiao_sells():
    choice = choose_carrier(parcel(platform="taobao", cainiao_only=True), rules(), with_accounts=set())
    # YTO and JT are cheaper than SF but Cainiao does not sell them; no own account is needed.
    assert (choice.carrier, choice.via) == ("ZTO", "cainiao")
    assert choice.reason.startswith("ZTO via Cainiao: Taobao masks this receiver and only Cainiao opens its oaid; "
                                    "cheapest of 2 carriers Cainiao sells")
    assert "not sold through Cainiao (YTO, JT)" in choice.reason


def test_a_masked_parcel_too_heavy_for_what_cainiao_sells_is_refused():
    choice = choose_carrier(parcel(grams=31_000, platform="taobao", cainiao_only=True), rules())
    assert not choice.ok and choice.via == "cainiao"
    assert "not sold through Cainiao (YTO, JT)" in choice.reason


def test_equal_prices_go_to_the_lowest_code_every_time():
    same = {"local": 4, "near": 5, "far": 6, "remote": 15}
    carriers = {"YTO": terms(first=same), "ZTO": terms(first=same), "JT": terms(first=same)}
    tied = rules(carriers=carriers, platforms={}, cainiao={})
    choices = {choose_carrier(parcel(), tied).carrier for _ in range(5)}
    assert choices == {"JT"}
    assert "tied with YTO, ZTO and first by code" in choose_carrier(parcel(), tied).reason


def test_express_wanted_leaves_only_express_carriers():
    settled = rules(service={"express_skus": ["SKU-FAST"]})
    wanted = settled.service_for("pdd", "shop-a", ["SKU-0001", "SKU-FAST"])
    choice = choose_carrier(parcel(service=wanted), settled)
    assert (wanted, choice.carrier) == ("express", "SF")
    assert "express carrier" in choice.reason and "standard only, express wanted (ZTO, YTO)" in choice.reason


def test_a_carrier_that_does_not_collect_at_the_warehouse_is_ruled_out():
    changed = document()
    changed["carriers"]["ZTO"]["collects_at"] = ["WH-GZ"]
    choice = choose_carrier(parcel(), rules(carriers=changed["carriers"]))
    assert choice.carrier == "YTO" and "not collecting at WH-SH (ZTO)" in choice.reason


def test_a_parcel_over_a_volume_limit_is_ruled_out_when_its_volume_is_known():
    changed = document()
    changed["carriers"]["ZTO"]["max_volume_litres"] = 50
    settled = rules(carriers=changed["carriers"])
    assert choose_carrier(parcel(volume_litres=Decimal(60)), settled).carrier == "YTO"
    assert choose_carrier(parcel(), settled).carrier == "ZTO"


def test_an_unknown_receiver_province_cannot_be_priced():
    choice = choose_carrier(parcel(province=None), rules())
    assert not choice.ok and "the receiver's province is unknown" in choice.reason


@pytest.mark.parametrize(("changes", "message"), [
    ({"platforms": {"jd": {"accepts": ["JT"]}}},
     "platforms.jd.accepts: JT has no JD carrier code in the jd connector"),
    ({"platforms": {"wish": {"accepts": ["SF"]}}}, "platforms.wish: no connector for this platform"),
    ({"platforms": {"pdd": {"accepts": ["DHL"]}}}, "platforms.pdd.accepts: DHL has no terms under carriers"),
    ({"platforms": {"pdd": {"masked": "cainiao"}}}, "platforms.pdd.masked: Cainiao opens only Taobao's oaid"),
    ({"cainiao": {"sells": ["JD"]}}, "cainiao.sells: JD has no terms under carriers"),
    ({"carriers": {"SFX": terms()}}, "carriers.SFX: 'SFX' is not one of our carrier codes"),
    ({"carriers": {"SF": terms(service="overnight")}}, "carriers.SF.service: must be one of standard, express"),
    ({"carriers": {"SF": terms(max_kg=0)}}, "carriers.SF.max_weight_kg: must be a number above 0"),
    ({"carriers": {"SF": terms(first={"moon": 3})}}, "carriers.SF.rate_card.first_kg.moon: is not a zone"),
    ({"carriers": {"SF": terms(provinces={"only": ["Atlantis"]})}},
     "carriers.SF.provinces.only: 'Atlantis' is not a province of China"),
    ({"carriers": {"SF": {**terms(), "speed": 3}}}, "carriers.SF.speed: is not a setting here"),
])
def test_mistakes_in_the_file_stop_loading_with_the_key_named(changes, message):
    with pytest.raises(ValueError, match="carriers.yaml: ") as raised:
        rules(**changes)
    assert message in str(raised.value)


def test_cainiao_selling_a_carrier_it_has_no_cp_code_for_is_refused():
    with_jd = document(cainiao={"sells": ["JD"]})
    with_jd["carriers"]["JD"] = terms()
    with pytest.raises(ValueError, match="cainiao.sells: JD has no Cainiao cp_code"):
        CarrierRules.from_mapping(with_jd).checked_against(PLATFORM_CODES, CAINIAO_CODES)


def test_the_shipped_file_loads_against_the_real_connector_tables_and_ships_a_parcel():
    from tasks.resources import CAINIAO_CP_CODES, PLATFORM_CARRIER_CODES

    settled = load_carrier_rules(CARRIERS_YAML, platform_codes=PLATFORM_CARRIER_CODES,
                                 cainiao_codes=set(CAINIAO_CP_CODES))
    for platform, codes in PLATFORM_CARRIER_CODES.items():
        assert settled.accepted_by(platform) <= set(codes)
    assert choose_carrier(parcel(), settled).ok
    assert settled.cainiao_sells and settled.masked_route("taobao") == "cainiao"
