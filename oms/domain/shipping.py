"""Carrier choice from rate cards: which carrier takes a parcel, at what cost, and why.

A carrier can take a parcel when every one of these holds, checked in this order (the
first that fails is the reason it is ruled out):

    account    the seller has an account with it (the task says which carriers do);
               a parcel Cainiao prints needs none of its own: the shop's subscription
    cainiao    a receiver only Cainiao can open (Taobao's oaid) goes with a carrier
               Cainiao sells
    platform   the parcel's platform accepts the carrier's tracking numbers
    warehouse  the carrier collects at the parcel's warehouse
    service    it offers the service level wanted (express also serves standard)
    weight     the parcel is within its weight limit
    volume     the parcel is within its volume limit (when the volume is known)
    province   it serves the receiver's province
    zone       its rate card prices the parcel's zone (local, near, far, remote, abroad;
               see `oms.domain.geography`)

The cheapest of those that can wins; equal prices go to the lowest carrier code, so the
same parcel always gets the same carrier. Every choice carries one sentence an operator
can read, naming the figures; when no carrier can take the parcel the choice is a
refusal whose sentence says what ruled each carrier out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from oms.domain.carriers import Carrier
from oms.domain.geography import parcel_zone
from oms.domain.normalize import normalize_province
from oms.domain.routing import RateCard

SERVICE_LEVELS = ("standard", "express")  # a later level also serves an earlier want
CAINIAO = "cainiao"
# Cainiao opens Taobao's oaid (Tmall shops sell through the same Taobao platform code).
CAINIAO_PLATFORMS = frozenset({"taobao"})
PLATFORM_NAMES = {
    "pdd": "Pinduoduo", "taobao": "Taobao", "jd": "JD", "douyin": "Douyin", "shopee": "Shopee",
    "lazada": "Lazada", "amazon": "Amazon", "shopify": "Shopify", "spreadsheet": "spreadsheet shops",
}  # fmt: skip


@dataclass(frozen=True)
class CarrierTerms:
    """What one carrier offers the seller: its service, limits, reach and prices."""

    code: str
    service: str
    rate_card: RateCard
    max_weight_grams: int
    max_volume_litres: Decimal | None = None  # None: no limit configured
    warehouses: frozenset[str] | None = None  # None: collects at every warehouse
    only_provinces: frozenset[str] | None = None  # None: every province
    except_provinces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PlatformTerms:
    # None until checked against the connector: every carrier its table can express.
    accepts: frozenset[str] | None = None
    service: str | None = None  # this platform's parcels want this level by default
    masked_via: str | None = None  # "cainiao": receivers only Cainiao opens go through it


@dataclass(frozen=True)
class CarrierRules:
    carriers: Mapping[str, CarrierTerms]
    platforms: Mapping[str, PlatformTerms] = field(default_factory=dict)
    cainiao_sells: frozenset[str] = frozenset()
    default_service: str = "standard"
    express_shops: frozenset[str] = frozenset()
    express_skus: frozenset[str] = frozenset()

    def service_for(self, platform: str, shop: str | None = None, skus: Iterable[str] = ()) -> str:
        """Express for the shops and SKUs named so, else the platform's level, else the default."""
        if shop in self.express_shops or any(sku in self.express_skus for sku in skus):
            return "express"
        own = self.platforms.get(platform)
        return (own.service if own and own.service else None) or self.default_service

    def accepted_by(self, platform: str) -> frozenset[str]:
        own = self.platforms.get(platform)
        if own is None or own.accepts is None:
            return frozenset(self.carriers)
        return own.accepts

    def masked_route(self, platform: str) -> str | None:
        own = self.platforms.get(platform)
        return own.masked_via if own else None

    def checked_against(self, platform_codes: Mapping[str, Collection[str]],
                        cainiao_codes: Collection[str] = (), *, source: str = "carrier rules") -> CarrierRules:
        """These rules with each platform's accepted carriers settled against its connector.

        A platform's accepted carriers are the ones named in the file that its connector has
        a code for; naming one it has none for is an error (its tracking number could never
        be written back), as is a platform with no connector or Cainiao selling a carrier
        Cainiao has no cp_code for. Platforms the file leaves out accept every configured
        carrier their connector can express.
        """
        platforms = dict(self.platforms)
        for platform in platforms:
            if platform not in platform_codes:
                raise _bad(source, f"platforms.{platform}",
                           f"no connector for this platform (known: {', '.join(sorted(platform_codes))})")
        for platform, codes in platform_codes.items():
            expressible = frozenset(str(code) for code in codes)
            own = platforms.get(platform, PlatformTerms())
            if own.accepts is None:
                accepts = frozenset(self.carriers) & expressible
            else:
                unknown = sorted(own.accepts - expressible)
                if unknown:
                    name = PLATFORM_NAMES.get(platform, platform)
                    raise _bad(source, f"platforms.{platform}.accepts",
                               f"{', '.join(unknown)} has no {name} carrier code in the {platform} connector, so its "
                               f"tracking number could never be written back (the connector knows: "
                               f"{', '.join(sorted(expressible)) or 'none'}); remove it here or map it there")
                accepts = own.accepts
            platforms[platform] = replace(own, accepts=accepts)
        if self.cainiao_sells and cainiao_codes:
            unknown = sorted(self.cainiao_sells - frozenset(str(c) for c in cainiao_codes))
            if unknown:
                raise _bad(source, "cainiao.sells", f"{', '.join(unknown)} has no Cainiao cp_code in the cainiao "
                                                   f"connector (it knows: {', '.join(sorted(cainiao_codes))})")
        return replace(self, platforms=platforms)

    @classmethod
    def from_mapping(cls, document: object, *, source: str = "carrier rules") -> CarrierRules:
        """Read the carrier file's document; every mistake is a ValueError naming the key."""
        if not isinstance(document, Mapping):
            raise _bad(source, "(top)", "must be a mapping with carriers, platforms, cainiao, service")
        _refuse_unknown(document, {"carriers", "platforms", "cainiao", "service"}, source, "")
        section = document.get("carriers")
        if not isinstance(section, Mapping) or not section:
            raise _bad(source, "carriers", "must map our carrier codes (SF, ZTO, ...) to their terms")
        carriers = {}
        for code, entry in section.items():
            carriers[_carrier_code(code, source, f"carriers.{code}")] = _carrier_terms(str(code), entry, source)
        service = _mapping(document.get("service"), source, "service")
        _refuse_unknown(service, {"default", "express_shops", "express_skus"}, source, "service")
        default_service = _service(service.get("default", "standard"), source, "service.default")
        cainiao = _mapping(document.get("cainiao"), source, "cainiao")
        _refuse_unknown(cainiao, {"sells"}, source, "cainiao")
        sells = frozenset(_carrier_code(c, source, "cainiao.sells") for c in _list(cainiao.get("sells"), source,
                                                                                  "cainiao.sells"))
        for code in sorted(sells - set(carriers)):
            raise _bad(source, "cainiao.sells", f"{code} has no terms under carriers, so it cannot be priced")
        platforms = {str(name): _platform_terms(str(name), entry, carriers, sells, source)
                     for name, entry in _mapping(document.get("platforms"), source, "platforms").items()}
        return cls(
            carriers=carriers, platforms=platforms, cainiao_sells=sells, default_service=default_service,
            express_shops=frozenset(str(s) for s in _list(service.get("express_shops"), source, "service.express_shops")),
            express_skus=frozenset(str(s) for s in _list(service.get("express_skus"), source, "service.express_skus")),
        )


@dataclass(frozen=True)
class ParcelFacts:
    """What the choice looks at for one physical parcel."""

    weight_grams: int
    province: str | None  # the receiver's canonical province; None when unknown
    warehouse: str  # the warehouse code
    warehouse_province: str | None
    platform: str
    country: str = "CN"
    volume_litres: Decimal | None = None
    service: str | None = None  # None: the rules' level for the platform
    cainiao_only: bool = False  # a receiver only Cainiao can open (Taobao's oaid)


@dataclass(frozen=True)
class CarrierChoice:
    carrier: str | None  # None: no carrier can take the parcel (see reason)
    service: str | None
    cost: Decimal | None
    reason: str
    via: str | None = None  # "cainiao" when Cainiao issues the number, else the carrier's own account
    zone: str | None = None

    @property
    def ok(self) -> bool:
        return self.carrier is not None


def choose_carrier(parcel: ParcelFacts, rules: CarrierRules,
                   with_accounts: Collection[str] | None = None) -> CarrierChoice:
    """The cheapest carrier that can take the parcel, or a refusal saying why none can.

    `with_accounts` names the carriers the seller has an account with (None: all of them).
    """
    wanted = parcel.service or rules.service_for(parcel.platform)
    zone = parcel_zone(parcel.warehouse_province, parcel.province, parcel.country)
    what = _what(parcel)
    if zone is None:
        missing = (f"warehouse {parcel.warehouse} has no province" if parcel.warehouse_province is None
                   else "the receiver's province is unknown")
        return CarrierChoice(None, wanted, None, f"no carrier can be priced for {what}: {missing}")
    priced: list[tuple[Decimal, str]] = []
    ruled_out: dict[str, list[str]] = {}  # why -> carriers, in file order
    for code, terms in rules.carriers.items():
        why = _ruled_out(terms, parcel, rules, wanted, zone, with_accounts)
        if why:
            ruled_out.setdefault(why, []).append(code)
        else:
            priced.append((terms.rate_card.price(zone, parcel.weight_grams), code))
    via = CAINIAO if parcel.cainiao_only else None
    if not priced:
        return CarrierChoice(None, wanted, None, f"no carrier can take {what}: {_listed(ruled_out)}",
                             via=via, zone=zone)
    priced.sort()
    cost, code = priced[0]
    return CarrierChoice(code, rules.carriers[code].service, cost,
                         _reason(code, cost, priced, ruled_out, parcel, wanted), via=via, zone=zone)


def _ruled_out(terms: CarrierTerms, parcel: ParcelFacts, rules: CarrierRules, wanted: str, zone: str,
               with_accounts: Collection[str] | None) -> str | None:
    platform = PLATFORM_NAMES.get(parcel.platform, parcel.platform)
    if parcel.cainiao_only:
        if terms.code not in rules.cainiao_sells:
            return "not sold through Cainiao"
    elif with_accounts is not None and terms.code not in with_accounts:
        return "no account configured"
    if terms.code not in rules.accepted_by(parcel.platform):
        return f"not accepted by {platform}"
    if terms.warehouses is not None and parcel.warehouse not in terms.warehouses:
        return f"not collecting at {parcel.warehouse}"
    if SERVICE_LEVELS.index(terms.service) < SERVICE_LEVELS.index(wanted):
        return f"{terms.service} only, {wanted} wanted"
    if parcel.weight_grams > terms.max_weight_grams:
        return f"over a {_kg(terms.max_weight_grams)} kg limit"
    if (parcel.volume_litres is not None and terms.max_volume_litres is not None
            and parcel.volume_litres > terms.max_volume_litres):
        return f"over a {terms.max_volume_litres} litre limit"
    destination = parcel.province or parcel.country
    if parcel.province and (parcel.province in terms.except_provinces
                            or (terms.only_provinces is not None and parcel.province not in terms.only_provinces)):
        return f"not serving {destination}"
    if not terms.rate_card.covers(zone):
        return f"no {zone} price to {destination}"
    return None


def _reason(code: str, cost: Decimal, priced: list[tuple[Decimal, str]], ruled_out: dict[str, list[str]],
            parcel: ParcelFacts, wanted: str) -> str:
    platform = PLATFORM_NAMES.get(parcel.platform, parcel.platform)
    level = "express " if wanted == "express" else ""
    noun = "carrier" if len(priced) == 1 else "carriers"
    sold = " Cainiao sells" if parcel.cainiao_only else ""
    take = "takes" if len(priced) == 1 else "take"
    what = f"{level}{noun}{sold} that {take} {_what(parcel)} and that {platform} accepts"
    head = f"{code} via Cainiao" if parcel.cainiao_only else code
    if parcel.cainiao_only:
        head += f": {platform} masks this receiver and only Cainiao opens its oaid;"
    else:
        head += ":"
    if len(priced) == 1:
        sentence = f"{head} the only {what} (¥{cost:.2f})"
    else:
        others = ", ".join(f"{other} ¥{price:.2f}" for price, other in priced[1:])
        tied = [other for price, other in priced[1:] if price == cost]
        tie = f", tied with {', '.join(tied)} and first by code" if tied else ""
        sentence = f"{head} cheapest of {len(priced)} {what} (¥{cost:.2f}{tie}; {others})"
    if ruled_out:
        sentence += f"; ruled out: {_listed(ruled_out)}"
    return sentence


def _listed(ruled_out: dict[str, list[str]]) -> str:
    return "; ".join(f"{why} ({', '.join(codes)})" for why, codes in ruled_out.items())


def _what(parcel: ParcelFacts) -> str:
    destination = parcel.province or parcel.country
    return f"{_kg(parcel.weight_grams)} kg from {parcel.warehouse} to {destination}"


def _kg(grams: int) -> str:
    return format(Decimal(grams) / 1000, "f").rstrip("0").rstrip(".") if grams % 1000 else str(grams // 1000)


# ---------------------------------------------------------------------------
# reading the file's document
# ---------------------------------------------------------------------------

CARRIER_KEYS = {"service", "collects_at", "max_weight_kg", "max_volume_litres", "provinces", "rate_card"}


def _carrier_terms(code: str, entry: object, source: str) -> CarrierTerms:
    key = f"carriers.{code}"
    entry = _mapping(entry, source, key)
    _refuse_unknown(entry, CARRIER_KEYS, source, key)
    for needed in ("service", "max_weight_kg", "rate_card"):
        if needed not in entry:
            raise _bad(source, f"{key}.{needed}", "is required")
    collects = entry.get("collects_at", "all")
    warehouses = None if collects == "all" else frozenset(str(w) for w in _list(collects, source,
                                                                                  f"{key}.collects_at"))
    only, excluded = _provinces(entry.get("provinces", "all"), source, f"{key}.provinces")
    return CarrierTerms(
        code=code, service=_service(entry["service"], source, f"{key}.service"),
        rate_card=RateCard.from_mapping(entry["rate_card"], source=source, key=f"{key}.rate_card"),
        max_weight_grams=int(_positive(entry["max_weight_kg"], source, f"{key}.max_weight_kg") * 1000),
        max_volume_litres=(None if entry.get("max_volume_litres") is None
                           else _positive(entry["max_volume_litres"], source, f"{key}.max_volume_litres")),
        warehouses=warehouses, only_provinces=only, except_provinces=excluded,
    )


def _platform_terms(name: str, entry: object, carriers: Mapping[str, CarrierTerms], sells: frozenset[str],
                    source: str) -> PlatformTerms:
    key = f"platforms.{name}"
    entry = _mapping(entry, source, key)
    _refuse_unknown(entry, {"accepts", "service", "masked"}, source, key)
    accepts = None
    if "accepts" in entry:
        accepts = frozenset(_carrier_code(c, source, f"{key}.accepts") for c in _list(entry["accepts"], source,
                                                                                      f"{key}.accepts"))
        for code in sorted(accepts - set(carriers)):
            raise _bad(source, f"{key}.accepts", f"{code} has no terms under carriers")
    service = None if entry.get("service") is None else _service(entry["service"], source, f"{key}.service")
    masked = entry.get("masked")
    if masked is not None:
        if masked != CAINIAO:
            raise _bad(source, f"{key}.masked", f"the only route for masked receivers is cainiao, got {masked!r}")
        if name not in CAINIAO_PLATFORMS:
            raise _bad(source, f"{key}.masked", "Cainiao opens only Taobao's oaid receivers")
        if not sells:
            raise _bad(source, f"{key}.masked", "cainiao.sells names no carrier, so Cainiao could print nothing")
    return PlatformTerms(accepts=accepts, service=service, masked_via=masked)


def _provinces(value: object, source: str, key: str) -> tuple[frozenset[str] | None, frozenset[str]]:
    if value == "all":
        return None, frozenset()
    value = _mapping(value, source, key)
    _refuse_unknown(value, {"only", "except"}, source, key)
    if "only" in value and "except" in value:
        raise _bad(source, key, "give only or except, not both")

    def names(part: str) -> frozenset[str]:
        found = set()
        for raw in _list(value.get(part), source, f"{key}.{part}"):
            name = normalize_province(str(raw)).name
            if name is None:
                raise _bad(source, f"{key}.{part}", f"{raw!r} is not a province of China")
            found.add(name)
        return frozenset(found)

    return (names("only") if "only" in value else None), names("except")


def _carrier_code(value: object, source: str, key: str) -> str:
    try:
        return Carrier(str(value)).value
    except ValueError:
        raise _bad(source, key, f"{value!r} is not one of our carrier codes "
                                f"({', '.join(c.value for c in Carrier)})") from None


def _service(value: object, source: str, key: str) -> str:
    if value not in SERVICE_LEVELS:
        raise _bad(source, key, f"must be one of {', '.join(SERVICE_LEVELS)}, got {value!r}")
    return str(value)


def _positive(value: object, source: str, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(source, key, f"must be a number above 0, got {value!r}")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise _bad(source, key, f"must be a number above 0, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise _bad(source, key, f"must be a number above 0, got {value!r}")
    return number


def _mapping(value: object, source: str, key: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(source, key, "must be a mapping")
    return value


def _list(value: object, source: str, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(source, key, "must be a list")
    return value


def _refuse_unknown(data: Mapping, known: set[str], source: str, key: str) -> None:
    for name in data:
        if name not in known:
            where = f"{key}.{name}" if key else str(name)
            raise _bad(source, where, f"is not a setting here (allowed: {', '.join(sorted(known))})")


def _bad(source: str, key: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {key}: {problem}")
