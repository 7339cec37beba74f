"""Fixtures of the ETL tests: dump files written in code, a CLI runner, table content hashes."""

from __future__ import annotations

import os
import sys

# Spark's Python workers must use this interpreter (polars, orjson, zstandard live in its venv);
# conftest files load before any fixture starts the session.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def etl_cli(spark):
    """Run `zipp <args>` in-process (reusing the session's Spark); returns (exit_code, output)."""
    from typer.testing import CliRunner

    from zipp.cli import app

    def run(*args: str) -> tuple[int, str]:
        import logging

        try:
            res = CliRunner().invoke(app, ["--conf-dir", str(REPO / "conf"), *map(str, args)], catch_exceptions=False)
        finally:  # the CLI's log handler writes to the runner's stream, closed after invoke
            root = logging.getLogger()
            for h in [h for h in root.handlers if getattr(h, "_zipp", False)]:
                root.removeHandler(h)
        return res.exit_code, res.output

    return run


def table_hash(lake: Path, name: str, exclude: tuple[str, ...] = ()) -> str:
    """Order-independent hash of a Delta table's rows."""
    from zipp import lake as lakeio

    t = lakeio.read_arrow(lake, name)
    cols = [c for c in t.column_names if c not in exclude]
    rows = sorted(repr(tuple(r[c] for c in cols)) for r in t.select(cols).to_pylist())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def all_tables(lake: Path) -> list[str]:
    return sorted(p.parent.relative_to(lake).as_posix() for p in Path(lake).rglob("_delta_log"))
