"""HubSpot's CRM search (``POST /crm/v3/objects/{objectType}/search``) compiled to SQL over the store.

The rules are HubSpot's published ones: filters inside a group are AND-ed and groups are OR-ed (at most
5 groups, 6 filters a group, 18 in all); one sort; ``limit`` up to 200; ``after`` is an offset and no
query pages past 10,000 results; archived records never match. Comparisons follow the property's
type, as HubSpot's search index does: numbers as numbers, datetimes as instants (a filter value may
be epoch milliseconds or ISO 8601), enumerations case-sensitively, other text case-insensitively,
except that ``IN``/``NOT_IN`` compare the stored value lowercased against the values as sent (HubSpot
asks for lowercase values there). Negative operators also match records without a value, as a search
index's "must not" does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from sandbox.dataset import iso

SEARCH_LIMIT_MAX = 200
SEARCH_RESULT_CAP = 10_000
FILTER_GROUPS_MAX = 5
FILTERS_PER_GROUP_MAX = 6
FILTERS_MAX = 18
OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
)
COMPARISONS = {"EQ": "=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
EPOCH_MILLIS = re.compile(r"-?[0-9]+")
OFFSET = re.compile(r"[0-9]+")
LIKE_ESCAPE = "\\"


class SearchError(ValueError):
    """A search request HubSpot would answer with a 400."""


def as_text(value: object) -> object:
    """HubSpot takes numbers and booleans where it documents strings; they mean their text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(as_text)]


class Filter(BaseModel):
    propertyName: str
    operator: str
    value: Text | None = None
    highValue: Text | None = None
    values: list[Text] | None = None


class FilterGroup(BaseModel):
    filters: list[Filter] = Field(default_factory=list)


class Sort(BaseModel):
    propertyName: str
    direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"


class SearchRequest(BaseModel):
    filterGroups: list[FilterGroup] = Field(default_factory=list)
    # HubSpot's SDKs send sorts as objects or as property names, "-name" meaning descending.
    sorts: list[Sort | str] = Field(default_factory=list)
    properties: list[str] = Field(default_factory=list)
    limit: int = 10
    after: Text | None = None
    query: str | None = None


@dataclass(frozen=True)
class Column:
    """How search reads one property: an SQL expression over the ``o`` row of crm_objects (NULL when
    the record has no value) and the property's type."""

    sql: str
    type: str = "string"
    nullable: bool = True


@dataclass(frozen=True)
class CompiledSearch:
    where: str
    params: list
    order_by: str
    offset: int
    limit: int


def parse_time(text: str) -> datetime:
    """A HubSpot date or datetime value: epoch milliseconds, or ISO 8601 (a bare date is midnight UTC)."""
    text = text.strip()
    try:
        if EPOCH_MILLIS.fullmatch(text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as error:
        raise ValueError(f"{text!r} is neither epoch milliseconds nor ISO 8601") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compile_search(request: SearchRequest, resolve, searchable: list[Column]) -> CompiledSearch:
    """``resolve(name)`` gives a property's Column, or None for a property the object type lacks."""
    if not 1 <= request.limit <= SEARCH_LIMIT_MAX:
        raise SearchError(f"limit must be between 1 and {SEARCH_LIMIT_MAX}, got {request.limit}")
    offset = _offset(request.after)
    where, params = _filter_groups(request.filterGroups, resolve)
    if request.query:
        query_sql, query_params = _free_text(request.query, searchable)
        where, params = f"({where}) and {query_sql}", params + query_params
    return CompiledSearch(
        where=where,
        params=params,
        order_by=_order_by(request.sorts, resolve),
        offset=offset,
        limit=min(request.limit, SEARCH_RESULT_CAP - offset),
    )


def _offset(after: str | None) -> int:
    if after in (None, ""):
        return 0
    if not OFFSET.fullmatch(after):
        raise SearchError(f"after must be an integer, got {after!r}")
    if int(after) >= SEARCH_RESULT_CAP:
        raise SearchError(f"Search results are limited to {SEARCH_RESULT_CAP:,}; after={after} pages past them")
    return int(after)


def _filter_groups(groups: list[FilterGroup], resolve) -> tuple[str, list]:
    if len(groups) > FILTER_GROUPS_MAX:
        raise SearchError(f"Too many filter groups ({len(groups)}); the limit is {FILTER_GROUPS_MAX}")
    if sum(len(group.filters) for group in groups) > FILTERS_MAX:
        raise SearchError(f"Too many filters; the limit is {FILTERS_MAX} in total")
    alternatives, params = [], []
    for group in groups:
        if len(group.filters) > FILTERS_PER_GROUP_MAX:
            raise SearchError(
                f"Too many filters in a group ({len(group.filters)}); the limit is {FILTERS_PER_GROUP_MAX}"
            )
        conditions = []
        for item in group.filters:
            sql, values = _condition(item, _column(resolve, item.propertyName))
            conditions.append(sql)
            params += values
        if conditions:
            alternatives.append("(" + " and ".join(conditions) + ")")
    return (" or ".join(alternatives) if alternatives else "1"), params


def _column(resolve, name: str) -> Column:
    column = resolve(name)
    if column is None:
        raise SearchError(f"Unable to find property {name!r} to filter or sort on")
    return column


def _condition(item: Filter, column: Column) -> tuple[str, list]:
    operator, value = item.operator, item.value
    if operator not in OPERATORS:
        raise SearchError(f"Unknown operator {operator!r}; expected one of {', '.join(OPERATORS)}")
    missing = f"{column.sql} is null"
    if operator == "HAS_PROPERTY":
        return f"{column.sql} is not null", []
    if operator == "NOT_HAS_PROPERTY":
        return missing, []
    if operator in ("IN", "NOT_IN"):
        if not item.values:
            raise SearchError(f"{operator} on {item.propertyName} needs a non-empty 'values' list")
        listed = [_typed(column, each, item.propertyName, lowercase=False) for each in item.values]
        sql = f"{_compared(column)} in ({', '.join('?' * len(listed))})"
        return (sql, listed) if operator == "IN" else (f"({missing} or not {sql})", listed)
    if value is None:
        raise SearchError(f"{operator} on {item.propertyName} needs a 'value'")
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        sql, params = _token_match(column, value)
        return (sql, params) if operator == "CONTAINS_TOKEN" else (f"({missing} or not {sql})", params)
    compared = _compared(column)
    bound = _typed(column, value, item.propertyName)
    if operator == "BETWEEN":
        if item.highValue is None:
            raise SearchError(f"BETWEEN on {item.propertyName} needs a 'highValue'")
        return f"{compared} between ? and ?", [bound, _typed(column, item.highValue, item.propertyName)]
    if operator == "NEQ":
        return f"({missing} or {compared} != ?)", [bound]
    return f"{compared} {COMPARISONS[operator]} ?", [bound]


def _compared(column: Column) -> str:
    """The expression a filter or sort compares: typed, and lowercased where HubSpot ignores case."""
    if column.type == "number":
        return f"cast({column.sql} as real)"
    # Datetimes are stored as one ISO 8601 shape in UTC, so as text they sort as instants.
    if column.type in ("datetime", "date", "enumeration"):
        return column.sql
    return f"lower({column.sql})"


def _typed(column: Column, value: str, name: str, lowercase: bool = True) -> object:
    if column.type == "number":
        try:
            return float(value)
        except ValueError:
            raise SearchError(f"{value!r} is not a number, as property {name} needs") from None
    if column.type in ("datetime", "date"):
        try:
            return iso(parse_time(value))
        except ValueError as error:
            raise SearchError(f"property {name}: {error}") from None
    if column.type == "enumeration" or not lowercase:
        return value
    return value.lower()


def _token_match(column: Column, token: str) -> tuple[str, list]:
    """HubSpot matches whole tokens, and ``*`` completes a partial one (``*@hubspot.com``)."""
    text = f"lower({column.sql})"
    token = token.lower()
    if "*" in token:
        pattern = "%".join(_like_literal(part) for part in token.split("*"))
        return f"{text} like ? escape '{LIKE_ESCAPE}'", [pattern]
    word = _like_literal(token)
    return (
        f"({text} = ? or {text} like ? escape '{LIKE_ESCAPE}' or {text} like ? escape '{LIKE_ESCAPE}' "
        f"or {text} like ? escape '{LIKE_ESCAPE}')",
        [token, f"{word} %", f"% {word}", f"% {word} %"],
    )


def _like_literal(text: str) -> str:
    return "".join(LIKE_ESCAPE + char if char in "%_" + LIKE_ESCAPE else char for char in text)


def _free_text(query: str, searchable: list[Column]) -> tuple[str, list]:
    """``query`` finds records whose default searchable properties contain the text."""
    if not searchable:
        return "0", []
    pattern = f"%{_like_literal(query.lower())}%"
    matches = [f"lower({column.sql}) like ? escape '{LIKE_ESCAPE}'" for column in searchable]
    return "(" + " or ".join(matches) + ")", [pattern] * len(searchable)


def _order_by(sorts: list[Sort | str], resolve) -> str:
    if len(sorts) > 1:
        raise SearchError("Only one sort can be applied to a search")
    if not sorts:
        return "o.id"  # HubSpot's default: oldest record first
    sort = sorts[0]
    if isinstance(sort, str):
        sort = Sort(
            propertyName=sort.removeprefix("-"), direction="DESCENDING" if sort.startswith("-") else "ASCENDING"
        )
    column = _column(resolve, sort.propertyName)
    direction = "desc" if sort.direction == "DESCENDING" else "asc"
    # Records without a value come last either way; equal values keep record order, so paging is stable.
    missing_last = f"({column.sql} is null), " if column.nullable else ""
    return f"{missing_last}{_compared(column)} {direction}, o.id {direction}"
