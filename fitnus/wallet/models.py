from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User


class LedgerKind(StrEnum):
    GRANT = "grant"
    PURCHASE = "purchase"
    BOOKING_DEBIT = "booking_debit"
    BOOKING_REFUND = "booking_refund"
    BID_HOLD = "bid_hold"
    BID_RELEASE = "bid_release"
    AUCTION_CAPTURE = "auction_capture"
    EXPIRY = "expiry"
    PURCHASE_REFUND = "purchase_refund"


class Wallet(Model):
    """One per user. available = balance - held, never below zero: every change
    is a conditional UPDATE in the transaction that appends its ledger row."""

    # A surrogate key, not the user: tortoise's migration autodetector
    # re-detects a relation used as the primary key as changed on every run.
    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "fitnus.User", related_name="wallet", on_delete=fields.CASCADE
    )
    balance = fields.BigIntField(default=0)
    held = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "wallet"


class LedgerEntry(Model):
    """Append-only. ``reference`` is unique, so a retried operation cannot apply
    twice, and the balance always equals the sum of a user's amounts.
    ``center_id`` lets the settlement batches sum usage per center per day."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="ledger", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(LedgerKind, max_length=24)
    amount = fields.BigIntField()
    balance_after = fields.BigIntField()
    reference = fields.CharField(max_length=128, unique=True)
    center_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "ledger_entry"
        indexes = (("user_id", "id"), ("center_id", "created_at"))


class CouponLot(Model):
    """Coupons acquired together (a purchase, a grant), which expire together.

    ``remaining`` counts those neither spent, held nor expired. Every change
    to a person's lots happens under their wallet's row lock, taken first,
    and keeps wallet.balance - wallet.held = the remaining of their lots not
    yet expired (fitnus.wallet.lots)."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="coupon_lots", on_delete=fields.RESTRICT
    )
    coupons = fields.BigIntField()
    remaining = fields.BigIntField()
    expired = fields.BigIntField(default=0)
    # The ledger entry that credited it.
    reference = fields.CharField(max_length=128, unique=True)
    acquired_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    expiry_notified_at = fields.DatetimeField(null=True)

    class Meta:
        table = "coupon_lot"
        # Spending reads a person's lots by expiry; the jobs read all by expiry.
        indexes = (("user_id", "expires_at"), ("expires_at",))


class CouponDraw(Model):
    """Coupons one lot gave to one thing, named by ``paid_for``.

    A seat is ``reservation:<command id>``, a meetup place
    ``meetup:<command id>``, a waitlist offer's hold ``waitlist:<entry id>``.
    A refund of that thing puts the coupons back in that lot."""

    id = fields.BigIntField(primary_key=True)
    lot: fields.ForeignKeyRelation[CouponLot] = fields.ForeignKeyField(
        "fitnus.CouponLot", related_name="draws", on_delete=fields.RESTRICT
    )
    paid_for = fields.CharField(max_length=128)
    coupons = fields.BigIntField()
    returned = fields.BigIntField(default=0)
    created_at = fields.DatetimeField()

    class Meta:
        table = "coupon_draw"
        indexes = (("paid_for",),)
