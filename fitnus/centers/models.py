from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User
from fitnus.booking.rules import REFUND_WINDOW_HOURS, HasCancellationPolicy


class WallClockTimeField(fields.Field[time]):
    """A local time of day ("06:30:00"), stored as text.

    tortoise's TimeField binds nothing SQLite accepts and comes back from
    MySQL as a timedelta or a UTC-aware time depending on the path; opening
    hours are wall-clock times with no zone, so text is the honest type.
    """

    SQL_TYPE = "VARCHAR(8)"
    field_type = time

    def to_db_value(self, value: Any, instance: Any) -> str | None:
        return value.isoformat() if isinstance(value, time) else value

    def to_python_value(self, value: Any) -> time | None:
        return time.fromisoformat(value) if isinstance(value, str) else value


class Center(Model, HasCancellationPolicy):
    """A partner center. Soft-deleted, so past reservations keep their center.

    ``version`` grows with every change, and the search index converges on it:
    an index write carries the version and never replaces a newer one.
    """

    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="centers", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    description = fields.TextField()
    address = fields.CharField(max_length=200)
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    sports: list[str] = fields.JSONField()
    phone = fields.CharField(max_length=32, null=True)
    opens_at = WallClockTimeField(null=True)
    closes_at = WallClockTimeField(null=True)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)
    # The cancellation policy for bookings made from now on (rules.CancellationPolicy).
    cancel_full_refund_hours = fields.IntField(default=REFUND_WINDOW_HOURS)
    cancel_partial_refund_hours = fields.IntField(null=True)
    cancel_partial_refund_percent = fields.IntField(null=True)
    # The kiosk's check-in codes (fitnus.attendance.totp); set on first use.
    check_in_secret = fields.CharField(max_length=32, null=True)
    # FitNus's commission on this center's settlements, in basis points
    # (1/100 of a percent); None: SETTLEMENT_COMMISSION_PERCENT.
    commission_bp = fields.IntField(null=True)

    class Meta:
        table = "center"
        indexes = (("latitude", "longitude"),)


class SearchOutbox(Model):
    """Centers whose latest version may not be in the search index yet.

    Written in the transaction that changes the center, deleted by the index
    actor once that version (or a later one) is indexed, swept by the
    scheduler, so the index converges even if a web process dies after its
    commit and before its message.
    """

    # A surrogate key: tortoise's migration autodetector re-detects a
    # non-generated integer primary key as changed on every run.
    id = fields.BigIntField(primary_key=True)
    center_id = fields.BigIntField(unique=True)
    version = fields.IntField()
    updated_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "search_outbox"


class Program(Model):
    id = fields.BigIntField(primary_key=True)
    center: fields.ForeignKeyRelation[Center] = fields.ForeignKeyField(
        "fitnus.Center", related_name="programs", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    sport = fields.CharField(max_length=32)
    price_coupons = fields.IntField()
    duration_minutes = fields.IntField()
    description = fields.TextField()
    parallel_sessions = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()

    class Meta:
        table = "program"


class WithdrawalReason(StrEnum):
    """Why a timeslot's reservations were cancelled for everyone."""

    CENTER_CLOSED = "center_closed"
    TIMESLOT_WITHDRAWN = "timeslot_withdrawn"


class Timeslot(Model):
    id = fields.BigIntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "fitnus.Program", related_name="timeslots", on_delete=fields.RESTRICT
    )
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    capacity = fields.IntField()
    reserved = fields.IntField(default=0)
    # Seats freed and kept for people offered them from the waitlist:
    # reserved + offered never exceeds capacity.
    offered = fields.IntField(default=0)
    # The fencing token of the last reservation batch committed: a drainer
    # whose lease expired holds an older token and cannot commit.
    drain_fence = fields.BigIntField(default=0)
    created_at = fields.DatetimeField()
    # Withdrawn by its owner, or with its center: it takes no bookings, and
    # its reservations are cancelled with a full refund (WithdrawalReason).
    withdrawn_at = fields.DatetimeField(null=True)
    withdrawal_reason = fields.CharEnumField(WithdrawalReason, max_length=32, null=True)

    class Meta:
        table = "timeslot"
        # The sweeper finds withdrawn timeslots that still hold seats.
        indexes = (("program_id", "starts_at"), ("withdrawn_at", "reserved"))
