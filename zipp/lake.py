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
    from deltalake import DeltaTable

    dt = DeltaTable(table_uri(lake, name), version=version)
    return dt.to_pyarrow_table(columns=list(columns) if columns else None, filters=filters)


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
