"""Schemas shared by several route modules."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated

from aiohttp import web
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)


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

# A wall-clock time of day where something happens (opening hours, a weekly
# session start). It has no offset: the place's own zone gives it one, on each
# day. pydantic's time would take "06:00Z" and "06:00:00.5", which the rest of
# the service cannot store or mean, so the pattern is the contract.
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
ANSWERED_LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


def local_time(value: object) -> object:
    if isinstance(value, str):
        if not re.fullmatch(LOCAL_TIME_PATTERN, value):
            raise ValueError("a local time is HH:MM or HH:MM:SS, with no offset")
        return time.fromisoformat(value)
    return value


LocalTime = Annotated[
    time,
    BeforeValidator(local_time),
    PlainSerializer(lambda value: value.strftime("%H:%M:%S"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN, "examples": ["06:30"],
                    "description": "local time of day, HH:MM or HH:MM:SS, no offset"},
                   mode="validation"),
    WithJsonSchema({"type": "string", "pattern": ANSWERED_LOCAL_TIME_PATTERN,
                    "examples": ["06:30:00"], "description": "local time of day, HH:MM:SS"},
                   mode="serialization"),
]


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
    # The serializer's own bytes: model_dump_json would decode them to text
    # for us to encode back.
    body = model.__pydantic_serializer__.to_json(model, exclude_none=exclude_none)
    return web.Response(status=status, body=body, content_type="application/json")
