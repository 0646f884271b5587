"""Schemas shared by several route modules."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """JSON bodies are taken strictly: "5" is not a number, 1 is not a string."""

    model_config = ConfigDict(strict=True, extra="ignore", str_max_length=10_000)


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
