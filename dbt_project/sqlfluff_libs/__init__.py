"""dbt's Jinja context as far as this project uses it, for sqlfluff's jinja templater (see ../.sqlfluff).

sqlfluff's `apply_dbt_builtins` stands in for ref, source, config, this, is_incremental and return;
the names here fill in the rest: the `dbt` namespace of cross-database macros, `adapter.dispatch`,
`var` (read from the `dbt_vars` context in .sqlfluff), `target` and `execute`. Each macro renders
as dbt-duckdb renders it, closely enough for the SQL around it to parse; the lint never reports on
templated text, so only the shape matters. No database is connected: `execute` is false, so
`source_or_empty` renders its `select ... from <source>` branch.

sqlfluff imports this package itself (`library_path`); nothing else imports it.
"""

from jinja2 import pass_context

execute = False


class _Namespace:
    """Attribute access for the templates, like dbt's own objects."""

    def __init__(self, **members):
        self.__dict__.update(members)


target = _Namespace(type="duckdb", name="duckdb", schema="main", database="warehouse")


@pass_context
def var(context, name, default=None):
    """dbt's `var`: the value in `dbt_vars` (the templater context), else the default given."""
    return (context.get("dbt_vars") or {}).get(name, default)


@pass_context
def _dispatch(context, macro_name, macro_namespace=None):
    """dbt's `adapter.dispatch`: the `duckdb__` implementation of a project macro, else `default__`."""
    for prefix in ("duckdb__", "default__"):
        macro = context.get(prefix + macro_name)
        if macro is not None:
            return macro
    raise LookupError(f"no duckdb__ or default__ implementation of macro {macro_name!r}")


adapter = _Namespace(dispatch=_dispatch, get_relation=lambda database, schema, identifier: identifier)


def _dateadd(datepart, interval, from_date_or_timestamp):
    return f"({from_date_or_timestamp} + ({interval}) * interval '1 {datepart}')"


def _datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def _date_spine(datepart, start_date, end_date):
    return (
        f"select cast(spine.date_{datepart} as timestamp) as date_{datepart}\n"
        f"    from generate_series(cast({start_date} as timestamp), cast({end_date} as timestamp),"
        f" interval '1 {datepart}') as spine (date_{datepart})"
    )


dbt = _Namespace(
    type_string=lambda: "varchar",
    type_int=lambda: "integer",
    type_bigint=lambda: "bigint",
    type_numeric=lambda: "numeric(28, 6)",
    type_timestamp=lambda: "timestamp",
    current_timestamp=lambda: "now()",
    cast=lambda field, type: f"cast({field} as {type})",
    string_literal=lambda value: "'" + value.replace("'", "''") + "'",
    concat=lambda fields: "(" + " || ".join(fields) + ")",
    hash=lambda field: f"md5(cast({field} as varchar))",
    replace=lambda field, old_chars, new_chars: f"replace({field}, {old_chars}, {new_chars})",
    split_part=lambda string_text, delimiter_text, part_number: (
        f"split_part({string_text}, {delimiter_text}, {part_number})"
    ),
    date_trunc=lambda datepart, date: f"date_trunc('{datepart}', {date})",
    dateadd=_dateadd,
    datediff=_datediff,
    date_spine=_date_spine,
)
