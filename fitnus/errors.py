"""Domain errors. Each carries a stable machine ``code``; ``web/errors.py`` maps
the families below to HTTP statuses in one place."""

from __future__ import annotations

from dataclasses import dataclass


class FitnusError(Exception):
    code = "error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class ConfigurationError(FitnusError):
    code = "configuration_error"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class InvalidInput(FitnusError):
    code = "invalid_input"

    def __init__(
        self, detail: str, *, code: str | None = None, errors: list[FieldError] | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.errors = errors or []


class NotAuthenticated(FitnusError):
    code = "not_authenticated"


class Forbidden(FitnusError):
    code = "forbidden"


class NotFound(FitnusError):
    code = "not_found"


class Conflict(FitnusError):
    code = "conflict"


class RateLimited(FitnusError):
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after_seconds = retry_after_seconds


class BadGateway(FitnusError):
    """A service we call (a payment gateway) refused or failed; nothing was done."""

    code = "bad_gateway"


class Unavailable(FitnusError):
    """A dependency we fail closed on is down: nothing was done, the caller may
    retry after ``retry_after_seconds``."""

    code = "service_unavailable"
    retry_after_seconds = 5
