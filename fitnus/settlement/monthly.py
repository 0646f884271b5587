"""Monthly settlements: one per center and month, from its usage records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from fitnus.centers.models import Center
from fitnus.settlement.models import Settlement, SettlementStatus, UsageRecord
from fitnus.settlement.rules import month_days, split_gross

READY = "settlement.ready"
PAID = "settlement.paid"


@dataclass(frozen=True)
class Drafted:
    """A month settled: its drafts, made or recomputed, with their centers'
    owners; and how many were left alone (verified or paid: they never change)."""

    drafts: list[tuple[int, Settlement]]
    unchanged: int


async def gross_by_center(month: str, center_ids: list[int] | None = None) -> dict[int, int]:
    first, following = month_days(month)
    query = UsageRecord.filter(day__gte=first, day__lt=following)
    if center_ids is not None:
        query = query.filter(center_id__in=center_ids)
    rows = await query.group_by("center_id").annotate(gross=Sum("amount_krw")).values(
        "center_id", "gross")
    return {row["center_id"]: int(row["gross"] or 0) for row in rows}


async def settle_month(month: str, *, default_bp: int, now: datetime) -> Drafted:
    """Draft or recompute every center's settlement for the month, in one
    transaction; verified and paid ones stay as they are."""
    created: list[tuple[int, Settlement]] = []
    owners: dict[int, int] = {}
    unchanged = 0
    async with in_transaction():
        gross = await gross_by_center(month)
        existing = {s.center_id: s for s in
                    await Settlement.select_for_update().filter(month=month)}
        centers = {row["id"]: row for row in await Center.filter(
            id__in=list(set(gross) | set(existing))).values("id", "owner_id", "commission_bp")}
        for center_id, center in centers.items():
            settlement = existing.get(center_id)
            if settlement is not None and settlement.status is not SettlementStatus.DRAFT:
                unchanged += 1
                continue
            owners[center_id] = center["owner_id"]
            bp = center["commission_bp"] if center["commission_bp"] is not None else default_bp
            split = split_gross(gross.get(center_id, 0), bp)
            figures = {"gross_krw": split.gross_krw, "commission_bp": bp,
                       "commission_krw": split.commission_krw, "vat_krw": split.vat_krw,
                       "payout_krw": split.payout_krw, "computed_at": now}
            if settlement is None:
                created.append((center["owner_id"], Settlement(
                    center_id=center_id, month=month, created_at=now, **figures)))
            else:
                await Settlement.filter(id=settlement.id).update(**figures)
        await Settlement.bulk_create([settlement for _, settlement in created], batch_size=1000)
    drafts = await Settlement.filter(month=month, status=SettlementStatus.DRAFT,
                                     center_id__in=list(owners))
    return Drafted([(owners[s.center_id], s) for s in drafts], unchanged)
