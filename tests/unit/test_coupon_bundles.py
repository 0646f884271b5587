"""The server's price of a purchase, whatever the client asks."""

from __future__ import annotations

import pytest

from fitnus.errors import InvalidInput
from fitnus.payments.bundles import Purchase, purchase_of


@pytest.mark.parametrize(("bundle_id", "coupons", "expected"), [
    ("220", None, Purchase("220", 220, 200_000)),
    ("345", None, Purchase("345", 345, 300_000)),
    (None, 1, Purchase("custom", 1, 1_000)),
    (None, 1_000, Purchase("custom", 1_000, 1_000_000)),
])
def test_the_price_of_each_purchase(bundle_id: str | None, coupons: int | None,
                                    expected: Purchase) -> None:
    assert purchase_of(bundle_id=bundle_id, coupons=coupons) == expected


@pytest.mark.parametrize(("bundle_id", "coupons"), [
    (None, None), ("220", 5), ("custom", None), ("999", None), (None, 0), (None, 1_001),
    (None, -3),
])
def test_what_cannot_be_bought(bundle_id: str | None, coupons: int | None) -> None:
    with pytest.raises(InvalidInput):
        purchase_of(bundle_id=bundle_id, coupons=coupons)
