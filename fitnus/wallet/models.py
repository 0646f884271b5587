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
