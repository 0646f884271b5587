"""Settlement arithmetic and periods: whole won, rounded down, nothing lost."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fitnus.errors import Conflict, InvalidInput
from fitnus.settlement import rules

SEOUL = ZoneInfo("Asia/Seoul")


@pytest.mark.parametrize(("gross", "bp", "commission", "vat", "payout"), [
    (0, 500, 0, 0, 0),
    (1_000, 500, 50, 5, 945),
    (19, 500, 0, 0, 19),  # 0.95 won of commission rounds down to nothing
    (1_234_567, 500, 61_728, 6_172, 1_166_667),  # 61,728.35 and 6,172.8, both down
    (999_999, 333, 33_299, 3_329, 963_371),  # 3.33 %: 33,299.97 and 3,329.9
    (10_000, 0, 0, 0, 10_000),
    (10_000, 9_000, 9_000, 900, 100),  # the highest rate leaves the center something
    (30_000_000_000, 500, 1_500_000_000, 150_000_000, 28_350_000_000),
])
def test_the_rounding_table(gross: int, bp: int, commission: int, vat: int, payout: int) -> None:
    assert rules.split_gross(gross, bp) == rules.Payout(gross, commission, vat, payout)


@given(st.integers(0, 10**13), st.integers(0, rules.MAX_COMMISSION_BP))
def test_no_won_is_lost_and_rounding_favours_the_center(gross: int, bp: int) -> None:
    split = rules.split_gross(gross, bp)
    assert split.commission_krw + split.vat_krw + split.payout_krw == gross
    assert split.payout_krw >= 0
    assert 0 <= gross * bp / rules.BASIS_POINTS - split.commission_krw < 1
    assert 0 <= split.commission_krw / 10 - split.vat_krw < 1


@pytest.mark.parametrize(("text", "bp"), [("5", 500), ("3.5", 350), ("3.25", 325), ("0", 0),
                                          ("90", 9_000)])
def test_a_percentage_in_basis_points(text: str, bp: int) -> None:
    assert rules.percent_to_bp(text) == bp


@pytest.mark.parametrize("text", ["3.255", "-1", "90.01", "100", "five", "NaN", "sNaN",
                                  "Infinity", ""])
def test_a_bad_percentage_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        rules.percent_to_bp(text)


def test_a_seoul_day_is_half_open_from_midnight_to_midnight() -> None:
    day = rules.day_period(date(2026, 12, 1), SEOUL)
    assert day.start == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert day.end == datetime(2026, 12, 1, 15, tzinfo=UTC)
    month = rules.month_period("2026-12", SEOUL)
    assert (month.start, month.end) == (datetime(2026, 11, 30, 15, tzinfo=UTC),
                                        datetime(2026, 12, 31, 15, tzinfo=UTC))
    assert rules.month_days("2026-12") == (date(2026, 12, 1), date(2027, 1, 1))


def test_yesterday_and_last_month_come_from_the_clock_of_each_run() -> None:
    # 00:30 on 1 January in Seoul is still 31 December in UTC.
    now = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    assert rules.previous_day(now, SEOUL) == date(2026, 12, 31)
    assert rules.previous_month(now, SEOUL) == "2026-12"


def test_a_period_is_recorded_only_once_it_is_over() -> None:
    day = rules.day_period(date(2026, 12, 1), SEOUL)
    with pytest.raises(Conflict):
        rules.finished(day, datetime(2026, 12, 1, 14, 59, 59, tzinfo=UTC))
    assert rules.finished(day, datetime(2026, 12, 1, 15, tzinfo=UTC)) == day


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026-00", "2026-01-01",
                                   "0000-01", "9999-12", "٢٠٢٦-11", "２０２６-11", "2026-11\n"])
def test_a_malformed_month_is_refused(month: str) -> None:
    with pytest.raises(InvalidInput):
        rules.month_days(month)


@pytest.mark.parametrize("day", ["2026-02-30", "0001-01-01", "9999-12-31", "20261201", "",
                                 "２０２６-12-01", "2026-12-01\n"])
def test_a_malformed_day_is_refused(day: str) -> None:
    with pytest.raises(InvalidInput):
        rules.parse_day(day)


def test_the_api_names_every_batch_job_and_status() -> None:
    from fitnus.batches.models import BatchJob
    from fitnus.settlement.models import DiscrepancyStatus, SettlementStatus
    from web import settlement

    assert get_args(settlement.Job) == tuple(job.value for job in BatchJob)
    statuses = settlement.AdminSettlementQuery.model_fields["status"].annotation
    assert get_args(get_args(statuses)[0]) == tuple(s.value for s in SettlementStatus)
    statuses = settlement.DiscrepancyQuery.model_fields["status"].annotation
    assert get_args(get_args(statuses)[0]) == tuple(s.value for s in DiscrepancyStatus)
