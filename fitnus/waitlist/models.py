from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User
from fitnus.centers.models import Timeslot
from fitnus.clubs.models import Meetup


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    # A freed seat is kept for the person, their coupons held, until they
    # claim it or the offer expires.
    OFFERED = "offered"
    CLAIMED = "claimed"
    EXPIRED = "expired"
    LEFT = "left"


class WaitlistEntry(Model):
    """A person in line for a sold-out timeslot or a full meetup (one of the
    two). ``active`` is 1 while waiting or offered and NULL once ended, so the
    unique keys allow one live entry per person per session. The line is in
    id order; every change to it after the join is decided in the session's
    keyed queue, under its row's lock."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="waitlist_entries", on_delete=fields.RESTRICT
    )
    timeslot: fields.ForeignKeyNullableRelation[Timeslot] = fields.ForeignKeyField(
        "fitnus.Timeslot", related_name="waitlist", on_delete=fields.RESTRICT, null=True
    )
    meetup: fields.ForeignKeyNullableRelation[Meetup] = fields.ForeignKeyField(
        "fitnus.Meetup", related_name="waitlist", on_delete=fields.RESTRICT, null=True
    )
    status = fields.CharEnumField(WaitlistStatus, max_length=16)
    active = fields.BooleanField(null=True)
    auto_claim = fields.BooleanField(default=False)
    held_coupons = fields.IntField(default=0)
    joined_at = fields.DatetimeField()
    offered_at = fields.DatetimeField(null=True)
    offer_expires_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    # Why an offer ended unclaimed (expired, insufficient_coupons, ...).
    end_reason = fields.CharField(max_length=32, null=True)
    # The reservation (or meetup place) a claim made.
    seat_id = fields.BigIntField(null=True)

    class Meta:
        table = "waitlist_entry"
        unique_together = (("timeslot", "user", "active"), ("meetup", "user", "active"))
        # The line of a session in order; a person's entries; the expiry scan.
        indexes = (("timeslot_id", "active", "id"), ("meetup_id", "active", "id"),
                   ("user_id", "id"), ("status", "offer_expires_at"))
