"""What coupons cost. Pure: no I/O. 1 coupon = 1,000 KRW unless bought in
a bundle."""

from __future__ import annotations

from dataclasses import dataclass

from fitnus.errors import InvalidInput

COUPON_PRICE_KRW = 1_000
MAX_CUSTOM_COUPONS = 1_000
CUSTOM = "custom"


@dataclass(frozen=True)
class Bundle:
    id: str
    coupons: int
    price_krw: int


BUNDLES = (Bundle("220", 220, 200_000), Bundle("345", 345, 300_000))


@dataclass(frozen=True)
class Purchase:
    """What a person buys: computed here, never taken from the client."""

    bundle_id: str
    coupons: int
    amount_krw: int


def purchase_of(*, bundle_id: str | None, coupons: int | None) -> Purchase:
    if (bundle_id is None) == (coupons is None):
        raise InvalidInput("send bundle_id or coupons, one of them", code="invalid_purchase")
    if bundle_id is not None:
        bundle = next((bundle for bundle in BUNDLES if bundle.id == bundle_id), None)
        if bundle is None:
            raise InvalidInput("no such bundle", code="bundle_not_found")
        return Purchase(bundle.id, bundle.coupons, bundle.price_krw)
    assert coupons is not None
    if not 1 <= coupons <= MAX_CUSTOM_COUPONS:
        raise InvalidInput(f"1 to {MAX_CUSTOM_COUPONS} coupons", code="invalid_purchase")
    return Purchase(CUSTOM, coupons, coupons * COUPON_PRICE_KRW)
