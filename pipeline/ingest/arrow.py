"""Arrow tables handed to dlt, which writes them as Parquet without normalizing each row."""

from __future__ import annotations

from collections.abc import Iterator

import dlt
import pyarrow as pa
from dlt.common.normalizers.utils import generate_dlt_ids
from dlt.extract.hints import TResourceHints

ROW_ID = pa.field("_dlt_id", pa.string(), nullable=False)


def with_row_ids(table: pa.Table) -> pa.Table:
    """``table`` with dlt's row id: a table first loaded row by row requires one, and Arrow rows get
    none unless they bring it."""
    return table.append_column(ROW_ID, pa.array(generate_dlt_ids(table.num_rows), pa.string()))


def with_key_required(table: pa.Table, key: str) -> pa.Table:
    """``table`` with its merge key declared never null, as dlt's schema declares it; an Arrow schema
    that disagreed would be reported for every table."""
    index = table.schema.get_field_index(key)
    return table.cast(table.schema.set(index, table.schema.field(index).with_nullable(False)))


class TableBatches:
    """Arrow tables gathered per destination table and handed to dlt ``rows`` at a time: dlt's work
    on each item it is handed (its hints checked, its load id added as a column) costs more than the
    rows of one API page. A table other than the resource's own, named by its hints, gets dlt's row
    ids (:func:`with_row_ids`)."""

    def __init__(self, rows: int):
        self.rows = rows
        self._gathered: dict[str, tuple[list[pa.Table], TResourceHints | None]] = {}

    def add(self, table: pa.Table, hints: TResourceHints | None = None) -> Iterator:
        """Gather ``table``, for the resource's own table or the one ``hints`` name; hand over
        what has been gathered for it once it reaches the batch size."""
        name = str(hints["table_name"]) if hints else ""  # the hints here name their table outright
        tables, _ = self._gathered.setdefault(name, ([], hints))
        tables.append(table)
        if sum(gathered.num_rows for gathered in tables) >= self.rows:
            yield self._hand_over(name)

    def flush(self) -> Iterator:
        """Hand over everything gathered."""
        for name in list(self._gathered):
            yield self._hand_over(name)

    def _hand_over(self, name: str):
        tables, hints = self._gathered.pop(name)
        table = pa.concat_tables(tables)
        return table if hints is None else dlt.mark.with_hints(with_row_ids(table), hints, create_table_variant=True)
