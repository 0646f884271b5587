"""Time-based one-time codes (RFC 6238 over RFC 4226's HOTP): what a center's
kiosk shows and a person types to check in. HMAC-SHA1, 30 s steps, 6 digits,
a 160-bit secret per center, the neighbouring step on either side accepted
for clocks that disagree a little. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends
ACCEPTED_STEPS_AROUND = 1


def new_secret() -> str:
    """A base32 secret, as authenticator apps and pyotp write them."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode()


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    key = base64.b32decode(secret)
    digest = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset:offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def current_code(secret: str, now: datetime) -> tuple[str, int]:
    """The code shown now, and the seconds it has left."""
    return code_at(secret, step_of(now)), STEP_SECONDS - int(now.timestamp()) % STEP_SECONDS


def matches(secret: str, code: str, now: datetime) -> bool:
    """Whether ``code`` is this step's, the one before or the one after."""
    step = step_of(now)
    return any(hmac.compare_digest(code_at(secret, step + delta), code)
               for delta in range(-ACCEPTED_STEPS_AROUND, ACCEPTED_STEPS_AROUND + 1))
