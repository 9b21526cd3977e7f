"""Our own carrier codes: the one vocabulary shipments, rate cards and write-backs share.

Every connector translates these codes to its platform's own in one table of its own
(`CARRIER_CODES` in each marketplace connector); a code missing from a platform's table
is refused before anything is sent.
"""

from __future__ import annotations

from enum import StrEnum


class Carrier(StrEnum):
    # Mainland China
    SF = "SF"  # 顺丰速运
    ZTO = "ZTO"  # 中通快递
    YTO = "YTO"  # 圆通速递
    STO = "STO"  # 申通快递
    YUNDA = "YUNDA"  # 韵达快递
    JD = "JD"  # 京东物流
    EMS = "EMS"  # 中国邮政 EMS
    JT = "JT"  # 极兔速递 / J&T Express
    # Cross-border and South-East Asia
    SPX = "SPX"  # Shopee Xpress
    LEX = "LEX"  # Lazada Logistics (LEX)
    NINJAVAN = "NINJAVAN"
    FLASH = "FLASH"  # Flash Express (Thailand)
    DHL = "DHL"
    FEDEX = "FEDEX"
    UPS = "UPS"
    USPS = "USPS"


DOMESTIC_CHINA = frozenset({Carrier.SF, Carrier.ZTO, Carrier.YTO, Carrier.STO, Carrier.YUNDA,
                            Carrier.JD, Carrier.EMS, Carrier.JT})
