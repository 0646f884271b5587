"""Redis key builders: one function per kind of key, all under one prefix, so
test runs and tenants never collide."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str

    def login_failures_by_email(self, email: str) -> str:
        return f"{self.prefix}login-failures:email:{email}"

    def login_failures_by_address(self, address: str) -> str:
        return f"{self.prefix}login-failures:address:{address}"

    def login_failures_by_email_and_address(self, email: str, address: str) -> str:
        # The address first, and "|" after it: no address holds a "|", so no
        # crafted email can name another pair's key.
        return f"{self.prefix}login-failures:address-email:{address}|{email}"

    def command_channel(self, command_id: str) -> str:
        return f"{self.prefix}command:{command_id}"

    def pending_command(self, command_id: str) -> str:
        return f"{self.prefix}command-pending:{command_id}"

    def idempotency(self, user_id: int, key: str) -> str:
        return f"{self.prefix}idempotency:{user_id}:{key}"

    def user_channel(self, user_id: str) -> str:
        """The doorbell of a person's event stream: "you have new notifications"."""
        return f"{self.prefix}user-events:{user_id}"

    def timeslot_reopened(self, timeslot_id: str) -> str:
        """Announces that a full timeslot has a free seat again."""
        return f"{self.prefix}timeslot-reopened:{timeslot_id}"

    def meetup_reopened(self, meetup_id: str) -> str:
        """Announces that a full meetup has a free place again."""
        return f"{self.prefix}meetup-reopened:{meetup_id}"

    def auction_watchers(self, auction_id: str) -> str:
        """The doorbell of an auction's public stream: "it has new events"."""
        return f"{self.prefix}auction-events:{auction_id}"

    def event_ticket(self, ticket: str) -> str:
        return f"{self.prefix}event-ticket:{ticket}"

    def scheduler_leader(self) -> str:
        return f"{self.prefix}scheduler:leader"
