"""Schemas shared by several route modules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict


class RequestBody(BaseModel):
    """JSON bodies are taken strictly: "5" is not a number, 1 is not a string."""

    model_config = ConfigDict(strict=True, extra="ignore", str_max_length=10_000)


MIN_YEAR, MAX_YEAR = 1970, 9000


def plausible_moment(moment: datetime) -> datetime:
    """An aware datetime this service can convert and compare (year 1 with
    +01:00 has no UTC equivalent; year 9999 has no room for a duration)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time needs its UTC offset")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(plausible_moment)]


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = None


def json(model: BaseModel, status: int = 200, *, exclude_none: bool = False) -> web.Response:
    body = model.model_dump_json(exclude_none=exclude_none).encode()
    return web.Response(status=status, body=body, content_type="application/json")
