"""How long an offered seat is kept, and when a seat is taken for a person
without asking. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FAR = timedelta(hours=24)
SOON = timedelta(hours=3)


@dataclass(frozen=True)
class ClaimWindows:
    """The claim window shrinks as the start nears: ``far`` while it is more
    than 24 h away, ``within_day`` under that, ``within_hours`` under 3 h, and
    no offers at all in the last ``offers_stop``."""

    far: timedelta = timedelta(hours=2)
    within_day: timedelta = timedelta(minutes=30)
    within_hours: timedelta = timedelta(minutes=10)
    offers_stop: timedelta = timedelta(minutes=30)

    def offer_expires_at(self, *, starts_at: datetime, now: datetime) -> datetime | None:
        """When an offer made now ends unclaimed; None if no offer is made now.
        Never after the start, whatever the configured windows say."""
        notice = starts_at - now
        if notice <= self.offers_stop:
            return None
        window = (self.far if notice > FAR
                  else self.within_day if notice > SOON else self.within_hours)
        return min(now + window, starts_at)


def claims_automatically(*, starts_at: datetime, now: datetime,
                         full_refund_hours: int) -> bool:
    """Auto-claim takes the seat only while its cancellation would still be
    refunded in full: past the late-cancel cutoff the person is offered it."""
    return starts_at - now >= timedelta(hours=full_refund_hours)


DEFAULT_WINDOWS = ClaimWindows()
