"""The kiosk's codes against pyotp, a reference implementation used only here."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from fitnus.attendance import totp

MOMENTS = [datetime(2026, 12, 2, 9, 0, tzinfo=UTC) + timedelta(seconds=seconds)
           for seconds in (0, 1, 29, 30, 59, 61, 3_600, 86_399)]


def test_the_rfc_6238_sha1_vector() -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()
    # RFC 6238 appendix B: T = 59 s gives 94287082 in eight digits.
    assert totp.code_at(secret, 59 // 30) == "287082"


@pytest.mark.parametrize("moment", MOMENTS)
def test_codes_are_pyotps(moment: datetime) -> None:
    secret = totp.new_secret()
    assert totp.current_code(secret, moment)[0] == pyotp.TOTP(secret).at(moment)
    assert len(base64.b32decode(secret)) * 8 == 160


def test_the_neighbouring_steps_are_accepted_and_no_further() -> None:
    secret = totp.new_secret()
    now = MOMENTS[0]
    reference = pyotp.TOTP(secret)
    for offset, accepted in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        assert totp.matches(secret, reference.at(now + timedelta(seconds=offset)), now) is accepted
    assert not totp.matches(totp.new_secret(), reference.at(now), now)


def test_a_code_says_how_long_it_is_shown() -> None:
    assert totp.current_code(totp.new_secret(), MOMENTS[2])[1] == 1
    assert totp.current_code(totp.new_secret(), MOMENTS[3])[1] == 30
