from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from fitnus.accounts.models import User


class Auction(Model):
    """Coupons bid for a scarce thing until a set end. Its status follows the
    clock; ``closed_at`` is when its result was settled (the winner's hold
    captured), which may be a little after the end. Bids are decided in its
    keyed queue, whose batches lock this row and check ``drain_fence``."""

    id = fields.BigIntField(primary_key=True)
    created_by: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="auctions_created", on_delete=fields.RESTRICT
    )
    title = fields.CharField(max_length=100)
    description = fields.TextField()
    starting_price = fields.IntField()
    starts_at = fields.DatetimeField()
    # The end, moved later by bids in the soft-close window.
    ends_at = fields.DatetimeField()
    soft_close_seconds = fields.IntField()
    max_extensions = fields.IntField(null=True)
    extensions = fields.IntField(default=0)
    # The standing: the current price, who leads, and how far the leader's
    # proxy would go (the price itself for a plain bid).
    price = fields.IntField(null=True)
    leader: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="auctions_leading", null=True, on_delete=fields.RESTRICT
    )
    leader_max = fields.IntField(null=True)
    bid_count = fields.IntField(default=0)
    bidder_count = fields.IntField(default=0)
    drain_fence = fields.BigIntField(default=0)
    created_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auction"
        # The close job reads auctions past their end and not yet settled.
        indexes = (("closed_at", "ends_at"),)


class Bid(Model):
    """A bid the auction accepted: ``amount`` is what it bid (a proxy's, the
    most it reached), ``price_after`` the auction's price once it was
    decided, ``leading`` whether it led then. ``bidder_no`` numbers the
    auction's bidders in order of their first bid, for public aliases."""

    id = fields.BigIntField(primary_key=True)
    auction: fields.ForeignKeyRelation[Auction] = fields.ForeignKeyField(
        "fitnus.Auction", related_name="bids", on_delete=fields.RESTRICT
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fitnus.User", related_name="bids", on_delete=fields.RESTRICT
    )
    bidder_no = fields.IntField()
    amount = fields.IntField()
    max_amount = fields.IntField(null=True)
    price_after = fields.IntField()
    leading = fields.BooleanField()
    command_id = fields.UUIDField(unique=True)
    placed_at = fields.DatetimeField()

    class Meta:
        table = "bid"
        indexes = (("auction_id", "id"), ("auction_id", "user_id"))


class AuctionEvent(Model):
    """What watchers of an auction are told, in order: a bid, an extension,
    the close. Written in the batch that decided it, read by the streams."""

    id = fields.BigIntField(primary_key=True)
    auction: fields.ForeignKeyRelation[Auction] = fields.ForeignKeyField(
        "fitnus.Auction", related_name="events", on_delete=fields.RESTRICT
    )
    type = fields.CharField(max_length=32)
    payload: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "auction_event"
        indexes = (("auction_id", "id"),)
