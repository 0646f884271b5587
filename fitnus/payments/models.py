from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User


class OrderStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class CouponOrder(Model):
    """One purchase through Kakao Pay, whose id is the ``partner_order_id``.
    Moves out of ``pending`` once, by a conditional UPDATE, in the transaction
    that credits (or not) the coupons. ``approving_since`` marks the one
    caller talking to Kakao about it, so two callbacks do not both approve."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="coupon_orders", on_delete=fields.RESTRICT
    )
    bundle_id = fields.CharField(max_length=16)
    coupons = fields.IntField()
    amount_krw = fields.IntField()
    status = fields.CharEnumField(OrderStatus, max_length=24, default=OrderStatus.PENDING)
    # Which API generation the order went through: its tid only works there.
    gateway = fields.CharField(max_length=16)
    tid = fields.CharField(max_length=64, null=True, unique=True)
    aid = fields.CharField(max_length=64, null=True)
    approved_krw = fields.IntField(null=True)
    # The terms when the order was made: the coupons last this long from approval.
    coupon_validity_days = fields.IntField(default=365, db_default=365)
    refunded_krw = fields.IntField(default=0)
    refunded_coupons = fields.IntField(default=0, db_default=0)
    # The one refund talking to Kakao about this order (fitnus.payments.refunds).
    refunding_since = fields.DatetimeField(null=True)
    # The SHA-256 of the secret in this order's callback URLs: only the
    # browser Kakao redirects has it.
    callback_key_hash = fields.CharField(max_length=64)
    approving_since = fields.DatetimeField(null=True)
    failure_reason = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()
    approved_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    # Kakao's answers, as received, for support.
    gateway_answers: list[dict[str, Any]] = fields.JSONField(default=list)

    class Meta:
        table = "coupon_order"
        indexes = (("user_id", "id"),)


class RefundStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    REFUSED = "refused"


class CouponRefund(Model):
    """Unused coupons of one order given back for their money. Its coupons
    are held (drawn from the order's lot) while Kakao is asked; done spends
    the hold, refused gives it back."""

    id = fields.BigIntField(primary_key=True)
    order: fields.ForeignKeyRelation[CouponOrder] = fields.ForeignKeyField(
        "fitnus.CouponOrder", related_name="refunds", on_delete=fields.RESTRICT
    )
    requested_by = fields.BigIntField()
    coupons = fields.IntField()
    amount_krw = fields.IntField()
    status = fields.CharEnumField(RefundStatus, max_length=16, default=RefundStatus.PENDING)
    created_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    gateway_answer: dict[str, Any] | None = fields.JSONField(null=True)

    class Meta:
        table = "coupon_refund"
        indexes = (("status", "created_at"),)
