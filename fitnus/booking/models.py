from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User
from fitnus.booking.rules import REFUND_WINDOW_HOURS, HasPolicySnapshot
from fitnus.centers.models import Timeslot


class ReservationStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    # After the session: the person checked in, or did not come. Both keep the
    # seat (active) and its coupons; settlement pays the center for both.
    ATTENDED = "attended"
    NO_SHOW = "no_show"


def seat_paid_for(command_id: object) -> str:
    """What a seat's coupons were drawn for (fitnus.wallet.lots): the
    command that took it, which the reservation keeps."""
    return f"reservation:{command_id}"


class Reservation(Model, HasPolicySnapshot):
    """A seat. ``active`` is 1 while confirmed and NULL once cancelled, so the
    unique key (timeslot, user, active) allows one live reservation per person
    per timeslot and any number of cancelled ones."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="reservations", on_delete=fields.RESTRICT
    )
    timeslot: fields.ForeignKeyRelation[Timeslot] = fields.ForeignKeyField(
        "fitnus.Timeslot", related_name="reservations", on_delete=fields.RESTRICT
    )
    status = fields.CharEnumField(ReservationStatus, max_length=16)
    active = fields.BooleanField(null=True)
    price_coupons = fields.IntField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    command_id = fields.UUIDField(unique=True)
    created_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)
    # The center's cancellation policy when the booking was made: it applies
    # to this booking whatever the center changes later.
    policy_full_refund_hours = fields.IntField(default=REFUND_WINDOW_HOURS)
    policy_partial_refund_hours = fields.IntField(null=True)
    policy_partial_refund_percent = fields.IntField(null=True)
    refund_reason = fields.CharField(max_length=32, null=True)
    # Set in the transaction that writes the reminder, so the scan can ask the
    # reservation itself, not the notifications, whether it is still owed one.
    reminded_at = fields.DatetimeField(null=True)
    checked_in_at = fields.DatetimeField(null=True)

    class Meta:
        table = "reservation"
        unique_together = (("timeslot", "user", "active"),)
        # The calendar reads by person. The reminder scan reads the reservations
        # not yet reminded that start within the lead: one range of this index.
        # The no-show job reads confirmed seats of sessions that have ended.
        # The daily usage batch reads one day's sessions in (starts_at, id) order.
        indexes = (("user_id", "starts_at"), ("reminded_at", "starts_at"),
                   ("status", "ends_at"), ("starts_at", "id"))


class CalendarFeed(Model):
    """A user's secret feed URL for phone calendar apps. Only a SHA-256 of the
    token is stored; rotating it or deleting the row revokes the old URL."""

    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "fitnus.User", related_name="calendar_feed", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "calendar_feed"
