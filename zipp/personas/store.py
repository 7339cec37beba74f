"""The persona store: Delta table ``gold/personas``, one row per (user_key, version).

Versions only grow: a generation run appends version ``max + 1`` for each user it does, an edit
(``zipp persona edit``) appends one with ``source=edited``. Later stages read
:func:`latest_personas`: per user the highest ``status=ok`` version, or the pinned one.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from zipp import tables
from zipp.lake import exists, read_arrow, table_uri, write_arrow
from zipp.personas.backends.base import PersonaResult
from zipp.personas.schema import Persona, persona_to_json

SCHEMA = tables.GOLD_PERSONAS_SCHEMA
NAME = tables.GOLD_PERSONAS


def now() -> datetime:
    return datetime.now(timezone.utc)


def result_rows(results: Sequence[PersonaResult], *, backend: str, model: str, config_hash: str, run: str) -> list[dict]:
    """PersonaResults -> rows of SCHEMA (version still 0: the writer assigns it)."""
    rows = []
    ts = now()
    for r in results:
        ev = r.evidence
        rows.append({
            "user_key": r.user_key, "user_id": r.user_id, "version": 0, "status": r.status,
            "error": r.error if r.status != "ok" else None,
            "persona_json": persona_to_json(r.persona) if r.persona is not None else None,
            "persona_text": r.persona.persona_text if r.persona is not None else None,
            "evidence": ev.accounting() if ev is not None else [],
            "evidence_tokens": ev.evidence_tokens if ev is not None else 0,
            "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "attempts": r.attempts,
            "token_budget": ev.budget if ev is not None else None, "ranking": r.ranking,
            "backend": backend, "model": model, "prompt_hash": r.prompt_hash, "config_hash": config_hash,
            "source": "generated", "run": run, "created_at": ts,
        })
    return rows


def to_table(rows: Sequence[Mapping]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=SCHEMA)


def read_personas(lake: str | Path, columns: Iterable[str] | None = None, user_keys: Sequence[str] | None = None) -> pa.Table:
    if not exists(lake, NAME):
        return SCHEMA.empty_table() if columns is None else SCHEMA.empty_table().select(list(columns))
    return read_arrow(lake, NAME, columns, [("user_key", "in", list(user_keys))] if user_keys is not None else None)


def max_versions(lake: str | Path, user_keys: Sequence[str] | None = None) -> dict[str, int]:
    t = read_personas(lake, ["user_key", "version"], user_keys)
    if t.num_rows == 0:
        return {}
    g = t.group_by("user_key").aggregate([("version", "max")])
    return dict(zip(g.column("user_key").to_pylist(), g.column("version_max").to_pylist()))


def append(lake: str | Path, rows: Sequence[Mapping], versions: dict[str, int] | None = None) -> pa.Table:
    """Assign versions (``versions`` holds each user's current max and is updated) and append."""
    if not rows:
        return SCHEMA.empty_table()
    versions = versions if versions is not None else max_versions(lake, [r["user_key"] for r in rows])
    out = []
    for r in rows:
        v = versions.get(r["user_key"], 0) + 1
        versions[r["user_key"]] = v
        out.append({**r, "version": v})
    table = to_table(out)
    write_arrow(lake, NAME, table, mode="append", schema=SCHEMA)
    return table


def done_users(lake: str | Path, config_hash: str, include_failed: bool) -> set[str]:
    """Users that already have a generated row for this config hash (ok, or ok-or-failed)."""
    t = read_personas(lake, ["user_key", "status", "config_hash", "source"])
    if t.num_rows == 0:
        return set()
    mask = pc.equal(t["config_hash"], config_hash)
    if not include_failed:
        mask = pc.and_(mask, pc.equal(t["status"], "ok"))
    return set(t.filter(mask).column("user_key").to_pylist())


def latest_personas(lake: str | Path, pinned: Mapping[str, int] | None = None, columns: Sequence[str] | None = None) -> pa.Table:
    """One row per user: the pinned version if given for that user, else the latest ``ok`` version."""
    t = read_personas(lake)
    if t.num_rows == 0:
        return t if columns is None else t.select(list(columns))
    ok = t.filter(pc.equal(t["status"], "ok"))
    g = ok.group_by("user_key").aggregate([("version", "max")])
    want = dict(zip(g.column("user_key").to_pylist(), g.column("version_max").to_pylist()))
    for k, v in (pinned or {}).items():
        want[k] = int(v)
    mask = [want.get(k) == v for k, v in zip(t.column("user_key").to_pylist(), t.column("version").to_pylist())]
    out = t.filter(pa.array(mask, pa.bool_())).select(SCHEMA.names)
    missing = set(want) - set(out.column("user_key").to_pylist())
    pinned_missing = sorted(k for k in missing if pinned and k in pinned)
    if pinned_missing:
        raise KeyError(f"pinned persona versions not found for users {pinned_missing[:5]}")
    out = out.sort_by([("user_key", "ascending")])
    return out if columns is None else out.select(list(columns))


def user_versions(lake: str | Path, user_key: str) -> pa.Table:
    t = read_personas(lake, user_keys=[user_key])
    return t.sort_by([("version", "ascending")])


def edit_persona(lake: str | Path, user_key: str, persona: Persona, base_version: int | None = None, run: str = "edit") -> dict:
    """Append a ``source=edited`` version built from ``persona``; evidence and provenance are copied
    from the base version (default: the latest ok one). Returns the new row."""
    rows = user_versions(lake, user_key).to_pylist()
    if not rows:
        raise KeyError(f"no persona for user {user_key!r}")
    if base_version is None:
        ok = [r for r in rows if r["status"] == "ok"]
        base = (ok or rows)[-1]
    else:
        match = [r for r in rows if r["version"] == base_version]
        if not match:
            raise KeyError(f"user {user_key!r} has no version {base_version}")
        base = match[0]
    new = {
        **base, "status": "ok", "error": None, "persona_json": persona_to_json(persona),
        "persona_text": persona.persona_text, "source": "edited", "run": run, "created_at": now(),
        "prompt_hash": None, "completion_tokens": 0, "attempts": 0,
    }
    table = append(lake, [new], {user_key: max(r["version"] for r in rows)})
    return table.to_pylist()[0]


def forget_personas(lake: str | Path, user_keys: Sequence[str]) -> int:
    """Delete every version for these users (``zipp forget``). Returns the number of rows removed."""
    if not user_keys or not exists(lake, NAME):
        return 0
    from deltalake import DeltaTable

    dt = DeltaTable(table_uri(lake, NAME))
    keys = ", ".join("'" + k.replace("'", "''") + "'" for k in sorted(set(user_keys)))
    metrics = dt.delete(f"user_key IN ({keys})")
    return int((metrics or {}).get("num_deleted_rows", 0))


def persona_dict(row: Mapping) -> dict:
    return json.loads(row["persona_json"]) if row.get("persona_json") else {}
