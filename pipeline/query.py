"""`handoff query`: one read-only statement against the configured warehouse, its rows as a table,
CSV or JSON for operators and scripts."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

# sqlglot's dialect names for the warehouses' engines.
DIALECTS = {"duckdb": "duckdb", "postgresql": "postgres"}


class StatementRefused(ValueError):
    """The statement is not one query that only reads."""


def refuse_unless_reading(sql: str, engine: str) -> None:
    """Let through one statement that only reads (a ``select``, ``with … select``, a set operation).
    The warehouse's read-only connection is what guarantees nothing is written; this says why in
    one line before anything is sent, and stops what read-only mode lets through on PostgreSQL, such
    as ``set transaction read write``."""
    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # an unsupported statement is refused, not warned about
    try:
        statements = [statement for statement in sqlglot.parse(sql, read=DIALECTS.get(engine)) if statement]
    except ParseError as error:
        raise StatementRefused(f"not a statement the warehouse would run: {error.errors[0]['description']}") from None
    finally:
        quiet.setLevel(level)
    if len(statements) != 1:
        raise StatementRefused(f"one statement at a time, not {len(statements)}")
    [statement] = statements
    if not isinstance(statement, exp.Query):
        raise StatementRefused(f"`handoff query` only reads: {statement.key.upper()} refused")
    writes = [node.key for node in statement.walk() if isinstance(node, exp.DML | exp.Create | exp.Drop)]
    if writes:
        raise StatementRefused(f"`handoff query` only reads: the query holds a {writes[0].upper()}")


def plain(value: Any) -> Any:
    """A value as JSON carries it: timestamps in ISO 8601 and UTC (the warehouse keeps naive
    timestamps in UTC), numbers as numbers, anything else the engine returns as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return str(value)


def as_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An array of objects, one per row, keyed by column."""
    return json.dumps([dict(zip(columns, map(plain, row), strict=True)) for row in rows], indent=2)


def as_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A header line, then a line per row; nulls are empty fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else _csv_field(plain(value)) for value in row])
    return buffer.getvalue()


def _csv_field(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value
