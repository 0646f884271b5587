"""The composition root of the web tier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from swagger_ui import api_doc

from fitnus.accounts.kakao import KakaoLogin
from fitnus.accounts.passwords import Passwords
from fitnus.accounts.service import Accounts
from fitnus.accounts.throttle import LoginThrottle
from fitnus.accounts.tokens import AccessTokens
from fitnus.auctions.service import (
    EVENT_PAGE,
    auction_windows,
    event_owner,
    events_after_each,
)
from fitnus.auctions.service import QUEUE_KIND as AUCTION_QUEUE
from fitnus.booking.service import BookingDesk, bookable_start
from fitnus.booking.sold_out import SoldOutMemory
from fitnus.booking.starts import TimeslotStarts
from fitnus.clock import Clock, system_clock
from fitnus.clubs.meetups import QUEUE_KIND as MEETUP_QUEUE
from fitnus.commands.outcomes import OutcomeListener
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import keyed_commands
from fitnus.commands.service import Dispatch
from fitnus.config import Settings
from fitnus.db import open_database
from fitnus.keys import Keys
from fitnus.messages import Messages
from fitnus.notifications.reads import CoalescedReads
from fitnus.notifications.service import (
    NOTIFICATION_PAGE,
    notification_owner,
    notifications_after_each,
)
from fitnus.notifications.tickets import EventTickets
from fitnus.payments.kakaopay import KakaoPay
from fitnus.pubsub import ChannelListener
from fitnus.redis_client import open_redis
from fitnus.search.backends import CenterIndexFactory, open_center_index
from fitnus.waitlist.service import WaitlistDesk
from web import (
    accounts,
    attendance,
    auctions,
    booking,
    calendar,
    centers,
    clubs,
    commands,
    events,
    kakao,
    meetups,
    operations,
    pages,
    payments,
    policies,
    session,
    settlement,
    waitlist,
    wallet,
)
from web.keys import (
    ACCESS_TOKENS,
    ACCOUNTS,
    AUCTION_COMMANDS,
    AUCTION_DOORBELLS,
    AUCTION_EVENTS,
    AUCTION_WINDOWS,
    BOOKING_DESK,
    CENTER_INDEX,
    CLOCK,
    DATABASE,
    DOORBELLS,
    KAKAO_LOGIN,
    KAKAO_PAY,
    KEYS,
    MEETUP_COMMANDS,
    MEETUPS_FULL,
    MESSAGES,
    METRICS,
    NEW_ROWS,
    OUTCOMES,
    PENDING,
    REDIS,
    SERVICE_GAUGES,
    SETTINGS,
    SOLD_OUT,
    STREAM_EVENTS,
    STREAMS,
    TICKETS,
    TIMESLOT_STARTS,
    WAITLIST_DESK,
)
from web.limits import MAX_BODY_BYTES, MAX_LINE_BYTES
from web.middleware import HttpMetrics, around_each_request
from web.openapi import openapi_document
from web.routing import Api
from web.streams import OpenStreams

APIS: tuple[Api, ...] = (
    accounts.api, session.api, kakao.api, centers.api, policies.api, booking.api, attendance.api,
    calendar.api, clubs.api, meetups.api, waitlist.api, payments.api, auctions.api, commands.api,
    wallet.api, events.api, settlement.api, operations.api,
)
API_TITLE = "FitNus"
API_VERSION = "1.0.0"


def create_app(
    settings: Settings,
    *,
    redis_url: str,
    messages: Messages,
    clock: Clock = system_clock,
    center_index_factory: CenterIndexFactory = open_center_index,
) -> web.Application:
    registry = CollectorRegistry()
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        handler_args={"max_line_size": MAX_LINE_BYTES, "max_field_size": MAX_LINE_BYTES},
        middlewares=[around_each_request(HttpMetrics(registry))],
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[KEYS] = Keys(settings.redis_key_prefix)
    app[METRICS] = registry
    app[SERVICE_GAUGES] = operations.ServiceGauges(registry)
    app[MESSAGES] = messages
    app[ACCESS_TOKENS] = AccessTokens(
        secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        previous_secret=settings.jwt_previous_secret,
    )
    app[TIMESLOT_STARTS] = TimeslotStarts(bookable_start)
    app[NEW_ROWS] = CoalescedReads(notifications_after_each, page=NOTIFICATION_PAGE,
                                   owner=notification_owner)
    app[AUCTION_WINDOWS] = auction_windows()
    app[AUCTION_EVENTS] = CoalescedReads(events_after_each, page=EVENT_PAGE, owner=event_owner)
    app[STREAMS] = OpenStreams()
    streams_open = Gauge("fitnus_sse_streams_open", "Event streams open on this process",
                         registry=registry)
    streams_open.set_function(lambda: len(app[STREAMS]))
    app[STREAM_EVENTS] = Counter("fitnus_sse_events_total",
                                 "Events written to event streams", registry=registry)
    app.on_startup.append(_start_streams)
    app.on_shutdown.append(_close_streams)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_redis(redis_url))
    app.cleanup_ctx.append(_center_index(center_index_factory))
    app.cleanup_ctx.append(_accounts(messages.dispatch))
    app.cleanup_ctx.append(_kakao)

    endpoints = [endpoint for api in APIS for endpoint in api.endpoints]
    for api in APIS:
        api.install(app.router)
    document = openapi_document(endpoints, title=API_TITLE, version=API_VERSION)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi_json)
    # swagger-ui-py resolves a config_rel_url under its prefix (/docs/openapi.json,
    # where nothing is): given the document, it serves it beside the page. No
    # host injected: `host` is Swagger 2, and this dict is /openapi.json's too.
    api_doc(app, config=document, host_inject=False, url_prefix="/docs", title="FitNus API")
    pages.install(app)
    app.router.add_get("/payments/{payment_id}", payments.result_page)
    return app


async def _start_streams(app: web.Application) -> None:
    await app[STREAMS].start()


async def _close_streams(app: web.Application) -> None:
    app[STREAMS].close_all()
    await app[STREAMS].stop()


async def _database(app: web.Application) -> AsyncIterator[None]:
    database = await open_database(app[SETTINGS].database_url)
    app[DATABASE] = database
    yield
    await database.close_connections()


def _redis(redis_url: str) -> Any:
    async def open_and_listen(app: web.Application) -> AsyncIterator[None]:
        redis = open_redis(redis_url)
        app[REDIS] = redis
        app[PENDING] = PendingCommands(redis=redis, keys=app[KEYS])
        outcomes = OutcomeListener(redis=redis, keys=app[KEYS], pending=app[PENDING])
        await outcomes.start()
        app[OUTCOMES] = outcomes
        doorbells = ChannelListener(redis=redis, prefix=app[KEYS].user_channel(""))
        await doorbells.start()
        app[DOORBELLS] = doorbells
        app[TICKETS] = EventTickets(redis=redis, keys=app[KEYS])
        reopenings = ChannelListener(redis=redis, prefix=app[KEYS].timeslot_reopened(""))
        await reopenings.start()
        app[SOLD_OUT] = SoldOutMemory(watch=reopenings.watch, unwatch=reopenings.unwatch)
        app[BOOKING_DESK] = BookingDesk(
            redis=redis, keys=app[KEYS], pending=app[PENDING], clock=app[CLOCK],
            schedule_drain=app[MESSAGES].schedule_drain, starts=app[TIMESLOT_STARTS],
            sold_out=app[SOLD_OUT],
        )
        app[MEETUP_COMMANDS] = keyed_commands(
            MEETUP_QUEUE, redis=redis, keys=app[KEYS], pending=app[PENDING], clock=app[CLOCK],
            schedule_drain=app[MESSAGES].schedule_meetup_drain,
        )
        app[AUCTION_COMMANDS] = keyed_commands(
            AUCTION_QUEUE, redis=redis, keys=app[KEYS], pending=app[PENDING], clock=app[CLOCK],
            schedule_drain=app[MESSAGES].schedule_auction_drain,
        )
        auction_doorbells = ChannelListener(redis=redis,
                                            prefix=app[KEYS].auction_watchers(""))
        await auction_doorbells.start()
        app[AUCTION_DOORBELLS] = auction_doorbells
        app[WAITLIST_DESK] = WaitlistDesk(timeslots=app[BOOKING_DESK].commands,
                                          meetups=app[MEETUP_COMMANDS])
        meetup_reopenings = ChannelListener(redis=redis, prefix=app[KEYS].meetup_reopened(""))
        await meetup_reopenings.start()
        app[MEETUPS_FULL] = SoldOutMemory(watch=meetup_reopenings.watch,
                                          unwatch=meetup_reopenings.unwatch)
        yield
        await meetup_reopenings.stop()
        await auction_doorbells.stop()
        await reopenings.stop()
        await doorbells.stop()
        await outcomes.stop()
        await redis.aclose()

    return open_and_listen


async def _kakao(app: web.Application) -> AsyncIterator[None]:
    """Clients of Kakao Pay and Kakao Login, each None when not configured."""
    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as http:
        pay, login = settings.kakaopay, settings.kakao_login
        app[KAKAO_PAY] = None if pay is None else KakaoPay(pay, http)
        app[KAKAO_LOGIN] = None if login is None else KakaoLogin(
            login, http, cookie_secret=settings.jwt_secret)
        yield


def _center_index(factory: CenterIndexFactory) -> Any:
    async def open_index(app: web.Application) -> AsyncIterator[None]:
        index = factory(app[SETTINGS], app[REDIS], serving=True)
        await index.ensure()
        app[CENTER_INDEX] = index
        yield
        await index.close()

    return open_index


def _accounts(dispatch: Dispatch) -> Any:
    async def build(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        app[ACCOUNTS] = Accounts(
            passwords=Passwords(
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
            ),
            access_tokens=app[ACCESS_TOKENS],
            throttle=LoginThrottle(
                redis=app[REDIS],
                keys=app[KEYS],
                failures_per_address=settings.login_failures_per_address,
                failures_per_email_and_address=settings.login_failures_per_email_and_address,
                failures_per_email=settings.login_failures_per_email,
                window_seconds=settings.login_failure_window_seconds,
                email_window_seconds=settings.login_email_failure_window_seconds,
            ),
            refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
            clock=app[CLOCK],
            dispatch=dispatch,
        )
        yield

    return build
