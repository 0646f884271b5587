"""Daily usage records, monthly settlements and their discrepancies.

Money is whole won (integers); coupons are worth ``KRW_PER_COUPON`` each.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

KRW_PER_COUPON = 1_000


class UsageKind(StrEnum):
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    LATE_CANCEL = "late_cancel"
    ADJUSTMENT = "adjustment"


class UsageRecord(Model):
    """Coupons a center earned by one reservation, on the Seoul day of its
    session; or, on a later day, what a refund or a move took back from a
    day already recorded (an adjustment, negative). Unique by ``entry_key``
    (``reservation:<id>``, ``adjustment:<ledger entry id>``,
    ``adjustment:move:<command id>``): a re-run adds nothing twice."""

    id = fields.BigIntField(primary_key=True)
    entry_key = fields.CharField(max_length=64, unique=True)
    center_id = fields.BigIntField()
    day = fields.DateField()
    reservation_id = fields.BigIntField(db_index=True)
    user_id = fields.BigIntField()
    program_id = fields.BigIntField()
    starts_at = fields.DatetimeField()
    kind = fields.CharEnumField(UsageKind, max_length=16)
    coupons = fields.IntField()
    amount_krw = fields.BigIntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "usage_record"
        indexes = (("center_id", "day"), ("day", "center_id"))


class SettlementStatus(StrEnum):
    DRAFT = "draft"
    VERIFIED = "verified"
    PAID = "paid"


class Settlement(Model):
    """What one center is paid for one month (``YYYY-MM``, Seoul), once."""

    id = fields.BigIntField(primary_key=True)
    center_id = fields.BigIntField()
    month = fields.CharField(max_length=7)
    gross_krw = fields.BigIntField()
    commission_bp = fields.IntField()
    commission_krw = fields.BigIntField()
    vat_krw = fields.BigIntField()
    payout_krw = fields.BigIntField()
    status = fields.CharEnumField(SettlementStatus, max_length=16, default=SettlementStatus.DRAFT)
    created_at = fields.DatetimeField()
    computed_at = fields.DatetimeField()
    verified_at = fields.DatetimeField(null=True)
    verified_by = fields.BigIntField(null=True)
    paid_at = fields.DatetimeField(null=True)
    paid_by = fields.BigIntField(null=True)

    class Meta:
        table = "settlement"
        unique_together = (("center_id", "month"),)
        indexes = (("month", "status"),)


class DiscrepancyKind(StrEnum):
    # A kept reservation, its coupons in the wallet and its usage record disagree.
    USAGE = "usage"
    # An approved order, its purchase credit and Kakao Pay's own record disagree.
    PAYMENT = "payment"
    # A center's usage records for the month do not add up to its settlement.
    GROSS = "gross"


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Discrepancy(Model):
    """One difference a verification found, open until an admin resolves it
    with a note. Unique by (month, kind, subject, detail): checking again
    finds the same row, and a different difference about the same subject
    (other amounts) is a new one. ``center_id`` is None for the month's
    payments."""

    id = fields.BigIntField(primary_key=True)
    month = fields.CharField(max_length=7)
    center_id = fields.BigIntField(null=True)
    kind = fields.CharEnumField(DiscrepancyKind, max_length=16)
    subject = fields.CharField(max_length=64)
    detail = fields.CharField(max_length=255)
    status = fields.CharEnumField(DiscrepancyStatus, max_length=16,
                                  default=DiscrepancyStatus.OPEN)
    created_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)
    resolved_by = fields.BigIntField(null=True)
    note = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "discrepancy"
        unique_together = (("month", "kind", "subject", "detail"),)
        indexes = (("status", "month"),)
