"""A REST call's parameters, and the paging tokens that carry a listing's position from page to page."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from fastapi import Request

from sandbox.dataset import iso, parse_iso
from sandbox.marketing.schema import MarketoError, client_time


class Params:
    """A call's parameters, from the query string or from a form body sent as ``POST`` with
    ``_method=GET`` (Marketo's way around 8 KB URLs); lists may be comma-separated or repeated."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    @classmethod
    def of(cls, request: Request, body: bytes = b"") -> Params:
        form = []
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return cls([*request.query_params.multi_items(), *form])

    def text(self, name: str) -> str | None:
        filled = [value.strip() for value in self._values.get(name, []) if value.strip()]
        return filled[0] if filled else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise MarketoError("701", f"{name} cannot be blank")
        return value

    def listed(self, name: str, most: int | None = None) -> list[str]:
        values = [part.strip() for value in self._values.get(name, []) for part in value.split(",") if part.strip()]
        if most is not None and len(values) > most:
            raise MarketoError("1003", f"{name} has {len(values)} values; at most {most} are allowed")
        return values

    def integers(self, name: str, most: int) -> set[int]:
        return {integer_value(name, value) for value in self.listed(name, most)}

    def integer(self, name: str, default: int, lowest: int, highest: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        value = integer_value(name, raw)
        if not lowest <= value <= highest:
            raise MarketoError("1003", f"{name} must be between {lowest} and {highest}, got {value}")
        return value

    def moment(self, name: str) -> datetime | None:
        raw = self.text(name)
        return None if raw is None else client_time(raw)


def integer_value(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise MarketoError("1001", f"Invalid value '{raw}'. Required of type 'integer' for {name}") from None


def paging_token(*parts: object) -> str:
    """An opaque token as Marketo hands them out: base32 of the position it stands for."""
    return base64.b32encode(",".join(map(str, parts)).encode()).decode()


def _token_parts(token: str, count: int) -> list[str]:
    try:
        parts = base64.b32decode(token + "=" * (-len(token) % 8)).decode().split(",")
    except (binascii.Error, UnicodeDecodeError):
        parts = []
    if len(parts) != count:
        raise MarketoError("1003", f"Invalid nextPageToken '{token}'")
    return parts


def position_after(params: Params) -> int:
    """The id a position-based listing (leads, program members) resumes after."""
    token = params.text("nextPageToken")
    if token is None:
        return 0
    (last_id,) = _token_parts(token, 1)
    if not last_id.isdigit():
        raise MarketoError("1003", f"Invalid nextPageToken '{token}'")
    return int(last_id)


@dataclass(frozen=True)
class ActivityPosition:
    """Where a date-based listing stands: after this activity date (as the dataset writes dates, so
    they compare as text) and, within that date, after this activity id."""

    activity_date: str
    activity_id: int

    @classmethod
    def since(cls, moment: datetime) -> ActivityPosition:
        return cls(iso(moment), 0)

    @classmethod
    def from_token(cls, token: str) -> ActivityPosition:
        activity_date, activity_id = _token_parts(token, 2)
        try:
            parse_iso(activity_date)
            return cls(activity_date, int(activity_id))
        except ValueError:
            raise MarketoError("1003", f"Invalid nextPageToken '{token}'") from None

    def token(self) -> str:
        return paging_token(self.activity_date, self.activity_id)


@dataclass
class ActivityPage:
    activities: list[dict]
    position: ActivityPosition
    more: bool
