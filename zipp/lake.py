"""Small Delta-table helpers over delta-rs (``deltalake``), shared by every stage.

Spark-side writing (Parquet staged by Spark, committed by delta-rs, or native Delta when the jars
are on the classpath) lives in ``zipp.etl``; this module covers Arrow-side reads and writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pyarrow as pa


def table_uri(lake: str | Path, name: str) -> str:
    return str(Path(lake) / name)


def exists(lake: str | Path, name: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(table_uri(lake, name))


def read_arrow(lake: str | Path, name: str, columns: Iterable[str] | None = None, filters=None, version: int | None = None) -> pa.Table:
    """The table (or ``columns``), optionally filtered: ``filters`` is a list of ``(column, op, value)``
    (AND), op one of ``= != < <= > >= in "not in"``. Partition-column filters prune files; the others
    are evaluated on the rows."""
    from deltalake import DeltaTable

    dt = DeltaTable(table_uri(lake, name), version=version)
    cols = list(columns) if columns else None
    if not filters:
        return dt.to_pyarrow_table(columns=cols)
    parts = set(dt.metadata().partition_columns)
    on_parts = [f for f in filters if f[0] in parts]
    on_rows = [f for f in filters if f[0] not in parts]
    dataset = dt.to_pyarrow_dataset(partitions=on_parts or None)
    return dataset.to_table(columns=cols, filter=_row_filter(on_rows, dataset.schema))


_OPS = {"=": "__eq__", "==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


def _row_filter(filters: list[tuple], schema: pa.Schema):
    """An Arrow dataset expression. String columns are compared after a cast to ``string``: files that
    delta-rs rewrote (DELETE, MERGE) store them as ``string_view``, and pyarrow has no kernel comparing
    the two, so a plain ``field == "x"`` fails on a table that has seen a delete."""
    import pyarrow.compute as pc

    expr = None
    for col, op, value in filters:
        field = pc.field(col)
        if pa.types.is_string(schema.field(col).type) or pa.types.is_large_string(schema.field(col).type):
            field = field.cast(pa.string())
        if op == "in":
            e = field.isin(list(value))
        elif op == "not in":
            e = ~field.isin(list(value))
        elif op in _OPS:
            e = getattr(field, _OPS[op])(value)
        else:
            raise ValueError(f"unsupported filter operator {op!r} (use one of {sorted(_OPS)} in, not in)")
        expr = e if expr is None else expr & e
    return expr


def write_arrow(
    lake: str | Path,
    name: str,
    data: pa.Table,
    mode: str = "overwrite",
    partition_by: list[str] | None = None,
    predicate: str | None = None,
    schema: pa.Schema | None = None,
) -> None:
    """Atomic Delta commit. ``predicate`` with mode='overwrite' replaces only matching rows
    (delta-rs' replaceWhere), e.g. ``"month = '2016-01'"``."""
    from deltalake import write_deltalake

    if schema is not None:
        data = data.select(schema.names).cast(schema)
    kwargs = {}
    if predicate is not None:
        kwargs["predicate"] = predicate
    write_deltalake(
        table_uri(lake, name), data, mode=mode, partition_by=partition_by,
        schema_mode="overwrite" if mode == "overwrite" and predicate is None else None, **kwargs,
    )


def version(lake: str | Path, name: str) -> int:
    from deltalake import DeltaTable

    return DeltaTable(table_uri(lake, name)).version()
