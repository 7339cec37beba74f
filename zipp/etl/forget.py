"""``zipp forget``: remove authors from every table of the lake, then vacuum.

Every Delta table under the lake (bronze, quarantine, silver, gold including ``gold/personas`` and
any later table) loses the rows whose ``user_key`` is one of the authors' salted keys or whose
``author`` is one of the names. Vacuum (retention 0) then deletes the files that held them, so old
versions cannot bring them back. The deletion is recorded in ``_etl/forget_log`` (counts per table)
and the keys in ``_etl/forgotten`` (salted hashes only), which later runs exclude from silver->gold.
Not reachable: quarantine lines too broken to name their author, and copies outside the lake.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from zipp import lake as lakeio
from zipp.etl.schemas import ETL_FORGET_LOG, ETL_FORGET_LOG_SCHEMA, ETL_FORGOTTEN, ETL_FORGOTTEN_SCHEMA
from zipp.identity import user_key

log = logging.getLogger(__name__)
_BATCH = 500


def read_authors(path: str | Path) -> list[str]:
    names = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    return sorted(set(names))


def lake_tables(lake: str | Path) -> list[str]:
    """Names (relative paths) of every Delta table under the lake, bookkeeping under _etl/ excluded."""
    root = Path(lake)
    out = []
    for log_dir in sorted(root.rglob("_delta_log")):
        rel = log_dir.parent.relative_to(root)
        if rel.parts and rel.parts[0] in ("_etl", "_staging"):
            continue
        out.append(rel.as_posix())
    return out


def _quote(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def forget(lake: str | Path, authors: list[str], salt: str, run_id: str) -> dict:
    from deltalake import DeltaTable

    now = datetime.now(timezone.utc)
    keys = sorted({user_key(a, salt) for a in authors})
    per_table = {}
    for name in lake_tables(lake):
        dt = DeltaTable(lakeio.table_uri(lake, name))
        cols = set(pa.schema(dt.schema().to_arrow()).names)
        targets = [(c, vals) for c, vals in (("user_key", keys), ("author", authors)) if c in cols]
        if not targets:
            continue
        deleted = 0
        for col, vals in targets:
            for i in range(0, len(vals), _BATCH):
                pred = f"{col} IN ({', '.join(_quote(v) for v in vals[i:i + _BATCH])})"
                deleted += int(dt.delete(pred).get("num_deleted_rows", 0) or 0)
        removed = dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
        per_table[name] = {"rows_deleted": deleted, "files_vacuumed": len(removed)}
        log.info("forget: %s: %d rows deleted, %d files vacuumed", name, deleted, len(removed))
    lakeio.write_arrow(lake, ETL_FORGOTTEN, pa.table({
        "user_key": keys, "requested_at": [now] * len(keys), "run_id": [run_id] * len(keys)}, schema=ETL_FORGOTTEN_SCHEMA),
        mode="append" if lakeio.exists(lake, ETL_FORGOTTEN) else "overwrite")
    rows = [{"run_id": run_id, "requested_at": now, "n_authors": len(authors), "table_name": t,
             "rows_deleted": v["rows_deleted"], "files_vacuumed": v["files_vacuumed"]} for t, v in per_table.items()]
    lakeio.write_arrow(lake, ETL_FORGET_LOG, pa.Table.from_pylist(rows, schema=ETL_FORGET_LOG_SCHEMA),
                       mode="append" if lakeio.exists(lake, ETL_FORGET_LOG) else "overwrite")
    staging = Path(lake) / "_staging"
    if staging.is_dir():  # leftovers of killed runs may hold the same rows
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return {"run_id": run_id, "authors": len(authors), "tables": per_table,
            "rows_deleted": sum(v["rows_deleted"] for v in per_table.values())}
