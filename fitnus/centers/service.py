"""What owners publish (centers, programs, timeslots) and what anyone reads.

Only a center's owner or an admin changes it and what hangs off it. Every
center change bumps its version and writes a search outbox row in the same
transaction; the index actor is told after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.booking.rules import CancellationPolicy
from fitnus.centers.models import Center, Program, SearchOutbox, Timeslot, WithdrawalReason
from fitnus.centers.rules import MAX_ADVANCE_DAYS, Interval, first_overlap
from fitnus.clock import Clock, as_utc
from fitnus.errors import Conflict, Forbidden, InvalidInput, NotFound
from fitnus.search.index import CenterDocument

# Tells the search index a center changed (an actor message, after the commit).
IndexCenter = Callable[[int], Awaitable[None]]
MANAGING_ROLES = frozenset({Role.OWNER, Role.ADMIN})


@dataclass(frozen=True, kw_only=True)
class CenterDraft:
    name: str
    description: str
    address: str
    latitude: float
    longitude: float
    sports: list[str]
    phone: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None


@dataclass(frozen=True, kw_only=True)
class ProgramDraft:
    name: str
    sport: str
    price_coupons: int
    duration_minutes: int
    description: str = ""
    parallel_sessions: bool = False


def center_document(center: Center) -> CenterDocument:
    return CenterDocument(
        id=center.id, version=center.version, name=center.name, address=center.address,
        latitude=center.latitude, longitude=center.longitude, sports=list(center.sports),
    )


def _require_manager_role(principal: Principal) -> None:
    if principal.role not in MANAGING_ROLES:
        raise Forbidden("only center owners publish centers", code="owner_role_required")


def _require_manages(principal: Principal, center: Center) -> None:
    if principal.role is not Role.ADMIN and center.owner_id != principal.user_id:  # type: ignore[attr-defined]
        raise Forbidden("this center belongs to another owner", code="not_center_owner")


async def _record_change(center: Center, *, now: datetime) -> None:
    """Inside the changing transaction: the outbox row the index actor settles."""
    await SearchOutbox.update_or_create(
        center_id=center.id, defaults={"version": center.version, "updated_at": now}
    )


async def create_center(
    *, principal: Principal, draft: CenterDraft, clock: Clock, index_center: IndexCenter
) -> Center:
    _require_manager_role(principal)
    now = clock.now()
    async with in_transaction():
        center = await Center.create(
            owner_id=principal.user_id, created_at=now, updated_at=now,
            **{field.name: getattr(draft, field.name) for field in fields(draft)},
        )
        await _record_change(center, now=now)
    await index_center(center.id)
    return center


async def center_by_id(center_id: int) -> Center:
    center = await Center.get_or_none(id=center_id, deleted_at=None)
    if center is None:
        raise NotFound("no such center", code="center_not_found")
    return center


async def center_names(center_ids: set[int]) -> dict[int, str]:
    """Each center's name, closed ones included (their settlements stay)."""
    rows = await Center.filter(id__in=center_ids).values_list("id", "name")
    return {int(center_id): str(name) for center_id, name in rows}


async def centers_of(principal: Principal, *, after_id: int | None, limit: int) -> list[Center]:
    """The caller's own centers, by id (one more than ``limit``, to tell a next page)."""
    _require_manager_role(principal)
    query = Center.filter(owner_id=principal.user_id, deleted_at=None)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return await query.order_by("id").limit(limit + 1)


async def managed_center(principal: Principal, center_id: int) -> Center:
    """A center for its owner or an admin to look after."""
    center = await center_by_id(center_id)
    _require_manages(principal, center)
    return center


async def _center_for_change(principal: Principal, center_id: int) -> Center:
    center = await Center.select_for_update().get_or_none(id=center_id, deleted_at=None)
    if center is None:
        raise NotFound("no such center", code="center_not_found")
    _require_manages(principal, center)
    return center


async def update_center(
    *, principal: Principal, center_id: int, changes: dict[str, object], clock: Clock,
    index_center: IndexCenter,
) -> Center:
    allowed = {field.name for field in fields(CenterDraft)}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}", code="invalid_change")
    now = clock.now()
    async with in_transaction():
        center = await _center_for_change(principal, center_id)
        for name, value in changes.items():
            setattr(center, name, value)
        center.version += 1
        center.updated_at = now
        await center.save()
        await _record_change(center, now=now)
    await index_center(center.id)
    return center


async def delete_center(
    *, principal: Principal, center_id: int, clock: Clock, index_center: IndexCenter
) -> list[int]:
    """Soft-delete the center and withdraw its future timeslots; returns the
    withdrawn timeslots that hold seats, whose reservations must be cancelled."""
    now = clock.now()
    async with in_transaction():
        center = await _center_for_change(principal, center_id)
        center.deleted_at = now
        center.version += 1
        center.updated_at = now
        await center.save(update_fields=["deleted_at", "version", "updated_at"])
        await _record_change(center, now=now)
        programs = await Program.filter(center_id=center.id).values_list("id", flat=True)
        # Locked in id order, as reservation batches lock them.
        future = await Timeslot.select_for_update().filter(
            program_id__in=list(programs), starts_at__gt=as_utc(now), withdrawn_at=None,
        ).order_by("id")
        held = await _withdraw(future, reason=WithdrawalReason.CENTER_CLOSED, now=now)
    await index_center(center.id)
    return held


async def withdraw_timeslot(*, principal: Principal, timeslot_id: int, clock: Clock) -> list[int]:
    """The owner takes a session off the timetable before it starts; returns
    [its id] if it holds seats, whose reservations must be cancelled."""
    now = clock.now()
    async with in_transaction():
        # Only the timeslot's row is locked: a join would lock its center
        # too, in another order than deleting the center takes them.
        timeslot = await Timeslot.select_for_update().get_or_none(id=timeslot_id,
                                                                  withdrawn_at=None)
        if timeslot is None:
            raise NotFound("no such timeslot", code="timeslot_not_found")
        await timeslot.fetch_related("program__center")
        center = timeslot.program.center
        if center.deleted_at is not None:
            raise NotFound("no such timeslot", code="timeslot_not_found")
        _require_manages(principal, center)
        if timeslot.starts_at <= now:
            raise Conflict("this session has started: it can no longer be withdrawn",
                           code="already_started")
        return await _withdraw([timeslot], reason=WithdrawalReason.TIMESLOT_WITHDRAWN, now=now)


async def _withdraw(
    timeslots: list[Timeslot], *, reason: WithdrawalReason, now: datetime
) -> list[int]:
    """Inside the locking transaction. Withdrawn timeslots take no bookings
    from here on; the ones that hold seats are returned."""
    if timeslots:
        await Timeslot.filter(id__in=[timeslot.id for timeslot in timeslots]).update(
            withdrawn_at=now, withdrawal_reason=reason)
    return [timeslot.id for timeslot in timeslots if timeslot.reserved > 0]


async def create_program(
    *, principal: Principal, center_id: int, draft: ProgramDraft, clock: Clock
) -> Program:
    center = await center_by_id(center_id)
    _require_manages(principal, center)
    if draft.sport not in center.sports:
        raise InvalidInput(
            f"{center.name} does not offer {draft.sport}", code="sport_not_offered"
        )
    return await Program.create(
        center_id=center.id, created_at=clock.now(),
        **{field.name: getattr(draft, field.name) for field in fields(draft)},
    )


async def programs_of(center_id: int, *, after_id: int | None, limit: int) -> list[Program]:
    await center_by_id(center_id)
    query = Program.filter(center_id=center_id)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return await query.order_by("id").limit(limit + 1)


async def program_by_id(program_id: int) -> Program:
    program = await Program.get_or_none(
        id=program_id, center__deleted_at__isnull=True
    ).select_related("center")
    if program is None:
        raise NotFound("no such program", code="program_not_found")
    return program


async def create_timeslots(
    *, principal: Principal, program_id: int, starts: Sequence[datetime], capacity: int,
    clock: Clock,
) -> list[Timeslot]:
    """Publish timeslots of a program; all or none.

    Overlaps are checked with the program row locked, so two owners' requests
    at once cannot both slip a session into the same hour.
    """
    now = clock.now()
    starts = [as_utc(start) for start in starts]
    if any(start <= now for start in starts):
        raise InvalidInput("a timeslot must start in the future", code="timeslot_in_past")
    if any(start > now + timedelta(days=MAX_ADVANCE_DAYS) for start in starts):
        raise InvalidInput(
            f"a timeslot starts within {MAX_ADVANCE_DAYS} days", code="timeslot_too_far_ahead"
        )
    async with in_transaction():
        program = await Program.select_for_update().get_or_none(id=program_id)
        if program is None:
            raise NotFound("no such program", code="program_not_found")
        center = await Center.get_or_none(id=program.center_id, deleted_at=None)  # type: ignore[attr-defined]
        if center is None:
            raise NotFound("no such program", code="program_not_found")
        _require_manages(principal, center)
        length = timedelta(minutes=program.duration_minutes)
        new = [Interval(start, start + length) for start in starts]
        if not program.parallel_sessions:
            await _refuse_overlaps(program, new)
        return [
            await Timeslot.create(
                program_id=program.id, starts_at=interval.starts_at, ends_at=interval.ends_at,
                capacity=capacity, reserved=0, created_at=now,
            )
            for interval in sorted(new, key=lambda interval: interval.starts_at)
        ]


async def _refuse_overlaps(program: Program, new: list[Interval]) -> None:
    earliest = min(interval.starts_at for interval in new)
    latest = max(interval.ends_at for interval in new)
    existing = await Timeslot.filter(
        program_id=program.id, starts_at__lt=latest, ends_at__gt=earliest
    ).values_list("starts_at", "ends_at")
    clash = first_overlap(new, [Interval(start, end) for start, end in existing])
    if clash is not None:
        raise Conflict(
            f"the session at {clash.starts_at.isoformat()} overlaps another of this program",
            code="timeslot_overlap",
        )


async def timeslots_of(
    program_id: int, *, starts_from: datetime | None, starts_before: datetime | None,
    after: tuple[datetime, int] | None, limit: int,
) -> list[Timeslot]:
    await program_by_id(program_id)
    query = Timeslot.filter(program_id=program_id, withdrawn_at=None)
    if starts_from is not None:
        query = query.filter(starts_at__gte=as_utc(starts_from))
    if starts_before is not None:
        query = query.filter(starts_at__lt=as_utc(starts_before))
    if after is not None:
        after_start, after_id = as_utc(after[0]), after[1]
        query = query.filter(Q(starts_at__gt=after_start)
                             | Q(starts_at=after_start, id__gt=after_id))
    return await query.order_by("starts_at", "id").limit(limit + 1)


async def timeslot_by_id(timeslot_id: int) -> Timeslot:
    timeslot = await Timeslot.get_or_none(
        id=timeslot_id, withdrawn_at=None, program__center__deleted_at__isnull=True
    )
    if timeslot is None:
        raise NotFound("no such timeslot", code="timeslot_not_found")
    return timeslot


async def set_cancellation_policy(
    *, principal: Principal, center_id: int, policy: CancellationPolicy, clock: Clock,
) -> Center:
    """For bookings made from now on; each booking keeps the policy it was made under."""
    policy.check()
    async with in_transaction():
        center = await _center_for_change(principal, center_id)
        center.cancel_full_refund_hours = policy.full_refund_hours
        center.cancel_partial_refund_hours = policy.partial_refund_hours
        center.cancel_partial_refund_percent = policy.partial_refund_percent
        center.updated_at = clock.now()
        await center.save(update_fields=["cancel_full_refund_hours",
                                         "cancel_partial_refund_hours",
                                         "cancel_partial_refund_percent", "updated_at"])
    return center
