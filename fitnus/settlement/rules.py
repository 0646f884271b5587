"""The arithmetic of settlement and the periods it covers, without I/O.

Rounding: the commission and the VAT are each rounded down to the won; what
rounding leaves over stays with the center (it is in the payout).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from fitnus.errors import Conflict, InvalidInput

BASIS_POINTS = 10_000  # in 100 %
VAT_BP = 1_000  # 10 % of the commission
# Above this a commission and its VAT would take more than the gross.
MAX_COMMISSION_BP = 9_000
# ASCII digits only (\d takes any script's), the whole string (no trailing newline).
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Periods the service can have recorded, with room on either side.
FIRST_YEAR, LAST_YEAR = 2000, 2999


@dataclass(frozen=True)
class Payout:
    gross_krw: int
    commission_krw: int
    vat_krw: int
    payout_krw: int


def split_gross(gross_krw: int, commission_bp: int) -> Payout:
    """Commission = gross × rate, VAT = 10 % of the commission, both rounded
    down to the won; the payout is what is left."""
    commission = gross_krw * commission_bp // BASIS_POINTS
    vat = commission * VAT_BP // BASIS_POINTS
    return Payout(gross_krw, commission, vat, gross_krw - commission - vat)


def percent_to_bp(percent: str) -> int:
    """"5" or "3.25" (at most two decimals, 0 to 90) in basis points."""
    try:
        value = Decimal(percent)
        bp = value * 100
    except InvalidOperation as exc:
        raise InvalidInput(f"{percent!r} is not a percentage", code="invalid_percentage") from exc
    if not value.is_finite() or bp != bp.to_integral_value() or not 0 <= bp <= MAX_COMMISSION_BP:
        raise InvalidInput(f"{percent!r}: a percentage from 0 to 90, at most two decimals",
                           code="invalid_percentage")
    return int(bp)


@dataclass(frozen=True)
class Period:
    """A half-open interval of instants [start, end), with its name."""

    name: str
    start: datetime
    end: datetime


def day_period(day: date, zone: ZoneInfo) -> Period:
    """One Seoul calendar day: from its midnight to the next, in UTC."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return Period(day.isoformat(), start.astimezone(UTC), end.astimezone(UTC))


def month_days(month: str) -> tuple[date, date]:
    """The first day of ``YYYY-MM`` and the first of the month after it."""
    match = _MONTH.fullmatch(month)
    if match is None or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR:
        raise InvalidInput(f"{month!r} is not a month (YYYY-MM, {FIRST_YEAR} to {LAST_YEAR})",
                           code="invalid_period")
    first = date(int(match[1]), int(match[2]), 1)
    return first, (first + timedelta(days=32)).replace(day=1)


def month_period(month: str, zone: ZoneInfo) -> Period:
    """``YYYY-MM`` in Seoul."""
    first, following = month_days(month)
    return Period(month, datetime.combine(first, time(), zone).astimezone(UTC),
                  datetime.combine(following, time(), zone).astimezone(UTC))


def parse_day(text: str) -> date:
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD)", code="invalid_period") from exc
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidInput(f"{text!r}: a day from {FIRST_YEAR} to {LAST_YEAR}",
                           code="invalid_period")
    return day


def finished(period: Period, now: datetime) -> Period:
    """A period is recorded only once it is over."""
    if now < period.end:
        raise Conflict(f"{period.name} is not over yet", code="period_not_finished")
    return period


def previous_day(now: datetime, zone: ZoneInfo) -> date:
    """Yesterday in Seoul, computed per run from the clock."""
    return now.astimezone(zone).date() - timedelta(days=1)


def previous_month(now: datetime, zone: ZoneInfo) -> str:
    first_of_this = now.astimezone(zone).date().replace(day=1)
    return (first_of_this - timedelta(days=1)).strftime("%Y-%m")


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")
