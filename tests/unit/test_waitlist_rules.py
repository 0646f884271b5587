"""The claim window at every boundary, and where auto-claim stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fitnus.waitlist.rules import ClaimWindows, claims_automatically

START = datetime(2027, 3, 10, 10, 0, tzinfo=UTC)
WINDOWS = ClaimWindows()


@pytest.mark.parametrize(("notice", "window"), [
    (timedelta(days=10), timedelta(hours=2)),
    (timedelta(hours=24, seconds=1), timedelta(hours=2)),
    (timedelta(hours=24), timedelta(minutes=30)),
    (timedelta(hours=3, seconds=1), timedelta(minutes=30)),
    (timedelta(hours=3), timedelta(minutes=10)),
    (timedelta(minutes=30, seconds=1), timedelta(minutes=10)),
])
def test_the_window_shrinks_as_the_start_nears(notice: timedelta, window: timedelta) -> None:
    now = START - notice
    assert WINDOWS.offer_expires_at(starts_at=START, now=now) == now + window


@pytest.mark.parametrize("notice", [timedelta(minutes=30), timedelta(minutes=1),
                                    timedelta(0), -timedelta(hours=1)])
def test_no_offer_in_the_last_half_hour(notice: timedelta) -> None:
    assert WINDOWS.offer_expires_at(starts_at=START, now=START - notice) is None


def test_a_configured_window_never_outlasts_the_start() -> None:
    generous = ClaimWindows(within_hours=timedelta(hours=5))
    assert generous.offer_expires_at(starts_at=START, now=START - timedelta(hours=1)) == START


@pytest.mark.parametrize(("notice", "automatic"), [
    (timedelta(hours=25), True), (timedelta(hours=24), True),
    (timedelta(hours=24) - timedelta(seconds=1), False), (timedelta(hours=1), False),
])
def test_auto_claim_stops_at_the_late_cancel_cutoff(notice: timedelta, automatic: bool) -> None:
    assert claims_automatically(starts_at=START, now=START - notice,
                                full_refund_hours=24) is automatic
