"""Pipeline stage: the run report (``<run>/report.json`` + ``report.md``).

- content: CLIPScore of each image against its *base* prompt, personalized vs non-personalized;
- personalization: a CLIP judge prefers, per (user, prompt), the image closer to the user's persona
  text; wins of personalized over base with an exact binomial test, raw and IPF-weighted to UN WPP
  2024 adult age×sex marginals (persona demographics as the respondent's cells);
- distribution shift: CMMD between personalized and base images;
- persona accuracy against the generator's ground truth when ``<paths.dump>/truth`` exists,
  with Cohen's κ between persona and planted age bands.
When the CLIP or diffusion model is a random-weight local model the report says so at the top: its
numbers check the plumbing and mean nothing about ZIPP.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from zipp import lake as lk
from zipp.evaluation.metrics import binomial_test, clip_score, cmmd, cohen_kappa, ipf, pairwise_preference
from zipp.stage import Resources, Stage, StageContext, StageResult
from zipp.tables import GOLD_GENERATED_IMAGES, GOLD_REWRITTEN_PROMPTS

log = logging.getLogger(__name__)


def persona_judge_text(persona: dict) -> str:
    """The text a CLIP judge compares images with: interests + aesthetics (+ prose)."""
    bits = list(persona.get("interests") or [])[:6] + list(persona.get("visual_aesthetics") or [])[:4]
    return ", ".join(bits) or (persona.get("persona_text") or "")


def _wpp_dir(cfg) -> Path | None:
    if cfg.evaluation.wpp_dir:
        return Path(cfg.evaluation.wpp_dir)
    guess = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wpp"
    return guess if guess.is_dir() else None


class EvaluateStage(Stage):
    name = "evaluate"
    resources = Resources(cpus=1)

    def setup(self, ctx: StageContext) -> None:
        from zipp.images.clip import get_clip

        self.clip = get_clip(ctx.cfg.images)  # loads once

    def run(self, ctx: StageContext) -> StageResult:
        from PIL import Image

        from zipp.personas.store import latest_personas, persona_dict

        cfg = ctx.cfg
        imgs = lk.read_arrow(ctx.lake, GOLD_GENERATED_IMAGES)
        prompts = lk.read_arrow(ctx.lake, GOLD_REWRITTEN_PROMPTS, columns=["user_key", "prompt_id", "base_prompt", "status"])
        prompts = prompts.filter(pc.equal(prompts["status"], "ok"))
        personas = {r["user_key"]: persona_dict(r) for r in latest_personas(ctx.lake).to_pylist()}
        res = StageResult(rows_in=imgs.num_rows)

        base = {r["prompt_id"]: r for r in imgs.filter(pc.equal(imgs["variant"], "base")).to_pylist()}
        pers = {(r["user_key"], r["prompt_id"]): r for r in imgs.filter(pc.equal(imgs["variant"], "personalized")).to_pylist()}
        pairs = []
        for r in prompts.to_pylist():
            key = (r["user_key"], r["prompt_id"])
            if key in pers and r["prompt_id"] in base and r["user_key"] in personas:
                pairs.append((r, pers[key], base[r["prompt_id"]]))
            else:
                res.drop("missing_image_or_persona")
        report: dict = {"run": ctx.run_dir.name, "pairs": len(pairs), "models": {
            "clip": self.clip.model_id,
            "diffusion": sorted(set(imgs["model_id"].to_pylist())) if imgs.num_rows else [],
        }}
        random_models = [m for m in [self.clip.model_id, *report["models"]["diffusion"]] if "random-init" in m]
        report["not_meaningful"] = bool(random_models)
        if pairs:
            paths = sorted({p[1]["path"] for p in pairs} | {p[2]["path"] for p in pairs})
            emb = dict(zip(paths, self.clip.embed_images([Image.open(p).convert("RGB") for p in paths]), strict=True))
            base_txt = self.clip.embed_texts([p[0]["base_prompt"] for p in pairs])
            judge_txt = self.clip.embed_texts([persona_judge_text(personas[p[0]["user_key"]]) for p in pairs])
            e_pers = np.stack([emb[p[1]["path"]] for p in pairs])
            e_base = np.stack([emb[p[2]["path"]] for p in pairs])
            cs_pers, cs_base = clip_score(e_pers, base_txt), clip_score(e_base, base_txt)
            j_pers, j_base = clip_score(e_pers, judge_txt), clip_score(e_base, judge_txt)
            wins, losses, ties = pairwise_preference(j_pers, j_base)
            bt = binomial_test(wins, wins + losses, alpha=cfg.evaluation.alpha)
            report["content_clipscore"] = {"personalized": float(cs_pers.mean()), "base": float(cs_base.mean())}
            report["persona_clipscore"] = {"personalized": float(j_pers.mean()), "base": float(j_base.mean())}
            report["judge"] = {"wins": wins, "losses": losses, "ties": ties, "win_rate": bt.rate,
                               "p_value": bt.p_value, "ci": [bt.ci_low, bt.ci_high]}
            uniq_p = np.unique(e_pers, axis=0)
            uniq_b = np.unique(e_base, axis=0)
            if len(uniq_p) >= 2 and len(uniq_b) >= 2:
                report["cmmd_personalized_vs_base"] = cmmd(uniq_p, uniq_b, sigma=cfg.evaluation.cmmd_sigma)
            report["raked"] = self._raked(cfg, pairs, personas, j_pers, j_base)
        truth = Path(cfg.paths.dump) / "truth" / "users.parquet"
        if truth.is_file() and personas:
            report["persona_accuracy"] = self._accuracy(cfg, truth, ctx)
        (ctx.run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
        (ctx.run_dir / "report.md").write_text(render_markdown(report))
        res.rows_out = len(pairs)
        res.extra = {"report": str(ctx.run_dir / "report.md")}
        return res

    def _raked(self, cfg, pairs, personas, j_pers, j_base) -> dict:
        wpp = _wpp_dir(cfg)
        if wpp is None:
            return {"skipped": "no WPP data (evaluation.wpp_dir)"}
        from zipp.evaluation.wpp import adult_marginals

        targets = adult_marginals(wpp)
        cells = []
        for p in pairs:
            d = personas[p[0]["user_key"]].get("demographics") or {}
            cells.append({"age_band": (d.get("age_band") or {}).get("value"), "gender": (d.get("gender") or {}).get("value")})
        # Rake only on margins and categories the personas actually cover (unknowns carry no
        # demographic signal); shrinking one margin can empty a category of another, so iterate.
        usable = {dim: dict(t) for dim, t in targets.items()}
        idx: list[int] = []
        for _ in range(5):
            idx = [i for i, c in enumerate(cells) if all(c[d] in usable[d] for d in usable)]
            shrunk = {d: {c: v for c, v in t.items() if any(cells[i][d] == c for i in idx)} for d, t in usable.items()}
            shrunk = {d: t for d, t in shrunk.items() if len(t) >= 2}
            if shrunk == usable:
                break
            usable = shrunk
        idx = [i for i, c in enumerate(cells) if all(c[d] in usable[d] for d in usable)]
        if not usable or len(idx) < 2:
            return {"skipped": "personas state too few demographics to rake"}
        fit = ipf([cells[i] for i in idx], usable)
        win = (j_pers[idx] > j_base[idx]).astype(float)
        return {"margins": sorted(usable), "users": len(idx), "weighted_win_rate": float(np.average(win, weights=fit.weights)),
                "unweighted_win_rate": float(win.mean()), "effective_n": fit.effective_n, "converged": fit.converged}

    def _accuracy(self, cfg, truth_path: Path, ctx) -> dict:
        import pyarrow.parquet as pq

        from zipp.identity import resolve_salt, user_key
        from zipp.personas.store import latest_personas

        truth = pq.read_table(truth_path).to_pylist()
        salt = resolve_salt(cfg.etl)
        by_key = {user_key(t["author"], salt): t for t in truth}
        got, want = [], []
        loc_hits = loc_n = 0
        for r in latest_personas(ctx.lake).to_pylist():
            t = by_key.get(r["user_key"])
            if not t:
                continue
            p = json.loads(r["persona_json"])
            band = p["demographics"]["age_band"]["value"]
            if band != "unknown" and t.get("age_band"):
                got.append(band)
                want.append(t["age_band"])
            loc = p["demographics"]["location"]["value"].lower()
            if t.get("country"):
                loc_n += 1
                loc_hits += int(str(t["country"]).lower() in loc or str(t.get("city") or "#").lower() in loc)
        return {"users_matched": loc_n, "location_acc": loc_hits / loc_n if loc_n else None,
                "age_band_n": len(got), "age_band_kappa": cohen_kappa(got, want) if got else None}


def render_markdown(r: dict) -> str:
    lines = [f"# zipp run report: {r['run']}", ""]
    if r.get("not_meaningful"):
        lines += ["> **Not meaningful.** Random-weight local models were used (" + ", ".join(
            m for m in [r["models"]["clip"], *r["models"]["diffusion"]] if "random-init" in m) + "). "
            "These numbers check that the pipeline runs end to end; they say nothing about ZIPP's quality.", ""]
    lines += [f"- pairs (user × base prompt): {r['pairs']}", f"- CLIP: `{r['models']['clip']}`; diffusion: {', '.join(f'`{m}`' for m in r['models']['diffusion']) or '-'}"]
    if "content_clipscore" in r:
        c, p, j = r["content_clipscore"], r["persona_clipscore"], r["judge"]
        lines += [
            f"- CLIPScore vs base prompt: personalized {c['personalized']:.2f}, base {c['base']:.2f}",
            f"- CLIPScore vs persona: personalized {p['personalized']:.2f}, base {p['base']:.2f}",
            f"- CLIP judge: personalized wins {j['wins']}/{j['wins'] + j['losses']} (ties {j['ties']}), "
            f"rate {j['win_rate']:.3f}, 95% CI [{j['ci'][0]:.3f}, {j['ci'][1]:.3f}], binomial p = {j['p_value']:.3g}",
        ]
    if "cmmd_personalized_vs_base" in r:
        lines.append(f"- CMMD personalized vs base: {r['cmmd_personalized_vs_base']:.3f}")
    if "raked" in r:
        k = r["raked"]
        lines.append(f"- IPF to UN WPP 2024: {k}" if "skipped" in k else
                     f"- IPF to UN WPP 2024 ({', '.join(k['margins'])}): weighted win rate {k['weighted_win_rate']:.3f} "
                     f"(unweighted {k['unweighted_win_rate']:.3f}, effective n {k['effective_n']:.1f})")
    if "persona_accuracy" in r:
        a = r["persona_accuracy"]
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"- persona accuracy vs truth ({a['users_matched']} users): location {fmt(a['location_acc'])}, "
                     f"age-band Cohen's κ {fmt(a['age_band_kappa'])} (n={a['age_band_n']} users with a stated age band)")
    return "\n".join(lines) + "\n"
