"""Each person's notifications commit in id order.

A person's event stream resumes after the last id it sent, so a row that
commits after a higher id of the same person would never be sent: two
transactions writing to one person can take ids 100 and 101 and commit 101
first. Every writer of notifications therefore takes its turn for the people
it writes to (their user rows, locked in id order until its transaction
ends) before inserting: a second writer to the same person waits, and takes
its ids once the first has committed.
"""

from __future__ import annotations

from collections.abc import Iterable

from fitnus.accounts.models import User


async def take_turn(user_ids: Iterable[int]) -> None:
    """Within a transaction, before inserting notifications for ``user_ids``."""
    ids = sorted(set(user_ids))
    if ids:
        # .only, not .values_list: the query builder leaves FOR UPDATE off the latter.
        await User.select_for_update().filter(id__in=ids).order_by("id").only("id")
