"""How a shop's seller SKU codes gather into listed products, for the simulators whose
platforms list an item once with its variants under it (Taobao items and SKUs, JD wares
and SKUs, PDD goods and SKUs, Douyin products and SKUs).

The generator's catalogue is products in four variants ("保温杯 白色", "保温杯 黑色"...),
so each catalogue product becomes one item with four variants. A SKU code a test brings
that the catalogue does not know is a product of its own with that one code, listed
without variants where the platform allows it (Taobao) and with a single one elsewhere.

Only the grouping lives here; each simulator derives its own ids from the shop and these
names, so the same SKU has different ids on different platforms, as it would for real.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.generator import DEFAULT_SKUS

# "保温杯 白色" -> "保温杯": the catalogue titles put the product before the variant.
_PRODUCT_OF_SKU = {item.sku: item.title.split(" ")[0] for item in DEFAULT_SKUS}
_VARIANT_OF_SKU = {item.sku: item.title.split(" ", 1)[-1] for item in DEFAULT_SKUS}
_CATALOGUE_PRODUCTS = frozenset(_PRODUCT_OF_SKU.values())


@dataclass(frozen=True)
class Product:
    """One listed product: its name, its seller SKU codes, and whether they are variants."""

    name: str
    skus: tuple[str, ...]
    has_variants: bool


def variant_name(sku: str) -> str:
    """What the variant is called on the listing ("白色"), or the code itself."""
    return _VARIANT_OF_SKU.get(sku, sku)


def shop_products(listed_skus: list[str]) -> list[Product]:
    """The shop's products in the order their first SKU was listed."""
    grouped: dict[str, list[str]] = {}
    for sku in listed_skus:
        grouped.setdefault(_PRODUCT_OF_SKU.get(sku, sku), []).append(sku)
    return [Product(name, tuple(skus), has_variants=name in _CATALOGUE_PRODUCTS)
            for name, skus in grouped.items()]
