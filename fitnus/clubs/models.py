from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User
from fitnus.booking.rules import (
    REFUND_WINDOW_HOURS,
    HasCancellationPolicy,
    HasPolicySnapshot,
    Refund,
    refund_for_cancellation,
)


class MemberRole(StrEnum):
    LEADER = "leader"
    MEMBER = "member"


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Club(Model, HasCancellationPolicy):
    """A club (크루): a leader, members, meetups. ``name_key`` is the name
    case-folded with spaces trimmed, unique among clubs not dissolved (a
    dissolved club lets its name go: NULL)."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=100)
    name_key = fields.CharField(max_length=100, null=True, unique=True)
    description = fields.TextField()
    sports: list[str] = fields.JSONField()
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    leader: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="led_clubs", on_delete=fields.RESTRICT
    )
    max_members = fields.IntField(null=True)
    # Kept by the conditional UPDATE that admits a member, so the cap holds
    # under concurrent acceptances.
    member_count = fields.IntField(default=1)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    dissolved_at = fields.DatetimeField(null=True)
    # The refund policy for meetup fees paid from now on (rules.CancellationPolicy).
    cancel_full_refund_hours = fields.IntField(default=REFUND_WINDOW_HOURS)
    cancel_partial_refund_hours = fields.IntField(null=True)
    cancel_partial_refund_percent = fields.IntField(null=True)

    class Meta:
        table = "club"


class ClubMember(Model):
    id = fields.BigIntField(primary_key=True)
    club: fields.ForeignKeyRelation[Club] = fields.ForeignKeyField(
        "fitnus.Club", related_name="members", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="club_memberships", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(MemberRole, max_length=16)
    joined_at = fields.DatetimeField()

    class Meta:
        table = "club_member"
        unique_together = (("club", "user"),)


class ClubApplication(Model):
    """``pending`` is 1 while undecided and NULL after, so the unique key allows
    one pending application per person per club and any number of old ones."""

    id = fields.BigIntField(primary_key=True)
    club: fields.ForeignKeyRelation[Club] = fields.ForeignKeyField(
        "fitnus.Club", related_name="applications", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="club_applications", on_delete=fields.CASCADE
    )
    message = fields.CharField(max_length=500)
    status = fields.CharEnumField(ApplicationStatus, max_length=16)
    pending = fields.BooleanField(null=True)
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "club_application"
        unique_together = (("club", "user", "pending"),)


class Meetup(Model):
    """A club's session of its own. Members join through the meetup's keyed
    queue, as people book timeslots: ``joined`` only moves by a conditional
    UPDATE in the batch that decides them, under this row's lock and fence."""

    id = fields.BigIntField(primary_key=True)
    club: fields.ForeignKeyRelation[Club] = fields.ForeignKeyField(
        "fitnus.Club", related_name="meetups", on_delete=fields.RESTRICT
    )
    title = fields.CharField(max_length=100)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    place = fields.CharField(max_length=200)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    capacity = fields.IntField()
    joined = fields.IntField(default=0)
    # Places kept for people offered them from the waitlist.
    offered = fields.IntField(default=0)
    fee_coupons = fields.IntField(default=0)
    drain_fence = fields.BigIntField(default=0)
    created_at = fields.DatetimeField()

    class Meta:
        table = "meetup"
        indexes = (("club_id", "starts_at"),)


def place_paid_for(command_id: object) -> str:
    """What a meetup place's fee was drawn for (fitnus.wallet.lots): the
    command that took it, which the place keeps."""
    return f"meetup:{command_id}"


class MeetupAttendee(Model, HasPolicySnapshot):
    """A member's place at a meetup. ``active`` is 1 while joined and NULL once
    left, as a reservation's; its start and end are copied so that one person's
    meetups and reservations are checked for overlaps together."""

    id = fields.BigIntField(primary_key=True)
    meetup: fields.ForeignKeyRelation[Meetup] = fields.ForeignKeyField(
        "fitnus.Meetup", related_name="attendees", on_delete=fields.RESTRICT
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="meetups_joined", on_delete=fields.RESTRICT
    )
    active = fields.BooleanField(null=True)
    fee_coupons = fields.IntField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    command_id = fields.UUIDField(unique=True)
    joined_at = fields.DatetimeField()
    left_at = fields.DatetimeField(null=True)
    # As a reservation's: set with the reminder, so a scan asks the place itself.
    reminded_at = fields.DatetimeField(null=True)
    # The club's refund policy when the member joined: it applies to this fee.
    policy_full_refund_hours = fields.IntField(default=REFUND_WINDOW_HOURS)
    policy_partial_refund_hours = fields.IntField(null=True)
    policy_partial_refund_percent = fields.IntField(null=True)

    def refund_on_leaving(self, at: datetime) -> Refund | None:
        """The fee back under the policy it was paid under (no free late leave:
        that is the centers' monthly allowance); None once the meetup started."""
        return refund_for_cancellation(price=self.fee_coupons, starts_at=self.starts_at,
                                       now=at, policy=self.cancellation_policy,
                                       late_cancel_used=True)

    class Meta:
        table = "meetup_attendee"
        unique_together = (("meetup", "user", "active"),)
        indexes = (("user_id", "starts_at"), ("reminded_at", "starts_at"))
