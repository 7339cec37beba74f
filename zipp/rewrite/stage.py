"""Pipeline stage: latest personas -> rewritten prompts (``gold/rewritten_prompts``).

Every sampled user gets the same ``rewrite.n_base_prompts`` base prompts (so users can be compared
prompt by prompt), rewritten zero-shot or with the user's ``rewrite.shots`` most recent past
prompts as examples. Retry-safe: rows are keyed by a config hash (rewrite settings + backend/model
+ persona version); a rerun with the same config writes nothing, another config adds its own rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from zipp import lake as lk
from zipp.config import ZippConfig
from zipp.rewrite.prompt import PROMPT_VERSION, build_messages, postprocess, prompt_id, roleplay_instruction, template_rewrite
from zipp.stage import Resources, Stage, StageContext, StageResult
from zipp.tables import GOLD_REWRITTEN_PROMPTS, GOLD_REWRITTEN_PROMPTS_SCHEMA

log = logging.getLogger(__name__)


def load_base_prompts(path: str | None) -> list[str]:
    """One prompt per line (.txt), a JSON list of strings, or a JSON list of {prompt: ...} objects."""
    if path is None:
        text = resources.files("zipp.rewrite").joinpath("base_prompts.txt").read_text()
        return [ln.strip() for ln in text.splitlines() if ln.strip()]
    p = Path(path)
    if p.suffix == ".json":
        data = json.loads(p.read_text())
        items = [d["prompt"] if isinstance(d, dict) else d for d in data]
        return [str(x).strip() for x in items if str(x).strip()]
    return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]


def load_history(cfg: ZippConfig) -> dict[str, list[str]]:
    """user_key -> past prompts, most recent first (empty when no history file exists)."""
    from zipp.identity import resolve_salt, user_key

    path = Path(cfg.rewrite.user_prompts or Path(cfg.paths.dump) / "prompts.parquet")
    if not path.is_file():
        return {}
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["author", "prompt", "created"]).sort_by([("created", "descending")])
    salt = resolve_salt(cfg.etl)
    out: dict[str, list[str]] = {}
    for author, prompt in zip(t["author"].to_pylist(), t["prompt"].to_pylist(), strict=True):
        out.setdefault(user_key(author, salt), []).append(prompt)
    return out


def config_hash(cfg: ZippConfig) -> str:
    r = cfg.rewrite
    model = cfg.personas.model if r.backend == "llm" else "template"
    key = [PROMPT_VERSION, r.backend, model, r.shots, r.base_prompts, r.n_base_prompts, r.max_prompt_chars]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


class RewriteStage(Stage):
    name = "rewrite"
    resources = Resources(cpus=1)

    def setup(self, ctx: StageContext) -> None:
        self.backend = None
        if ctx.cfg.rewrite.backend == "llm":
            from zipp.personas.backends import ChatBackend, make_backend

            backend = make_backend(ctx.cfg)
            if not isinstance(backend, ChatBackend):
                raise ValueError(f"rewrite.backend=llm needs an LLM persona backend; personas.backend={ctx.cfg.personas.backend!r} has none")
            backend.setup()  # the model loads once here
            self.backend = backend

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.personas.store import latest_personas, persona_dict

        cfg = ctx.cfg
        res = StageResult()
        personas = latest_personas(ctx.lake, columns=["user_key", "user_id", "version", "persona_json"])
        res.rows_in = personas.num_rows
        if cfg.rewrite.sample_users is not None:
            personas = personas.slice(0, cfg.rewrite.sample_users)  # sorted by user_key: a stable sample
        chash = config_hash(cfg)
        if lk.exists(ctx.lake, GOLD_REWRITTEN_PROMPTS):
            have = lk.read_arrow(ctx.lake, GOLD_REWRITTEN_PROMPTS, columns=["user_key", "persona_version", "config_hash"])
            have = have.filter(pc.equal(have["config_hash"], chash))
            done = set(zip(have["user_key"].to_pylist(), have["persona_version"].to_pylist()))
        else:
            done = set()
        bases = load_base_prompts(cfg.rewrite.base_prompts)[: cfg.rewrite.n_base_prompts]
        history = load_history(cfg) if cfg.rewrite.shots else {}
        rows, requests = [], []
        now = datetime.now(timezone.utc)
        for row in personas.to_pylist():
            if (row["user_key"], row["version"]) in done:
                res.drop("already_rewritten")
                continue
            persona = persona_dict(row)
            instruction = roleplay_instruction(persona)
            examples = history.get(row["user_key"], [])[: cfg.rewrite.shots]
            for base in bases:
                rec = {
                    "user_key": row["user_key"], "user_id": row["user_id"], "persona_version": row["version"],
                    "prompt_id": prompt_id(base), "base_prompt": base, "shots": len(examples), "examples": examples,
                    "instruction": instruction, "rewritten": None, "status": "ok", "error": None,
                    "backend": cfg.rewrite.backend, "model": cfg.personas.model if self.backend else "template",
                    "config_hash": chash, "created_at": now,
                }
                if self.backend is None:
                    rec["rewritten"] = template_rewrite(persona, base, examples, cfg.rewrite.max_prompt_chars)
                else:
                    requests.append((rec, build_messages(instruction, base, examples)))
                rows.append(rec)
        if requests:
            self._rewrite_with_llm(requests, cfg.rewrite.max_prompt_chars)
        for rec in rows:
            if not rec["rewritten"]:
                rec["status"] = "failed"
                rec["error"] = rec["error"] or "empty rewrite"
                res.drop("failed")
        if rows:
            table = pa.Table.from_pylist(rows, schema=GOLD_REWRITTEN_PROMPTS_SCHEMA)
            lk.write_arrow(ctx.lake, GOLD_REWRITTEN_PROMPTS, table, mode="append", schema=GOLD_REWRITTEN_PROMPTS_SCHEMA)
        res.rows_out = sum(r["status"] == "ok" for r in rows)
        res.extra = {"config_hash": chash, "base_prompts": len(bases), "users": len({r["user_key"] for r in rows})}
        return res

    def _rewrite_with_llm(self, requests: list[tuple[dict, list[dict]]], max_chars: int) -> None:
        from zipp.personas.backends import ChatRequest

        gens = self.backend.generate([ChatRequest(messages=m) for _, m in requests])
        for (rec, _), g in zip(requests, gens, strict=True):
            if isinstance(g, Exception):
                rec["error"] = f"backend error: {type(g).__name__}: {g}"[:500]
            else:
                rec["rewritten"] = postprocess(g.text, max_chars) or None
                if rec["rewritten"] is None:
                    rec["error"] = "the model's reply held no prompt"
