"""Where provinces are, how far apart they are, and which price zone a parcel falls in.

Each provincial-level division is placed at its capital (for the municipalities and
special administrative regions, the city itself). The distance between two provinces is
the great-circle distance between those capitals, in whole kilometres; the same province
is 0 km. Capitals stand in for a province well enough to rank warehouses, not to quote a
driving distance; a seller who knows better passes overrides (from config/routing.yaml),
and those win.

Price zones follow how Chinese express companies usually quote:

    local    origin and destination in the same province
    remote   destination in Xinjiang, Tibet, Qinghai, Inner Mongolia, Ningxia, Gansu or
             Hainan: the regions carriers surcharge, whatever the distance
    near     other provinces whose capital is at most NEAR_ZONE_KM away
    far      everything else on the mainland
    abroad   the receiver is outside China, or either end is in Hong Kong, Macao or
             Taiwan: those parcels clear customs and are priced like international ones

A zone that cannot be known (the receiver's province is masked or unknown, or the
warehouse has no province) is None; callers must say so rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations

from oms.domain.normalize import PROVINCES

# Latitude and longitude (degrees north, degrees east) of each province's capital.
CAPITALS: dict[str, tuple[float, float]] = {
    "北京市": (39.904, 116.407),  # Beijing
    "天津市": (39.084, 117.201),  # Tianjin
    "河北省": (38.042, 114.515),  # Shijiazhuang
    "山西省": (37.871, 112.549),  # Taiyuan
    "内蒙古自治区": (40.842, 111.749),  # Hohhot
    "辽宁省": (41.806, 123.432),  # Shenyang
    "吉林省": (43.817, 125.324),  # Changchun
    "黑龙江省": (45.803, 126.535),  # Harbin
    "上海市": (31.230, 121.474),  # Shanghai
    "江苏省": (32.060, 118.797),  # Nanjing
    "浙江省": (30.274, 120.155),  # Hangzhou
    "安徽省": (31.821, 117.227),  # Hefei
    "福建省": (26.074, 119.296),  # Fuzhou
    "江西省": (28.682, 115.858),  # Nanchang
    "山东省": (36.651, 117.121),  # Jinan
    "河南省": (34.747, 113.625),  # Zhengzhou
    "湖北省": (30.593, 114.305),  # Wuhan
    "湖南省": (28.228, 112.939),  # Changsha
    "广东省": (23.129, 113.264),  # Guangzhou
    "广西壮族自治区": (22.817, 108.366),  # Nanning
    "海南省": (20.044, 110.199),  # Haikou
    "重庆市": (29.563, 106.551),  # Chongqing
    "四川省": (30.573, 104.066),  # Chengdu
    "贵州省": (26.647, 106.630),  # Guiyang
    "云南省": (25.038, 102.718),  # Kunming
    "西藏自治区": (29.652, 91.172),  # Lhasa
    "陕西省": (34.341, 108.940),  # Xi'an
    "甘肃省": (36.061, 103.834),  # Lanzhou
    "青海省": (36.617, 101.778),  # Xining
    "宁夏回族自治区": (38.487, 106.231),  # Yinchuan
    "新疆维吾尔自治区": (43.825, 87.617),  # Urumqi
    "台湾省": (25.033, 121.565),  # Taipei
    "香港特别行政区": (22.319, 114.169),  # Hong Kong
    "澳门特别行政区": (22.199, 113.544),  # Macao
}

REMOTE_PROVINCES = frozenset({
    "新疆维吾尔自治区", "西藏自治区", "青海省", "内蒙古自治区", "宁夏回族自治区", "甘肃省", "海南省",
})
ACROSS_CUSTOMS = frozenset({"香港特别行政区", "澳门特别行政区", "台湾省"})
NEAR_ZONE_KM = 600  # Shanghai to Hefei or Hangzhou is near; Shanghai to Jinan is far
ZONES = ("local", "near", "far", "remote", "abroad")

_EARTH_RADIUS_KM = 6371.0

DistanceOverrides = Mapping[tuple[str, str], int]


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance between two (latitude, longitude) points on a spherical Earth."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def _distance_table() -> dict[frozenset[str], int]:
    missing = set(PROVINCES) - set(CAPITALS)
    if missing:  # a province added to normalize.py needs its capital here
        raise ValueError(f"no capital for {sorted(missing)}")
    return {frozenset(pair): round(great_circle_km(CAPITALS[pair[0]], CAPITALS[pair[1]]))
            for pair in combinations(PROVINCES, 2)}


DISTANCE_KM = _distance_table()


def province_distance_km(a: str | None, b: str | None,
                         overrides: DistanceOverrides | None = None) -> int | None:
    """Kilometres between two canonical province names; None when either is unknown."""
    if a is None or b is None:
        return None
    if overrides:
        for pair in ((a, b), (b, a)):
            if pair in overrides:
                return overrides[pair]
    if a == b:
        return 0
    return DISTANCE_KM.get(frozenset((a, b)))


def is_domestic(country: str | None) -> bool:
    return (country or "").strip().upper() == "CN"


def parcel_zone(origin: str | None, destination: str | None, country: str = "CN",
                overrides: DistanceOverrides | None = None) -> str | None:
    """The price zone of a parcel from a warehouse's province to a receiver (see above)."""
    if not is_domestic(country):
        return "abroad"
    if origin is None or destination is None:
        return None
    if origin != destination and (origin in ACROSS_CUSTOMS or destination in ACROSS_CUSTOMS):
        return "abroad"
    if origin == destination:
        return "local"
    if destination in REMOTE_PROVINCES:
        return "remote"
    distance = province_distance_km(origin, destination, overrides)
    if distance is None:
        return None
    return "near" if distance <= NEAR_ZONE_KM else "far"
