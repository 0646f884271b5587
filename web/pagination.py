"""Opaque list cursors: the keyset position of the last item, base64url JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from fitnus.errors import InvalidInput


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def decode_cursor(token: str, parsers: Sequence[Callable[[Any], Any]]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(raw, list) or len(raw) != len(parsers):
            raise ValueError("wrong shape")
        return [parse(value) for parse, value in zip(parsers, raw, strict=True)]
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the cursor is not one we issued", code="invalid_cursor") from exc
