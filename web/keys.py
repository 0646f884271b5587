"""Typed keys for what the app holds; filled by create_app's cleanup contexts."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry
from tortoise.context import TortoiseContext

from fitnus.accounts.kakao import KakaoLogin
from fitnus.accounts.service import Accounts
from fitnus.accounts.tokens import AccessTokens
from fitnus.booking.service import BookingDesk
from fitnus.booking.sold_out import SoldOutMemory
from fitnus.booking.starts import TimeslotStarts
from fitnus.clock import Clock
from fitnus.commands.outcomes import OutcomeListener
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import CommandQueue
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.messages import Messages
from fitnus.notifications.reads import CoalescedReads
from fitnus.notifications.tickets import EventTickets
from fitnus.payments.kakaopay import KakaoPay
from fitnus.pubsub import ChannelListener
from fitnus.redis_client import RedisClient
from fitnus.remembered import Remembered
from fitnus.search.index import CenterIndex
from fitnus.waitlist.service import WaitlistDesk
from web.streams import OpenStreams

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
KEYS = web.AppKey("keys", Keys)
DATABASE = web.AppKey("database", TortoiseContext)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
ACCESS_TOKENS = web.AppKey("access_tokens", AccessTokens)
ACCOUNTS = web.AppKey("accounts", Accounts)
OUTCOMES = web.AppKey("outcomes", OutcomeListener)
METRICS = web.AppKey("metrics", CollectorRegistry)
CENTER_INDEX = web.AppKey("center_index", CenterIndex)
MESSAGES = web.AppKey("messages", Messages)
# web.operations.ServiceGauges (typed loosely: that module imports this one).
SERVICE_GAUGES: web.AppKey[Any] = web.AppKey("service_gauges")
PENDING = web.AppKey("pending", PendingCommands)
DOORBELLS = web.AppKey("doorbells", ChannelListener)
TICKETS = web.AppKey("tickets", EventTickets)
TIMESLOT_STARTS = web.AppKey("timeslot_starts", TimeslotStarts)
SOLD_OUT = web.AppKey("sold_out", SoldOutMemory)
BOOKING_DESK = web.AppKey("booking_desk", BookingDesk)
MEETUP_COMMANDS = web.AppKey("meetup_commands", CommandQueue)
AUCTION_COMMANDS = web.AppKey("auction_commands", CommandQueue)
AUCTION_DOORBELLS = web.AppKey("auction_doorbells", ChannelListener)
AUCTION_EVENTS = web.AppKey("auction_events", CoalescedReads)
AUCTION_WINDOWS = web.AppKey("auction_windows", Remembered)
MEETUPS_FULL = web.AppKey("meetups_full", SoldOutMemory)
WAITLIST_DESK = web.AppKey("waitlist_desk", WaitlistDesk)
# None when no Kakao client id is configured: Kakao login answers 503.
KAKAO_LOGIN: web.AppKey[KakaoLogin | None] = web.AppKey("kakao_login")
# None when no Kakao Pay key is configured: purchases answer 503.
KAKAO_PAY: web.AppKey[KakaoPay | None] = web.AppKey("kakao_pay")
# Event streams woken together read their new rows together.
NEW_ROWS = web.AppKey("new_rows", CoalescedReads)
# The open event streams, their heartbeats and write deadlines.
STREAMS = web.AppKey("streams", OpenStreams)
# Events written to event streams (a prometheus_client Counter).
STREAM_EVENTS: web.AppKey[Any] = web.AppKey("stream_events")


def service_zone(request: web.Request) -> ZoneInfo:
    """The service time zone: every time the API shows is in it."""
    return ZoneInfo(request.app[SETTINGS].time_zone)
