"""Evidence builder: rank a user's subreddits, pack stats + snippets (+ images) into a token budget.

Ranking (``personas.ranking``): ``attention`` uses ``gold/user_subreddit_attention`` rows of the
configured layer with head -1 (mean over heads); ``tfidf`` (baseline, and the fallback for users
the graph has no attention for) weighs ``log1p(activity)`` by the subreddit's inverse user
frequency. The top ``max_subreddits`` are kept and their shares renormalised.

Packing, all counted with the LLM's tokenizer (zipp.personas.tokens):

1. ``available = token_budget - tokens(prompt with an empty evidence block)``;
2. images first when ``multimodal``, in rank order, each costing its placeholder line + the tokens
   the model counts for it (:class:`zipp.personas.tokens.ImageCoster`: the model's own processor on
   the image's pixel size when the model has one, e.g. Qwen2-VL, else ``image_tokens``); together at
   most ``image_budget_share`` of ``available``; an image that does not fit is skipped, a smaller one
   after it may still go in; an image the processor cannot size (no local file) is left out;
3. every community's header (its stats), in rank order, while they fit;
4. snippets per community in snippet rank order within a quota proportional to the community's
   share (``floor(available * share)``);
5. what is left goes to the remaining snippets in (community rank, snippet rank) order; the first
   snippet that does not fit whole is cut at a token boundary and marked (``truncated="true"`` and
   a trailing ``[truncated]``) if at least ``min_snippet_tokens`` fit, then packing stops;
6. the whole prompt is rendered and counted; while it exceeds the budget (token merges across
   item boundaries) the last-added item is removed.

Everything is ordered by explicit keys, so the same inputs give the same evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zipp import tables
from zipp.config import PersonasConfig
from zipp.personas.prompt import evidence_block
from zipp.personas.tokens import ImageCoster, TokenCounter
from zipp.personas.untrusted import clean, clean_inline

TRUNCATION_MARK = " [truncated]"
_SAFETY = 2  # tokens kept free for boundary effects before the final check


class EvidenceError(ValueError):
    """The evidence cannot be built (no data for the user, budget smaller than the instructions)."""


# ----------------------------------------------------------------------------- inputs


@dataclass
class Snippet:
    snippet_id: str
    kind: str
    text: str
    score: int
    rank: int


@dataclass
class Community:
    subreddit: str
    share: float
    stats: dict
    snippets: list[Snippet] = field(default_factory=list)


@dataclass
class ImageRef:
    post_id: str
    url: str
    subreddit: str
    score: float
    path: str | None = None  # the image's bytes in the local content-addressed cache, when there


@dataclass
class UserInputs:
    user_key: str
    user_id: int | None
    ranking: str  # attention | tfidf | tfidf_fallback
    communities: list[Community]
    images: list[ImageRef] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What the job resolved once from the lake (shipped to every worker)."""

    ranking: str
    attention_layer: str | None
    attention_run: str | None
    idf: dict  # subreddit -> idf
    default_idf: float


def _read(lake, name: str, columns: list[str], filters: list[tuple] | None = None) -> pa.Table:
    from zipp.lake import exists, read_arrow

    if not exists(lake, name):
        return pa.table({c: pa.array([], pa.string()) for c in columns}).slice(0, 0)
    return read_arrow(lake, name, columns, filters)


def resolve_plan(lake: str | Path, cfg: PersonasConfig, current_run: str | None = None) -> Plan:
    """Pick the attention run/layer and compute subreddit IDF once for the whole job.

    Attention run: ``personas.attention_run``; else the pipeline's current run when the graph
    wrote attention under that name (``zipp run --run X``); else the only run in the table."""
    from zipp.lake import exists, read_arrow

    layer = run = None
    if cfg.ranking == "attention":
        if not exists(lake, tables.GOLD_ATTENTION):
            raise EvidenceError(
                f"personas.ranking=attention but {tables.GOLD_ATTENTION} does not exist in {lake} "
                "(train the graph first, or set personas.ranking=tfidf)"
            )
        meta = read_arrow(lake, tables.GOLD_ATTENTION, columns=["layer", "run"])
        runs = sorted(set(meta.column("run").to_pylist()))
        run = cfg.attention_run
        if run is None and current_run in runs:
            run = current_run
        if run is None:
            if len(runs) != 1:
                raise EvidenceError(f"{tables.GOLD_ATTENTION} holds runs {runs}: set personas.attention_run")
            run = runs[0]
        elif run not in runs:
            raise EvidenceError(f"personas.attention_run={run!r} not in {tables.GOLD_ATTENTION} (runs: {runs})")
        layers = sorted(set(meta.filter(pc.equal(meta["run"], run)).column("layer").to_pylist()))
        # default: the first layer, whose attention followed planted interests more reliably than the
        # last one's on generated dumps (bench/graph_quality.py: above chance in 3 of 3 seeds vs 2 of 3)
        layer = cfg.attention_layer or (layers[0] if layers else None)
        if layer not in layers:
            raise EvidenceError(f"attention layer {layer!r} not in run {run!r} (layers: {layers})")
    idf, default_idf = _subreddit_idf(lake)
    return Plan(ranking=cfg.ranking, attention_layer=layer, attention_run=run, idf=idf, default_idf=default_idf)


def _subreddit_idf(lake) -> tuple[dict, float]:
    """idf = log((1 + N) / (1 + users of the subreddit)) + 1, from gold/subreddits (+ gold/users for N),
    else aggregated from the edge table."""
    from zipp.lake import exists, read_arrow

    if exists(lake, tables.GOLD_SUBREDDITS) and exists(lake, tables.GOLD_USERS):
        subs = read_arrow(lake, tables.GOLD_SUBREDDITS, columns=["subreddit", "n_users"])
        n = read_arrow(lake, tables.GOLD_USERS, columns=["user_key"]).num_rows
        names, dfs = subs.column("subreddit").to_pylist(), subs.column("n_users").to_pylist()
    elif exists(lake, tables.GOLD_EDGES):
        e = read_arrow(lake, tables.GOLD_EDGES, columns=["user_key", "subreddit"])
        n = pc.count_distinct(e["user_key"]).as_py()
        g = e.group_by("subreddit").aggregate([("user_key", "count_distinct")])
        names, dfs = g.column("subreddit").to_pylist(), g.column("user_key_count_distinct").to_pylist()
    else:
        return {}, 1.0
    idf = {s: math.log((1 + n) / (1 + (d or 0))) + 1.0 for s, d in zip(names, dfs)}
    return idf, math.log(1 + n) + 1.0


class EvidenceSource:
    """Reads the gold inputs for a batch of users (one filtered scan per table per batch).

    ``image_cache`` (``paths.cache``): where ``zipp embed-images`` stored the image bytes
    (``<cache>/images/<sha[:2]>/<sha>``); each ranked image gets its local file from there."""

    def __init__(self, lake: str | Path, cfg: PersonasConfig, plan: Plan, image_cache: str | Path | None = None):
        self.lake, self.cfg, self.plan = str(lake), cfg, plan
        self.image_cache = image_cache

    def load(self, user_keys: Sequence[str], user_ids: dict | None = None) -> dict[str, UserInputs]:
        keys = sorted(set(user_keys))
        if not keys:
            return {}
        in_batch = [("user_key", "in", keys)]
        edges = _read(self.lake, tables.GOLD_EDGES, [
            "user_id", "user_key", "subreddit", "n_comments", "n_submissions", "n_image_posts", "score_sum", "active_months",
        ], in_batch)
        att = None
        if self.plan.ranking == "attention":
            flt = in_batch + [("layer", "=", self.plan.attention_layer), ("head", "=", -1), ("run", "=", self.plan.attention_run)]
            att = _read(self.lake, tables.GOLD_ATTENTION, ["user_id", "user_key", "subreddit", "attention"], flt)
        snips = _read(self.lake, tables.GOLD_SNIPPETS, ["user_key", "subreddit", "snippet_id", "kind", "text", "score", "rank"], in_batch)
        imgs = embs = None
        if self.cfg.multimodal and self.cfg.max_images > 0:
            imgs = _read(self.lake, tables.GOLD_USER_IMAGES, ["user_key", "subreddit", "post_id", "url", "nsfw"], in_batch)
            embs = _read(self.lake, tables.GOLD_IMAGE_EMBEDDINGS, ["user_key", "url", "status", "embedding", "sha256"], in_batch)

        by_user = {k: {"edges": [], "att": [], "snips": [], "imgs": [], "embs": []} for k in keys}
        for name, t in (("edges", edges), ("att", att), ("snips", snips), ("imgs", imgs), ("embs", embs)):
            if t is None or t.num_rows == 0:
                continue
            for row in t.to_pylist():
                by_user[row["user_key"]][name].append(row)

        out = {}
        for k in keys:
            d = by_user[k]
            uid = (user_ids or {}).get(k)
            if uid is None:
                for r in d["att"] + d["edges"]:
                    if r.get("user_id") is not None:
                        uid = r["user_id"]
                        break
            out[k] = self._assemble(k, uid, d)
        return out

    def _assemble(self, key: str, uid, d: dict) -> UserInputs:
        cfg, plan = self.cfg, self.plan
        stats = {r["subreddit"]: r for r in d["edges"]}
        if plan.ranking == "attention" and d["att"]:
            ranking = "attention"
            scores = {r["subreddit"]: float(r["attention"] or 0.0) for r in d["att"]}
        else:
            ranking = "tfidf" if plan.ranking == "tfidf" else "tfidf_fallback"
            scores = {
                s: math.log1p((r["n_comments"] or 0) + (r["n_submissions"] or 0)) * plan.idf.get(s, plan.default_idf)
                for s, r in stats.items()
            }
        ranked = sorted(((s, v) for s, v in scores.items() if v > 0), key=lambda x: (-x[1], x[0]))[: cfg.max_subreddits]
        total = sum(v for _, v in ranked) or 1.0
        snips: dict[str, list[Snippet]] = {}
        for r in sorted(d["snips"], key=lambda r: (r["subreddit"], r["rank"] if r["rank"] is not None else 1 << 30, -(r["score"] or 0), r["snippet_id"])):
            lst = snips.setdefault(r["subreddit"], [])
            if len(lst) < cfg.snippets_per_subreddit and r["text"]:
                lst.append(Snippet(r["snippet_id"], r["kind"] or "comment", r["text"], int(r["score"] or 0), int(r["rank"] or 0)))
        communities = []
        for s, v in ranked:
            st = stats.get(s, {})
            communities.append(Community(
                subreddit=s, share=v / total,
                stats={k: int(st.get(k) or 0) for k in ("n_comments", "n_submissions", "n_image_posts", "score_sum", "active_months")},
                snippets=snips.get(s, []),
            ))
        images = self._rank_images(d, {c.subreddit: c.share for c in communities}) if cfg.multimodal else []
        return UserInputs(user_key=key, user_id=uid, ranking=ranking, communities=communities, images=images)

    def _rank_images(self, d: dict, shares: dict) -> list[ImageRef]:
        """Images from the user's selected communities, by community share x CLIP centrality."""
        embs = {r["url"]: np.asarray(r["embedding"], dtype=np.float32) for r in d["embs"]
                if r["status"] == "ok" and r["embedding"]}
        files = {}
        if self.image_cache is not None:
            from zipp.images.fetch import ImageCache

            cache = ImageCache(self.image_cache)
            files = {r["url"]: str(cache.path(r["sha256"])) for r in d["embs"] if r["status"] == "ok" and cache.has(r.get("sha256"))}
        centre = None
        if embs:
            m = np.stack(list(embs.values()))
            m /= np.linalg.norm(m, axis=1, keepdims=True) + 1e-8
            centre = m.mean(axis=0)
            centre /= np.linalg.norm(centre) + 1e-8
        out = []
        for r in d["imgs"]:
            if r["subreddit"] not in shares or r["nsfw"]:
                continue
            cent = 0.0
            if centre is not None and r["url"] in embs:
                e = embs[r["url"]]
                cent = float(e @ centre / (np.linalg.norm(e) + 1e-8))
            elif centre is not None:
                continue  # embedding failed (http error, not an image): the model could not see it either
            out.append(ImageRef(r["post_id"], r["url"], r["subreddit"], shares[r["subreddit"]] * (1.0 + cent) / 2.0,
                                path=files.get(r["url"])))
        out.sort(key=lambda x: (-x.score, x.post_id))
        seen, uniq = set(), []
        for im in out:
            if im.url not in seen:
                seen.add(im.url)
                uniq.append(im)
        return uniq[: self.cfg.max_images]


# ----------------------------------------------------------------------------- packing


@dataclass
class Item:
    kind: str  # subreddit | snippet | image
    subreddit: str
    ref: str | None
    text: str  # rendered line(s), escaped
    tokens: int
    truncated: bool = False
    order: tuple = ()  # canonical position in the block
    body: str = ""  # snippets: the escaped text inside the tag (what the model sees)
    media_tokens: int = 0  # images: the model's tokens for the pixels (included in ``tokens``)


@dataclass
class Evidence:
    user_key: str
    user_id: int | None
    ranking: str
    block: str  # the rendered <evidence> block
    items: list[Item]
    images: list[str]  # image URLs in placeholder order
    image_files: list[str | None]  # their local files (what a local model is shown), None where not cached
    evidence_tokens: int  # block tokens (+ image tokens)
    prompt_tokens: int  # the whole first-turn prompt (+ image tokens)
    messages: list[dict]
    budget: int

    def accounting(self) -> list[dict]:
        return [
            {"kind": i.kind, "subreddit": i.subreddit, "ref": i.ref, "tokens": int(i.tokens), "truncated": bool(i.truncated)}
            for i in sorted(self.items, key=lambda i: i.order)
        ]

    @property
    def image_tokens(self) -> list[int]:
        """The model's tokens for each image (pixels only, without the placeholder line), in order."""
        return [int(i.media_tokens) for i in self.items if i.kind == "image"]


def _attr(v) -> str:
    return clean_inline(str(v))


class Packer:
    """Packs one user's inputs into a prompt frame under the token budget (deterministic)."""

    def __init__(self, counter: TokenCounter, cfg: PersonasConfig, images: ImageCoster | None = None):
        self.counter, self.cfg = counter, cfg
        self.images = images if images is not None else ImageCoster(None, cfg.image_tokens)

    def _header(self, i: int, c: Community) -> tuple[str, str]:
        s = c.stats
        sp = self.counter.special_tokens
        head = (
            f'<community name="r/{clean_inline(c.subreddit, sp)}" rank="{i + 1}" share="{c.share:.3f}" '
            f'comments="{s["n_comments"]}" posts="{s["n_submissions"]}" image_posts="{s["n_image_posts"]}" '
            f'score="{s["score_sum"]}" active_months="{s["active_months"]}">\n'
        )
        return head, "</community>\n"

    def _snippet(self, sn: Snippet, body: str, truncated: bool = False) -> str:
        sp = self.counter.special_tokens
        t = ' truncated="true"' if truncated else ""
        return f'<snippet id="{clean_inline(sn.snippet_id, sp, 40)}" kind="{clean_inline(sn.kind, sp, 20)}" score="{sn.score}"{t}>{body}</snippet>\n'

    def pack(self, inputs: UserInputs, frame: Callable[[str], list[dict]], budget: int | None = None) -> Evidence:
        cfg, counter = self.cfg, self.counter
        budget = budget or cfg.token_budget
        if not inputs.communities:
            raise EvidenceError("no evidence: the user has no ranked subreddits")
        overhead = counter.count_prompt(frame(evidence_block("")))
        available = budget - overhead - _SAFETY
        if available <= 0:
            raise EvidenceError(f"token_budget {budget} leaves no room for evidence (instructions take {overhead} tokens)")
        sp = counter.special_tokens
        added: list[Item] = []
        used = 0

        # images (multimodal): placeholder line + the tokens the model counts for the image
        if cfg.multimodal and inputs.images:
            cap = int(available * cfg.image_budget_share)
            img_used = k = 0
            for n, im in enumerate(inputs.images):
                media = self.images.cost(im.path)
                if media is None:  # the model's processor cannot size it: no local file
                    continue
                line = f'<image n="{k + 1}" community="r/{clean_inline(im.subreddit, sp)}" id="{clean_inline(im.post_id, sp, 40)}"/>\n'
                cost = counter.count(line) + media
                if img_used + cost > cap:
                    continue  # a smaller image further down may still fit
                added.append(Item("image", im.subreddit, im.post_id, line, cost, order=(2, n), media_tokens=media))
                img_used += cost
                k += 1
            used += img_used

        # headers (rank order)
        headers = [self._header(i, c) for i, c in enumerate(inputs.communities)]
        h_tokens = counter.count_many([h + e for h, e in headers])
        for i, c in enumerate(inputs.communities):
            if used + h_tokens[i] > available:
                break
            added.append(Item("subreddit", c.subreddit, None, headers[i][0], h_tokens[i], order=(1, i, -1)))
            used += h_tokens[i]
        n_comm = sum(1 for it in added if it.kind == "subreddit")
        if n_comm == 0:
            raise EvidenceError(f"token_budget {budget} cannot hold a single community header")

        # snippet candidates, counted in one tokenizer call
        cands = []  # (community idx, snippet idx, snippet, escaped body)
        for ci, c in enumerate(inputs.communities[:n_comm]):
            for si, sn in enumerate(c.snippets):
                cands.append((ci, si, sn, clean(sn.text, sp)))
        c_tokens = counter.count_many([self._snippet(sn, body) for _, _, sn, body in cands])
        taken = set()

        # pass 1: quota by share
        quota_used = [0] * n_comm
        for j, (ci, si, sn, body) in enumerate(cands):
            quota = int(available * inputs.communities[ci].share)
            t = c_tokens[j]
            if not body:
                continue
            if quota_used[ci] + t <= quota and used + t <= available:
                added.append(Item("snippet", inputs.communities[ci].subreddit, sn.snippet_id, self._snippet(sn, body), t, order=(1, ci, si), body=body))
                quota_used[ci] += t
                used += t
                taken.add(j)
        # pass 2: leftovers in rank order; the first snippet that does not fit is cut and marked
        for j, (ci, si, sn, body) in enumerate(cands):
            if j in taken or not body:
                continue
            t = c_tokens[j]
            if used + t <= available:
                added.append(Item("snippet", inputs.communities[ci].subreddit, sn.snippet_id, self._snippet(sn, body), t, order=(1, ci, si), body=body))
                used += t
                continue
            room = available - used
            if room >= cfg.min_snippet_tokens:
                frame_cost = counter.count(self._snippet(sn, "", truncated=True))
                cut = counter.truncate(body, room - frame_cost, TRUNCATION_MARK)
                if cut is not None:
                    line = self._snippet(sn, cut, truncated=True)
                    t2 = counter.count(line)
                    if used + t2 <= available and counter.count(cut) - counter.count(TRUNCATION_MARK) >= min(cfg.min_snippet_tokens, t):
                        added.append(Item("snippet", inputs.communities[ci].subreddit, sn.snippet_id, line, t2, truncated=True, order=(1, ci, si), body=cut))
                        used += t2
            break

        # final check on the real rendering; drop the last-added item while over budget
        while True:
            ev = self._render(inputs, added, frame, budget, headers)
            if ev.prompt_tokens <= budget:
                return ev
            last = added.pop()
            if last.kind == "subreddit":  # never keep snippets of a dropped community
                added = [it for it in added if not (it.kind == "snippet" and it.order[1] == last.order[1])]
            if not any(it.kind == "subreddit" for it in added):
                raise EvidenceError(f"token_budget {budget} cannot hold a single community header")

    def _render(self, inputs: UserInputs, items: list[Item], frame, budget: int, headers) -> Evidence:
        ordered = sorted(items, key=lambda i: i.order)
        parts, open_ci = [], None
        for it in ordered:
            if it.kind in ("subreddit", "snippet") and it.order[1] != open_ci:
                if open_ci is not None:
                    parts.append(headers[open_ci][1])
                open_ci = it.order[1]
            if it.kind == "image" and open_ci is not None:
                parts.append(headers[open_ci][1])
                open_ci = None
            parts.append(it.text)
        if open_ci is not None:
            parts.append(headers[open_ci][1])
        block = evidence_block("".join(parts))
        messages = frame(block)
        image_items = [i for i in ordered if i.kind == "image"]
        image_cost = sum(i.media_tokens for i in image_items)
        return Evidence(
            user_key=inputs.user_key, user_id=inputs.user_id, ranking=inputs.ranking, block=block, items=ordered,
            images=[inputs.images[i.order[1]].url for i in image_items],
            image_files=[inputs.images[i.order[1]].path for i in image_items],
            evidence_tokens=self.counter.count(block) + image_cost,
            prompt_tokens=self.counter.count_prompt(messages) + image_cost,
            messages=messages, budget=budget,
        )
