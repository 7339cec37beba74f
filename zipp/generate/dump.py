"""The generator: streams each month's RC_/RS_ files, the image mirror, prompts and ground truth."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from zipp.config import GenerateConfig, parse_month_range
from zipp.generate import vocab as V
from zipp.generate.badlines import (
    KINDS,
    OVERSIZE_MAX_PER_FILE,
    corrupt,
    is_image_post,
    pick_kind,
)
from zipp.generate.era import Era, created_value, era_for, month_bounds, month_index
from zipp.generate.images import LOCATION_KEY, ImageMaker, ImageSink, url_to_path
from zipp.generate.population import (
    KIND_GENERAL,
    KIND_LOCATION,
    Subreddits,
    TextPools,
    Users,
    b36,
    build_subreddits,
    build_text_pools,
    build_users,
    rng_for,
    stable_int,
)
from zipp.generate.prompts import write_prompts
from zipp.generate.zst import ZstLineWriter

COMMENT_STRIDE = 2**26  # comment ids per month (base36 ids increase with time, like Reddit's)
SUBMISSION_STRIDE = 2**23
BOT_RATE = 0.004  # non-AutoModerator bot comments per user comment
AD_RATE = 0.005  # promoted posts per user submission
AUTOMOD_RATE = 0.08  # AutoModerator replies per submission
IMAGE_HOSTS_DIRS = ("i.redd.it", "i.imgur.com", "preview.redd.it", "external-preview.redd.it", "i.redditmedia.com")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SLUG = re.compile(r"[^a-z0-9]+")
_DUMPS = orjson.dumps


def _dumps_sorted(o: object) -> bytes:
    return orjson.dumps(o, option=orjson.OPT_SORT_KEYS)


LINK_DOMAINS = (
    ("youtube.com", "rich:video"), ("youtu.be", "rich:video"), ("imgur.com", "link"), ("twitter.com", "link"),
    ("en.wikipedia.org", "link"), ("nytimes.com", "link"), ("theguardian.com", "link"), ("github.com", "link"),
    ("medium.com", "link"), ("bbc.co.uk", "link"), ("flickr.com", "link"), ("theverge.com", "link"),
)

ARCTIC_C_CONST = {
    "all_awardings": [], "approved_at_utc": None, "approved_by": None, "archived": False, "associated_award": None,
    "author_flair_background_color": None, "author_flair_richtext": [], "author_flair_template_id": None,
    "author_flair_text_color": None, "author_flair_type": "text", "author_is_blocked": False, "author_patreon_flair": False,
    "author_premium": False, "awarders": [], "banned_at_utc": None, "banned_by": None, "can_gild": False, "can_mod_post": False,
    "collapsed": False, "collapsed_because_crowd_control": None, "collapsed_reason": None, "collapsed_reason_code": None,
    "comment_type": None, "downs": 0, "gildings": {}, "is_submitter": False, "likes": None, "locked": False, "mod_note": None,
    "mod_reason_by": None, "mod_reason_title": None, "mod_reports": [], "no_follow": True, "num_reports": 0,
    "removal_reason": None, "replies": "", "report_reasons": [], "saved": False, "score_hidden": False, "send_replies": True,
    "subreddit_type": "public", "top_awarded_type": None, "total_awards_received": 0, "treatment_tags": [],
    "unrepliable_reason": None, "user_reports": [],
}
ARCTIC_S_CONST = {
    "all_awardings": [], "allow_live_comments": False, "approved_at_utc": None, "approved_by": None,
    "author_flair_background_color": None, "author_flair_richtext": [], "author_flair_template_id": None,
    "author_flair_text_color": None, "author_flair_type": "text", "author_is_blocked": False, "author_patreon_flair": False,
    "author_premium": False, "awarders": [], "banned_at_utc": None, "banned_by": None, "can_gild": False, "can_mod_post": False,
    "category": None, "clicked": False, "content_categories": None, "discussion_type": None, "downs": 0, "gildings": {},
    "is_created_from_ads_ui": False, "is_meta": False, "is_original_content": False, "is_robot_indexable": True,
    "likes": None, "link_flair_background_color": "", "link_flair_richtext": [], "link_flair_template_id": None,
    "link_flair_text_color": "dark", "link_flair_type": "text", "media_only": False, "mod_note": None, "mod_reason_by": None,
    "mod_reason_title": None, "mod_reports": [], "no_follow": False, "num_reports": 0, "pwls": 6, "quarantine": False,
    "removal_reason": None, "removed_by": None, "removed_by_category": None, "report_reasons": [], "saved": False,
    "send_replies": True, "subreddit_type": "public", "top_awarded_type": None, "total_awards_received": 0,
    "treatment_tags": [], "user_reports": [], "view_count": None, "visited": False, "wls": 6,
}

IMAGES_SCHEMA = pa.schema([
    ("url", pa.string()), ("path", pa.string()), ("post_id", pa.string()), ("author", pa.string()), ("subreddit", pa.string()),
    ("community", pa.string()), ("aesthetic", pa.string()), ("dead", pa.bool_()), ("gallery", pa.bool_()),
    ("post_line_bad", pa.bool_()), ("month", pa.string()),
])
DUPS_SCHEMA = pa.schema([
    ("id", pa.string()), ("kind", pa.string()), ("first_file", pa.string()), ("dup_file", pa.string()),
    ("score_first", pa.int64()), ("score_dup", pa.int64()), ("retrieved_first", pa.int64()), ("retrieved_dup", pa.int64()),
])


def _rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.table({name: [r[name] for r in rows] for name in schema.names}, schema=schema)


def slugify(title: str) -> str:
    s = _SLUG.sub("_", title.lower()).strip("_")
    if len(s) > 50:
        s = s[:50].rsplit("_", 1)[0]
    return s or "untitled"


def estimate_lines(cfg: GenerateConfig) -> int:
    """Roughly how many lines generate_dump will write (for progress bars)."""
    months = len(parse_month_range(cfg.months))
    return int(cfg.users * months * (cfg.comments_per_user * (1 + BOT_RATE) + cfg.submissions_per_user * (1 + AD_RATE + AUTOMOD_RATE)))


@dataclass
class FileStats:
    name: str
    total_lines: int = 0
    good_lines: int = 0
    bad_lines: int = 0
    bad: dict = field(default_factory=lambda: {k: 0 for k in KINDS})
    duplicate_ids: int = 0
    ads: int = 0
    deleted: int = 0  # author "[deleted]"
    removed: int = 0  # body/selftext "[removed]"
    bots: int = 0
    image_posts: int = 0
    galleries: int = 0
    crossposts: int = 0
    uncompressed_bytes: int = 0

    def count_good(self, rec: dict, is_sub: bool) -> None:
        self.good_lines += 1
        author = rec.get("author")
        if author == "[deleted]":
            self.deleted += 1
        elif author in _BOTSET:
            self.bots += 1
        if is_sub:
            if rec.get("selftext") == "[removed]":
                self.removed += 1
            if "subreddit" not in rec and rec.get("promoted") is True:
                self.ads += 1
            if is_image_post(rec):
                self.image_posts += 1
            if rec.get("is_gallery") is True:
                self.galleries += 1
            if "crosspost_parent" in rec:
                self.crossposts += 1
        elif rec.get("body") == "[removed]":
            self.removed += 1

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("name")
        return d


_BOTSET = frozenset(V.BOTS)
_ALL_CITIES = tuple(c for _, (_, _, cs) in V.LOCATIONS.items() for c, _, _ in cs)


class World:
    """Everything shared by the months: the population, text pools, counters, truth writers."""

    def __init__(self, cfg: GenerateConfig, out_dir: Path, images_dir: Path | None):
        self.cfg = cfg
        self.out_dir = out_dir
        self.images_dir = images_dir
        self.subs: Subreddits = build_subreddits(cfg.n_communities)
        self.users: Users = build_users(cfg.users, self.subs, cfg.n_communities, cfg.seed, cfg.comments_per_user, cfg.submissions_per_user,
                                        cfg.deleted_user_rate)
        self.pools: TextPools = build_text_pools(cfg.n_communities, self.subs, cfg.seed)
        self.image_maker = ImageMaker(cfg.image_size)
        nt = self.users.n_total
        self.n_comments = [0] * nt
        self.n_submissions = [0] * nt
        self.n_image_posts = [0] * nt
        self.n_hidden = [0] * nt  # lines by the user shown as [deleted]
        self.cues = {k: [0] * nt for k in ("age", "profession", "location", "gender", "distractor")}
        self.images_rows: list[dict] = []
        self.n_image_urls = 0
        self.n_dead_urls = 0
        self.n_images_written = 0
        self.n_image_posts_total = 0
        truth = out_dir / "truth"
        truth.mkdir(parents=True, exist_ok=True)
        self.images_writer = pq.ParquetWriter(truth / "images.parquet", IMAGES_SCHEMA)
        self.dups_writer = pq.ParquetWriter(truth / "duplicates.parquet", DUPS_SCHEMA)
        self.dups_rows: list[dict] = []
        self.image_sink = ImageSink()

    def add_image_row(self, row: dict) -> None:
        self.images_rows.append(row)
        if len(self.images_rows) >= 20000:
            self.flush_images()

    def flush_images(self) -> None:
        if self.images_rows:
            self.images_writer.write_table(_rows_table(self.images_rows, IMAGES_SCHEMA))
            self.images_rows = []

    def flush_dups(self) -> None:
        if self.dups_rows:
            self.dups_writer.write_table(_rows_table(self.dups_rows, DUPS_SCHEMA))
            self.dups_rows = []

    def close(self) -> None:
        self.image_sink.close()
        self.flush_images()
        self.flush_dups()
        self.images_writer.close()
        self.dups_writer.close()


class MonthGen:
    def __init__(self, world: World, month: str, carry_in: dict[str, Path | None], write_carry: bool, tmp_dir: Path):
        self.w = world
        cfg = world.cfg
        self.cfg = cfg
        self.month = month
        self.era: Era = era_for(month, cfg.format)
        self.mi = month_index(month)
        self.t0, self.t1 = month_bounds(month)
        key = self.mi & 0xFFFFFFFF
        self.rng_m = rng_for(cfg.seed, 1, key, 0)
        self.rng_c = rng_for(cfg.seed, 1, key, 1)
        self.rng_s = rng_for(cfg.seed, 1, key, 2)
        self.rng_i = rng_for(cfg.seed, 1, key, 3)  # image ids, hashes, dead flags
        self.rng_px = rng_for(cfg.seed, 1, key, 4)  # pixels only: RS files do not depend on whether images are written
        self.dumps = _dumps_sorted if self.era.arctic else _DUMPS
        self.rc_name, self.rs_name = f"RC_{month}.zst", f"RS_{month}.zst"
        self.rc_stats, self.rs_stats = FileStats(self.rc_name), FileStats(self.rs_name)
        self.cnext = 36**5 + key * COMMENT_STRIDE
        self.climit = self.cnext + COMMENT_STRIDE
        self.snext = 36**4 + key * SUBMISSION_STRIDE
        self.slimit = self.snext + SUBMISSION_STRIDE
        self.old_link_lo = 36**4 + max(0, key - 3) * SUBMISSION_STRIDE
        self.s_ring: dict[int, deque] = {}
        self.c_ring: dict[int, deque] = {}
        self.x_ring: deque = deque(maxlen=200)  # crosspost candidates
        self.carry_in = carry_in
        self.write_carry = write_carry
        self.carry_out = {"RC": tmp_dir / f"carry_RC_{month}.ndjson", "RS": tmp_dir / f"carry_RS_{month}.ndjson"} if write_carry else {"RC": None, "RS": None}
        self.carry_fh = {k: (open(p, "wb") if p else None) for k, p in self.carry_out.items()}  # noqa: SIM115 - closed by run()
        self.oversize = {"RC": 0, "RS": 0}
        self.emitted = 0
        self.recrawl_base = self.t1 + 86400 * (200 + stable_int("recrawl", month) % 500)
        self.slug_cache: dict[str, str] = {}
        self._r64: list[int] = []
        subs = world.subs
        self.sub_names, self.sub_ids = subs.names, subs.ids
        self.sub_comm = subs.community.tolist()
        self.deleted_alias = world.users.deleted_alias.tolist()
        self.n_users = world.users.n

    # ------------------------------------------------------------------------------------ helpers
    def _slug(self, title: str) -> str:
        s = self.slug_cache.get(title)
        if s is None:
            s = self.slug_cache[title] = slugify(title)
        return s

    def _retrieved(self, t: int, u: float) -> int:
        if self.era.recrawl:
            return self.recrawl_base + (t - self.t0) // 500 + int(u * 90)
        if self.era.arctic:
            return t + 10 + int(u * 30)
        return t + int(20 * math.exp(9.0 * u))  # seconds .. days

    def _next_cid(self, gap: float) -> str:
        self.cnext += 1 + (gap < 0.25)
        if self.cnext >= self.climit:
            raise ValueError(f"{self.month}: more comments than the id space of one month ({COMMENT_STRIDE}); use fewer users")
        return b36(self.cnext)

    def _next_sid(self, gap: float) -> str:
        self.snext += 1 + (gap < 0.25)
        if self.snext >= self.slimit:
            raise ValueError(f"{self.month}: more submissions than the id space of one month ({SUBMISSION_STRIDE}); use fewer users")
        return b36(self.snext)

    def _choose_subs(self, rng: np.random.Generator, uidx: np.ndarray) -> np.ndarray:
        users, subs = self.w.users, self.w.subs
        e = len(uidx)
        if e == 0:
            return np.zeros(0, dtype=np.int64)
        r1, r2, r3 = rng.random(e), rng.random(e), rng.random(e)
        slot = (users.home_cdf[uidx] < r2[:, None]).sum(1)
        home = users.home_subs[uidx, slot]
        noise = np.searchsorted(subs.noise_cdf, r3)
        return np.where(r1 < users.p_focus[uidx], home, noise).astype(np.int64)

    def _cue(self, u: int, x: float, v: float, loc_sub: bool) -> tuple[str, str] | None:
        users = self.w.users
        pa_, pp, pl, pg, pd = 0.03, 0.025, (0.12 if loc_sub else 0.03), 0.02, 0.015
        if x >= pa_ + pp + pl + pg + pd:
            return None
        if x < pa_:
            age = int(users.age[u])
            g = ("M", "F", "NB")[users.gender[u]]
            tpl = V.AGE_CUES[int(v * len(V.AGE_CUES))]
            return tpl.format(age=age, g=g, decade=age // 10 * 10), "age"
        x -= pa_
        if x < pp:
            prof = V.PROFESSIONS[users.profession[u]][0]
            if prof in ("retired", "student", "stay at home parent"):
                tpl = ("As a {prof}, ", "Being {prof_a}, ", "I'm {prof_a} and ")[int(v * 3)]
                art = "a " if prof != "retired" else ""
                return tpl.format(prof=prof if prof != "retired" else "retiree", prof_a=art + prof), "profession"
            tpl = V.PROF_CUES[int(v * len(V.PROF_CUES))]
            article = "an" if prof[0] in "aeiou" else "a"
            return tpl.format(prof=prof, Prof=prof[0].upper() + prof[1:]).replace(" a " + prof, f" {article} {prof}"), "profession"
        x -= pp
        if x < pl:
            tpl = V.LOC_CUES[int(v * len(V.LOC_CUES))]
            return tpl.format(city=users.city[u], country=users.country[u]), "location"
        x -= pl
        if x < pg:
            opts = V.GENDER_CUES[V.GENDERS[users.gender[u]]]
            return opts[int(v * len(opts))], "gender"
        tpl = V.DISTRACTOR_CUES[int(v * len(V.DISTRACTOR_CUES))]
        k = int(v * 997)
        prof = V.PROFESSIONS[k % len(V.PROFESSIONS)][0]
        return tpl.format(rel=V.RELATIVES[k % len(V.RELATIVES)], prof=prof, age=18 + k % 60, city=_ALL_CITIES[k % len(_ALL_CITIES)]), "distractor"

    def _bot_body(self, name: str, s: int, t: int, r: list[float], parent_link: str) -> str:
        subs = self.w.subs
        k = int(r[2] * 9973)
        c = int(subs.community[s])
        comm = V.COMMUNITIES[c] if c >= 0 else V.COMMUNITIES[k % len(V.COMMUNITIES[: self.cfg.n_communities])]
        tpl = V.BOT_TEXT[name][k % len(V.BOT_TEXT[name])]
        date = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t + 7 * 86400))
        title = comm.things[k % len(comm.things)].title()
        code = "".join(_B62[(k * (i + 7)) % 62] for i in range(7))
        return tpl.format(date=date, link=parent_link, title=title, code=code, sub=comm.subs[k % len(comm.subs)], n=1 + k % 40,
                          km=round((1 + k % 40) * 1.609, 1), kg=round((1 + k % 40) * 0.4536, 1), handle=f"{comm.name}_news")

    def _meta(self, t: int, u: float, hidden: bool) -> dict:
        if u < 0.02:
            return {"note": "no_2nd_retrieval"}
        second = t + 129600 + int(u * 3600)
        if hidden or u > 0.985:
            return {"removal_type": "deleted", "retrieved_2nd_on": second, "was_deleted_later": True}
        return {"retrieved_2nd_on": second}

    def _emit(self, kind: str, writer: ZstLineWriter, stats: FileStats, rec: dict, r_bad: float, r_kind: float, r_var: float,
              r_dup: float, t: int, fullname: str | None = None, permalink: str | None = None) -> bool:
        """Serialise and write one generated record, maybe as a bad line; returns True if good."""
        line = self.dumps(rec)
        if r_bad < self.cfg.bad_rate:
            bkind = pick_kind(r_kind)
            if bkind == "oversize":
                if self.oversize[kind] >= OVERSIZE_MAX_PER_FILE:
                    bkind = "truncated"
                else:
                    self.oversize[kind] += 1
            line = corrupt(bkind, rec, line, r_var, self.dumps)
            stats.bad[bkind] += 1
            stats.bad_lines += 1
            writer.write(line)
            self.emitted += 1
            return False
        writer.write(line)
        self.emitted += 1
        stats.count_good(rec, kind == "RS")
        if self.write_carry and r_dup < self.cfg.duplicate_rate:
            f = r_dup / self.cfg.duplicate_rate
            delta = 1 + int(f * 40)
            d = dict(rec)
            d["score"] = rec["score"] + (-delta if f < 0.2 else delta)
            d["retrieved_on"] = rec["retrieved_on"] + 86400 * (20 + int(f * 20))
            if "ups" in d:
                d["ups"] = d["score"]
            if self.era.arctic:
                d["updated_on"] = d["retrieved_on"] + 15
                d["_meta"] = {"retrieved_2nd_on": d["retrieved_on"] + 129600}
            self.carry_fh[kind].write(orjson.dumps({"t": t, "f": stats.name, "r": d, "s0": rec["score"], "r0": rec["retrieved_on"],
                                                    "fn": fullname, "pl": permalink}) + b"\n")
        return True

    def _emit_carried(self, kind: str, writer: ZstLineWriter, stats: FileStats, raw: bytes) -> None:
        o = orjson.loads(raw)
        rec = o["r"]
        t = o["t"]
        era = self.era
        # a re-crawl is made with the API of its own time: re-render the era-dependent fields
        rec["created_utc"] = created_value(t, era.created, (t % 2) * 0.9)
        if era.fullname and o["fn"] and rec["author"] != "[deleted]":
            rec["author_fullname"] = o["fn"]
        if era.comment_permalink and kind == "RC":
            rec["permalink"] = o["pl"]
        if not era.ups:
            rec.pop("ups", None)
        writer.write(self.dumps(rec))
        self.emitted += 1
        stats.count_good(rec, kind == "RS")
        stats.duplicate_ids += 1
        self.w.dups_rows.append({"id": rec["id"], "kind": kind, "first_file": o["f"], "dup_file": stats.name, "score_first": o["s0"],
                                 "score_dup": rec["score"], "retrieved_first": o["r0"], "retrieved_dup": rec["retrieved_on"]})

    # ------------------------------------------------------------------------------------ comment
    def comment(self, writer: ZstLineWriter, u: int, t: int, s: int, r: list[float], score: int, link: tuple | None = None,
                body: str | None = None) -> None:
        w = self.w
        users, era = w.users, self.era
        n = self.n_users
        sub = self.sub_names[s]
        if link is None:
            ring_c = self.c_ring.get(s)
            if ring_c and r[1] < 0.45:
                pc = ring_c[int(r[0] * len(ring_c))]
                link36, slug, lauthor = pc[1], pc[2], pc[3]
                parent = "t1_" + pc[0]
            else:
                ring_s = self.s_ring.get(s)
                if ring_s and r[0] < 0.93:
                    ps = ring_s[len(ring_s) - 1 - int(r[0] * r[0] * len(ring_s))]  # biased to recent posts
                    link36, slug, lauthor = ps
                else:
                    link36 = b36(self.old_link_lo + int(r[0] * 3 * SUBMISSION_STRIDE))  # a post from an earlier month
                    c = self.sub_comm[s]
                    pool_t = w.pools.titles[c] if c >= 0 else (w.pools.location_titles[s] if c == KIND_LOCATION else w.pools.general_titles)
                    slug, lauthor = self._slug(pool_t[int(r[4] * len(pool_t))]), -1
                parent = "t3_" + link36
        else:
            link36, slug, lauthor = link
            parent = "t3_" + link36
        cid = self._next_cid(r[15])
        hidden = False
        cue_kind = None
        is_bot = u >= n
        if is_bot:
            author = users.names[u]
            if body is None:
                body = self._bot_body(author, s, t, r, f"/r/{sub}/comments/{link36}/{slug}/")
        else:
            author = users.names[u]
            if body is None:
                c = self.sub_comm[s]
                if c >= 0:
                    pool = w.pools.comments[c]
                elif c == KIND_LOCATION:
                    pool = w.pools.location_comments[s]
                else:
                    pool = w.pools.general_comments
                body = pool[int(r[2] * len(pool))]
                if r[3] < 0.18:
                    body = body + ("\n\n" if r[3] < 0.06 else " ") + pool[int(r[4] * len(pool))]
                cue = self._cue(u, r[5], r[6], c == KIND_LOCATION) if r[5] < 0.21 else None
                if cue is not None:
                    prefix, cue_kind = cue
                    if body[:2] not in ("I ", "I'") and body[:1].isupper():
                        body = body[0].lower() + body[1:]
                    body = prefix + body
            if self.deleted_alias[u]:
                author, hidden = "[deleted]", True
            elif r[7] < 0.012:
                author, body, hidden = "[deleted]", "[deleted]", True
            elif r[7] < 0.022:
                author, body, hidden = "[deleted]", "[removed]", True
        automod = u == n and link is not None
        retrieved = self._retrieved(t, r[14])
        edited: bool | int | float = False
        if r[8] < 0.04 and not is_bot:
            e = t + 60 + int(r[8] * 2e6)
            edited = float(e) if era.edited_float else e
        r9 = r[9]
        rec = {
            "author": author, "author_flair_css_class": None, "author_flair_text": None if r9 > 0.05 else ("OC", "Beginner", "Verified", "")[int(r9 * 80)],
            "body": body, "controversiality": 1 if (r9 > 0.95 and score < 3) else 0, "created_utc": created_value(t, era.created, r[15]),
            "distinguished": "moderator" if automod else None, "edited": edited, "gilded": 1 if r9 > 0.9985 else 0, "id": cid,
            "link_id": "t3_" + link36, "parent_id": parent, "retrieved_on": retrieved, "score": score, "stickied": automod,
            "subreddit": sub, "subreddit_id": self.sub_ids[s],
        }
        if era.ups:
            rec["ups"] = score
        if era.fullname and not hidden:
            rec["author_fullname"] = users.fullnames[u]
        if era.comment_permalink:
            rec["permalink"] = f"/r/{sub}/comments/{link36}/{slug}/{cid}/"
        if era.fullname and not era.arctic:
            rec["is_submitter"] = (lauthor == u) and not hidden
            rec["no_follow"] = score < 2
            rec["send_replies"] = True
        if era.arctic:
            rec = {**ARCTIC_C_CONST, **rec}
            rec["is_submitter"] = (lauthor == u) and not hidden
            rec["no_follow"] = score < 2
            rec["name"] = "t1_" + cid
            rec["created"] = float(t)
            rec["subreddit_name_prefixed"] = "r/" + sub
            rec["ups"] = score
            rec["updated_on"] = retrieved + 15
            rec["_meta"] = self._meta(t, r[14], hidden)
        ring = self.c_ring.get(s)
        if ring is None:
            ring = self.c_ring[s] = deque(maxlen=60)
        ring.append((cid, link36, slug, u))
        if self._emit("RC", writer, self.rc_stats, rec, r[10], r[11], r[12], r[13], t, users.fullnames[u],
                      f"/r/{sub}/comments/{link36}/{slug}/{cid}/"):
            if u < n:
                if hidden:
                    w.n_hidden[u] += 1
                else:
                    w.n_comments[u] += 1
                    if cue_kind is not None:
                        w.cues[cue_kind][u] += 1
            else:
                w.n_comments[u] += 1

    # -------------------------------------------------------------------------------- submission
    def _rand64(self) -> int:
        """One random 63-bit int from the image-id stream (drawn in blocks: scalar draws are slow)."""
        if not self._r64:
            self._r64 = self.rng_i.integers(0, 2**63 - 1, 2048, dtype=np.int64).tolist()
            self._r64.reverse()
        return self._r64.pop()

    def _rand_bytes(self, n: int) -> bytes:
        return b"".join(self._rand64().to_bytes(8, "big") for _ in range((n + 7) // 8))[:n]

    def _img_id(self) -> str:
        return b36(int.from_bytes(self._rand_bytes(9), "big") % (36**13 - 36**12) + 36**12)

    def _hash43(self) -> str:
        return base64.urlsafe_b64encode(self._rand_bytes(33)).decode()[:43]

    def _write_image(self, url: str, key: int, aes: int, dead: bool, links: tuple[str, ...], row: dict) -> None:
        w = self.w
        w.n_image_urls += 1
        w.n_dead_urls += dead
        images_dir = w.images_dir
        rel = url.split("://", 1)[1].split("?", 1)[0]
        row = dict(row, url=url, path=rel, dead=dead)
        w.add_image_row(row)
        if images_dir is None or dead:
            return
        w.image_sink.put(url_to_path(images_dir, url), w.image_maker.render(key, aes, self.rng_px),
                         tuple(url_to_path(images_dir, x) for x in links))
        w.n_images_written += 1

    def submission(self, writer: ZstLineWriter, cwriter: ZstLineWriter, u: int, t: int, s: int, r: list[float], score: int,
                   num_comments: int, ra: list[float]) -> None:
        w = self.w
        users, subs, era, pools = w.users, w.subs, self.era, w.pools
        n = users.n
        sid = self._next_sid(r[15])
        is_bad = r[10] < self.cfg.bad_rate
        retrieved = self._retrieved(t, r[14])
        cv = created_value(t, era.created, r[15])
        if u < 0:  # promoted post: no subreddit
            brand = V.AD_BRANDS[int(r[4] * len(V.AD_BRANDS))]
            title = V.AD_TITLES[int(r[5] * len(V.AD_TITLES))]
            domain = brand.lower().replace("_", "") + ".com"
            url = f"https://{domain}/landing/{slugify(title)[:24]}"
            rec = {
                "adserver_click_url": None, "adserver_imp_pixel": None, "archived": False, "author": brand, "author_flair_css_class": None,
                "author_flair_text": None, "author_id": "t2_" + b36(stable_int("brand", brand, bits=32) + 36**5), "brand_safe": False,
                "contest_mode": False, "created_utc": cv, "disable_comments": True, "distinguished": None, "domain": domain,
                "domain_override": None, "edited": False, "embed_type": None, "embed_url": None, "gilded": 0, "hidden": False,
                "hide_score": True, "href_url": url, "id": sid, "imp_pixel": None, "is_crosspostable": False, "is_reddit_media_domain": False,
                "is_self": False, "is_video": False, "link_flair_css_class": None, "link_flair_text": None, "locked": False, "media": None,
                "media_embed": {}, "mobile_ad_url": "", "num_comments": 0, "num_crossposts": 0, "original_link": None, "over_18": False,
                "parent_whitelist_status": None, "permalink": f"/comments/{sid}/{slugify(title)}/", "pinned": False, "promoted": True,
                "promoted_by": None, "promoted_display_name": None, "promoted_url": None, "retrieved_on": retrieved, "score": int(r[6] * 4),
                "secure_media": None, "secure_media_embed": {}, "selftext": "", "spoiler": False, "stickied": False, "subreddit_id": None,
                "suggested_sort": None, "third_party_trackers": [], "third_party_tracking": None, "third_party_tracking_2": None,
                "thumbnail": "default", "thumbnail_height": 140, "thumbnail_width": 140, "title": title, "url": url, "whitelist_status": None,
            }
            if era.arctic:
                rec = {**ARCTIC_S_CONST, **rec}
                rec.update(name="t3_" + sid, created=float(t), ups=rec["score"], upvote_ratio=0.5, updated_on=retrieved + 15, _meta=self._meta(t, r[14], False))
            self._emit("RS", writer, self.rs_stats, rec, r[10], r[11], r[12], 1.0, t)
            return

        sub = subs.names[s]
        c = int(subs.community[s])
        author = users.names[u]
        hidden = False
        selftext = ""
        if users.deleted_alias[u]:
            author, hidden = "[deleted]", True
        if c >= 0:
            tpool = pools.titles[c]
        elif c == KIND_LOCATION:
            tpool = pools.location_titles[s]
        else:
            tpool = pools.general_titles
        title = tpool[int(r[4] * len(tpool))]
        slug = self._slug(title)
        permalink = f"/r/{sub}/comments/{sid}/{slug}/"
        visual = bool(subs.is_visual[s])
        p_img = 0.35 if visual else (0.12 if c == KIND_LOCATION else 0.05)
        if c == KIND_GENERAL and visual:
            p_img = 0.45
        # pattern key for images: the subreddit's community; general subs -> the poster's primary interest
        key = c if c >= 0 else (LOCATION_KEY if c == KIND_LOCATION else int(users.interests[u, 0]))
        aes_opts = [a for a in users.aesthetics[u].tolist() if a >= 0]
        aes = aes_opts[int(r[17] * len(aes_opts))]
        post_hint: str | None = None
        preview = None
        media = None
        extra: dict = {}
        is_self = is_video = False
        thumb, th, tw = "default", None, None
        img_row = {"post_id": sid, "author": users.names[u], "subreddit": sub,
                   "community": V.COMMUNITIES[key].name if key != LOCATION_KEY else "location", "aesthetic": V.AESTHETICS[aes],
                   "gallery": False, "post_line_bad": is_bad, "month": self.month}
        x = r[0]
        crosspost = era.crosspost and r[2] < 0.02 and len(self.x_ring) > 0
        if crosspost:
            parent = self.x_ring[int(r[3] * len(self.x_ring))]
            url, domain = parent["url"], parent["domain"]
            is_self = False
            title = parent["title"] if r[5] < 0.6 else title
            extra = {"crosspost_parent": "t3_" + parent["id"], "crosspost_parent_list": [parent]}
            if parent.get("post_hint"):
                post_hint = parent["post_hint"]
            thumb = parent.get("thumbnail", "default")
        elif x < p_img:
            gallery = era.gallery and r[1] < 0.25
            if gallery:
                items, meta = [], {}
                for k in range(2 + int(r[21] * 4)):
                    mid = self._img_id()
                    sig = self._rand_bytes(20).hex()
                    dead = self._rand64() / 2**63 < self.cfg.dead_image_rate
                    su = f"https://preview.redd.it/{mid}.png?width={self.cfg.image_size}&amp;format=png&amp;auto=webp&amp;s={sig}"
                    pu = f"https://preview.redd.it/{mid}.png?width=108&amp;crop=smart&amp;auto=webp&amp;s={sig[::-1]}"
                    items.append({"media_id": mid, "id": int(stable_int(sid, mid, bits=28))})
                    meta[mid] = {"status": "valid", "e": "Image", "m": "image/png", "p": [{"y": 108, "x": 108, "u": pu}],
                                 "s": {"y": self.cfg.image_size, "x": self.cfg.image_size, "u": su}, "id": mid}
                    self._write_image(su.replace("&amp;", "&"), key, aes, dead, (), dict(img_row, gallery=True))
                url, domain = f"https://www.reddit.com/gallery/{sid}", "reddit.com"
                extra = {"is_gallery": True, "gallery_data": {"items": items}, "media_metadata": meta}
                if era.gallery_hint and r[7] < 0.7:
                    post_hint = "gallery"
                thumb, th, tw = f"https://b.thumbs.redditmedia.com/{self._hash43()}.jpg", 140, 140
            else:
                dead = self._rand64() / 2**63 < self.cfg.dead_image_rate
                if era.ireddit and r[20] < 0.7:
                    iid = self._img_id()
                    url, domain = f"https://i.redd.it/{iid}.png", "i.redd.it"
                    pv_base = f"https://preview.redd.it/{iid}.png" if era.preview_new else f"https://i.redditmedia.com/{self._hash43()}.png"
                else:
                    code = "".join(_B62[int(b) % 62] for b in self._rand_bytes(7))
                    url, domain = f"https://i.imgur.com/{code}.png", "i.imgur.com"
                    pv_base = f"https://external-preview.redd.it/{self._hash43()}.png" if era.preview_new else f"https://i.redditmedia.com/{self._hash43()}.png"
                sig = self._rand_bytes(16).hex()
                links: tuple[str, ...] = ()
                if r[7] < 0.85:
                    post_hint = "image"
                    if era.preview_new:
                        src = f"{pv_base}?auto=webp&amp;s={sig}"
                        res = f"{pv_base}?width=108&amp;crop=smart&amp;auto=webp&amp;s={sig[::-1]}"
                    else:
                        src = f"{pv_base}?s={sig}"
                        res = f"{pv_base}?fit=crop&amp;crop=faces%2Centropy&amp;arh=2&amp;w=108&amp;s={sig[::-1]}"
                    preview = {"images": [{"source": {"url": src, "width": self.cfg.image_size, "height": self.cfg.image_size},
                                           "resolutions": [{"url": res, "width": 108, "height": 108}], "variants": {}, "id": self._hash43()}],
                               "enabled": True}
                    if pv_base.split("://", 1)[1] != url.split("://", 1)[1]:
                        links = (pv_base,)
                self._write_image(url, key, aes, dead, links, img_row)
                thumb, th, tw = f"https://b.thumbs.redditmedia.com/{self._hash43()}.jpg", 140, 140
        elif era.video and x < p_img + 0.03:
            vid = self._img_id()
            url, domain, is_video = f"https://v.redd.it/{vid}", "v.redd.it", True
            dur = 5 + int(r[19] * 120)
            media = {"reddit_video": {"bitrate_kbps": 2400, "fallback_url": f"https://v.redd.it/{vid}/DASH_720.mp4?source=fallback",
                                      "height": 720, "width": 1280, "scrubber_media_url": f"https://v.redd.it/{vid}/DASH_96.mp4",
                                      "dash_url": f"https://v.redd.it/{vid}/DASHPlaylist.mpd", "duration": dur,
                                      "hls_url": f"https://v.redd.it/{vid}/HLSPlaylist.m3u8", "is_gif": False, "transcoding_status": "completed"}}
            if r[7] < 0.8:
                post_hint = "hosted:video"
            thumb, th, tw = f"https://b.thumbs.redditmedia.com/{self._hash43()}.jpg", 78, 140
        elif x < p_img + 0.28:
            domain, hint = LINK_DOMAINS[int(r[19] * len(LINK_DOMAINS))]
            if domain in ("youtube.com", "youtu.be"):
                vid = base64.urlsafe_b64encode(self._rand_bytes(9)).decode()[:11]
                url = f"https://www.youtube.com/watch?v={vid}" if domain == "youtube.com" else f"https://youtu.be/{vid}"
                media = {"type": "youtube.com", "oembed": {"provider_url": "https://www.youtube.com/", "version": "1.0", "title": title,
                                                           "type": "video", "thumbnail_width": 480, "height": 338, "width": 600,
                                                           "html": f"&lt;iframe width=\"600\" height=\"338\" src=\"https://www.youtube.com/embed/{vid}?feature=oembed\" frameborder=\"0\" allowfullscreen&gt;&lt;/iframe&gt;",
                                                           "provider_name": "YouTube", "thumbnail_height": 360}}
            elif domain == "imgur.com":
                url = "https://imgur.com/a/" + "".join(_B62[int(b) % 62] for b in self._rand_bytes(5))
            else:
                url = f"https://{'www.' if r[23] < 0.5 else ''}{domain}/{slug.replace('_', '-')}"
            if r[7] < 0.7:
                post_hint = hint
            thumb, th, tw = (f"https://b.thumbs.redditmedia.com/{self._hash43()}.jpg", 105, 140) if r[23] < 0.7 else ("default", None, None)
        else:
            is_self = True
            url, domain = "https://www.reddit.com" + permalink, f"self.{sub}"
            if c >= 0:
                sp = pools.selftexts[c]
                selftext = sp[int(r[5] * len(sp))]
            elif r[5] < 0.5:
                selftext = pools.general_comments[int(r[5] * 2 * len(pools.general_comments))]
            if r[7] < 0.3:
                post_hint = "self"
            thumb = "self"
        if not hidden and r[6] < 0.02:
            author, selftext, hidden = "[deleted]", "[deleted]", True
        elif not hidden and r[6] < 0.035:
            author, selftext, hidden = "[deleted]", "[removed]", True
        edited: bool | int | float = False
        if r[8] < 0.05:
            e = t + 120 + int(r[8] * 4e6)
            edited = float(e) if era.edited_float else e
        over_18 = r[9] > 0.995
        if over_18 and thumb.startswith("http"):
            thumb = "nsfw"
        rec = {
            "archived": False, "author": author, "author_flair_css_class": None, "author_flair_text": None, "brand_safe": not over_18,
            "contest_mode": False, "created_utc": cv, "distinguished": None, "domain": domain, "edited": edited,
            "gilded": 1 if r[9] < 0.003 else 0, "hidden": False, "hide_score": False, "id": sid, "is_crosspostable": not hidden,
            "is_reddit_media_domain": domain in ("i.redd.it", "v.redd.it"), "is_self": is_self, "is_video": is_video,
            "link_flair_css_class": None, "link_flair_text": None if r[22] > 0.3 else ("OC", "Discussion", "Question", "Help")[int(r[22] * 13)],
            "locked": r[22] > 0.995, "media": media, "media_embed": {}, "num_comments": num_comments, "num_crossposts": 0,
            "over_18": over_18, "parent_whitelist_status": "all_ads", "permalink": permalink, "pinned": False, "retrieved_on": retrieved,
            "score": score, "secure_media": media, "secure_media_embed": {}, "selftext": selftext, "spoiler": r[22] > 0.99,
            "stickied": False, "subreddit": sub, "subreddit_id": subs.ids[s], "suggested_sort": None, "thumbnail": thumb,
            "thumbnail_height": th, "thumbnail_width": tw, "title": title, "url": url, "whitelist_status": "all_ads",
        }
        if post_hint is not None:
            rec["post_hint"] = post_hint
            if preview is not None:
                rec["preview"] = preview
        if era.fullname and not hidden:
            rec["author_fullname"] = users.fullnames[u]
        if extra:
            rec.update(extra)
        if era.arctic:
            rec = {**ARCTIC_S_CONST, **rec}
            rec.update(name="t3_" + sid, created=float(t), subreddit_name_prefixed="r/" + sub, ups=score,
                       upvote_ratio=round(0.5 + 0.5 * r[23], 2), updated_on=retrieved + 15, _meta=self._meta(t, r[14], hidden))
        # rings: comments link here; crossposts copy a summary
        ring = self.s_ring.get(s)
        if ring is None:
            ring = self.s_ring[s] = deque(maxlen=40)
        ring.append((sid, slug, u))
        if not crosspost and not hidden and not extra.get("is_gallery"):
            summary = {"author": author, "created_utc": float(t), "domain": domain, "id": sid, "is_self": is_self, "num_comments": num_comments,
                       "over_18": over_18, "permalink": permalink, "score": score, "subreddit": sub, "subreddit_name_prefixed": "r/" + sub,
                       "thumbnail": thumb, "title": title, "url": url}
            if post_hint:
                summary["post_hint"] = post_hint
            self.x_ring.append(summary)
        good = self._emit("RS", writer, self.rs_stats, rec, r[10], r[11], r[12], r[13], t, users.fullnames[u])
        if good:
            img = is_image_post(rec)
            if not hidden:
                w.n_submissions[u] += 1
                w.n_image_posts[u] += img
            else:
                w.n_hidden[u] += 1
            w.n_image_posts_total += img
        if r[16] < AUTOMOD_RATE:
            self.comment(cwriter, n, t + 1 + int(r[16] * 200), s, ra, 1, link=(sid, slug, u),
                         body=V.AUTOMOD_TEXT[int(ra[2] * len(V.AUTOMOD_TEXT))].format(sub=sub))

    # ---------------------------------------------------------------------------------------- run
    def run(self, rc: ZstLineWriter, rs: ZstLineWriter, progress: Callable[[int], None] | None) -> None:
        users = self.w.users
        n = users.n
        span = self.t1 - self.t0
        days = max(1, span // 86400)
        expected = float(users.rate_c.sum() + users.rate_s.sum())
        n_slices = days * max(1, math.ceil(expected / (days * 50000)))
        gm = self.rng_m.gamma(4.0, 0.25, n) if n else np.zeros(0)
        lam_c = users.rate_c * gm
        lam_s = users.rate_s * gm
        ar = np.arange(n)
        carry_fh, carry_n = {}, {}
        for k, p in self.carry_in.items():
            if p is not None and p.exists():
                with open(p, "rb") as fh:
                    carry_n[k] = sum(1 for _ in fh)
                carry_fh[k] = open(p, "rb")  # noqa: SIM115 - read slice by slice, closed in finally
        n_bots_other = len(users.bots) - 1
        try:
            for k in range(n_slices):
                before = self.emitted
                a = self.t0 + span * k // n_slices
                b = self.t0 + span * (k + 1) // n_slices
                frac = (b - a) / span
                for kind, writer, stats in (("RC", rc, self.rc_stats), ("RS", rs, self.rs_stats)):
                    if kind in carry_fh:
                        m = carry_n[kind] * (k + 1) // n_slices - carry_n[kind] * k // n_slices
                        for _ in range(m):
                            self._emit_carried(kind, writer, stats, carry_fh[kind].readline().rstrip(b"\n"))
                # comments (users, then other bots replying in the same subreddits)
                rng = self.rng_c
                cu = np.repeat(ar, rng.poisson(lam_c * frac)) if n else np.zeros(0, dtype=np.int64)
                cs = self._choose_subs(rng, cu)
                nb = int(rng.poisson(BOT_RATE * len(cu))) if len(cu) else 0
                if nb:
                    bu = n + 1 + rng.integers(0, n_bots_other, nb)
                    bs = cs[rng.integers(0, len(cs), nb)]
                    cu, cs = np.concatenate([cu, bu]), np.concatenate([cs, bs])
                nc = len(cu)
                ct = rng.integers(a, b, nc)
                uc = rng.random((nc, 16)).tolist()
                sc = np.floor(np.exp(rng.normal(0.6, 1.35, nc))).astype(np.int64) - (rng.random(nc) < 0.12) * rng.integers(1, 8, nc)
                # submissions (users, then promoted posts)
                rng = self.rng_s
                su = np.repeat(ar, rng.poisson(lam_s * frac)) if n else np.zeros(0, dtype=np.int64)
                ss = self._choose_subs(rng, su)
                na = int(rng.poisson(AD_RATE * max(len(su), 1)))
                if na:
                    su, ss = np.concatenate([su, np.full(na, -1)]), np.concatenate([ss, np.full(na, -1)])
                ns = len(su)
                st = rng.integers(a, b, ns)
                us = rng.random((ns, 24)).tolist()
                ua = rng.random((ns, 16)).tolist()
                ssc = np.floor(np.exp(rng.normal(1.0, 1.8, ns))).astype(np.int64)
                snc = np.floor(np.exp(rng.normal(1.2, 1.4, ns))).astype(np.int64)
                # one time-ordered pass over both kinds
                order = np.argsort(np.concatenate([ct, st]), kind="stable").tolist()
                cu_l, cs_l, ct_l, sc_l = cu.tolist(), cs.tolist(), ct.tolist(), sc.tolist()
                su_l, ss_l, st_l, ssc_l, snc_l = su.tolist(), ss.tolist(), st.tolist(), ssc.tolist(), snc.tolist()
                comment, submission = self.comment, self.submission
                for j in order:
                    if j < nc:
                        comment(rc, cu_l[j], ct_l[j], cs_l[j], uc[j], sc_l[j])
                    else:
                        j -= nc
                        submission(rs, rc, su_l[j], st_l[j], ss_l[j], us[j], ssc_l[j], snc_l[j], ua[j])
                if progress is not None:
                    progress(self.emitted - before)
        finally:
            for fh in carry_fh.values():
                fh.close()
            for fh in self.carry_fh.values():
                if fh is not None:
                    fh.close()
        self.w.flush_dups()


def _clean(out_dir: Path, images_dir: Path | None) -> None:
    for pat in ("RC_*.zst", "RS_*.zst", "RC_*.zst.part", "RS_*.zst.part"):
        for p in out_dir.glob(pat):
            p.unlink()
    for p in (out_dir / "truth", out_dir / ".carry"):
        if p.exists():
            shutil.rmtree(p)
    (out_dir / "prompts.parquet").unlink(missing_ok=True)
    if images_dir is not None:
        for host in IMAGE_HOSTS_DIRS:
            if (images_dir / host).exists():
                shutil.rmtree(images_dir / host)


def generate_dump(cfg: GenerateConfig, out_dir: Path, images_dir: Path | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Write the synthetic dump for ``cfg`` into ``out_dir`` (see the package docstring for the
    layout). ``progress`` is called with the number of lines written since its previous call.
    Replaces what a previous run left: RC_*/RS_* files, truth/ and prompts.parquet in ``out_dir``
    and the image-host folders (i.redd.it, i.imgur.com, preview.redd.it, ...) in the mirror.
    Returns the summary (also stored, with more detail, in ``truth/manifest.json``)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.images:
        images_dir = Path(images_dir) if images_dir is not None else out_dir / "images"
        images_dir.mkdir(parents=True, exist_ok=True)
    else:
        images_dir = None
    _clean(out_dir, images_dir)
    months = parse_month_range(cfg.months)
    world = World(cfg, out_dir, images_dir)
    tmp = out_dir / ".carry"
    tmp.mkdir(exist_ok=True)
    files: dict[str, FileStats] = {}
    carry: dict[str, Path | None] = {"RC": None, "RS": None}
    try:
        for i, month in enumerate(months):
            gen = MonthGen(world, month, carry, write_carry=i < len(months) - 1, tmp_dir=tmp)
            rc = ZstLineWriter(out_dir / gen.rc_name, cfg.zstd_level)
            rs = ZstLineWriter(out_dir / gen.rs_name, cfg.zstd_level)
            try:
                gen.run(rc, rs, progress)
            except BaseException:
                rc.abort()
                rs.abort()
                raise
            rc.close()
            rs.close()
            for st, wr in ((gen.rc_stats, rc), (gen.rs_stats, rs)):
                st.total_lines, st.uncompressed_bytes = wr.lines, wr.bytes
                files[st.name] = st
            for p in carry.values():
                if p is not None:
                    p.unlink(missing_ok=True)
            carry = gen.carry_out
    finally:
        world.close()
        shutil.rmtree(tmp, ignore_errors=True)

    t0, _ = month_bounds(months[0])
    _, t1 = month_bounds(months[-1])
    n_prompts = write_prompts(out_dir / "prompts.parquet", world.users, cfg.n_communities, cfg.seed, cfg.prompts_per_user, t0, t1)
    _write_truth(world, out_dir / "truth")
    elapsed = time.perf_counter() - started

    bad_per_file = {name: dict(st.bad) for name, st in files.items()}
    bad_totals = {k: sum(b[k] for b in bad_per_file.values()) for k in KINDS}
    (out_dir / "truth" / "bad_lines.json").write_text(json.dumps({"per_file": bad_per_file, "totals": bad_totals}, indent=2))
    total = sum(st.total_lines for st in files.values())
    raw_bytes = sum(st.uncompressed_bytes for st in files.values())
    summary = {
        "out_dir": str(out_dir),
        "images_dir": str(images_dir) if images_dir else None,
        "files": {name: st.total_lines for name, st in files.items()},
        "total_lines": total,
        "good_lines": sum(st.good_lines for st in files.values()),
        "bad_lines": bad_totals,
        "duplicate_ids": sum(st.duplicate_ids for st in files.values()),
        "n_users": world.users.n,
        "n_bots": len(world.users.bots),
        "n_subreddits": len(world.subs),
        "n_image_posts": world.n_image_posts_total,
        "n_image_urls": world.n_image_urls,
        "n_dead_image_urls": world.n_dead_urls,
        "n_images_written": world.n_images_written,
        "n_prompts": n_prompts,
        "uncompressed_mb": round(raw_bytes / 1e6, 3),
        "compressed_mb": round(sum((out_dir / n).stat().st_size for n in files) / 1e6, 3),
        "seconds": round(elapsed, 3),
        "lines_per_s": round(total / elapsed, 1) if elapsed > 0 else None,
        "mb_per_s": round(raw_bytes / 1e6 / elapsed, 3) if elapsed > 0 else None,
    }
    manifest = {
        "config": cfg.model_dump(mode="json"),
        "generator": "zipp.generate",
        "months": months,
        "files": {name: st.as_dict() for name, st in files.items()},
        **{k: v for k, v in summary.items() if k not in ("files", "out_dir", "images_dir")},
    }
    (out_dir / "truth" / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return summary


def _write_truth(world: World, truth: Path) -> None:
    users, subs = world.users, world.subs
    comms = V.COMMUNITIES[: world.cfg.n_communities]
    n, nt = users.n, users.n_total
    home_names = []
    for i in range(n):
        hs = []
        for slot in range(users.home_subs.shape[1]):
            lo = users.home_cdf[i, slot - 1] if slot else 0.0
            if users.home_cdf[i, slot] - lo > 1e-9:
                hs.append(subs.names[users.home_subs[i, slot]])
        home_names.append(hs)

    def persona(values: list, bot_value=None) -> list:
        return values + [bot_value] * (nt - n)

    table = pa.table({
        "author": users.names,
        "author_fullname": users.fullnames,
        "interests": persona([[comms[c].name for c in row if c >= 0] for row in users.interests.tolist()], []),
        "interest_weights": persona([[round(x, 4) for x, c in zip(wr, row) if c >= 0] for wr, row in zip(users.interest_w.tolist(), users.interests.tolist())], []),
        "age_band": persona([V.AGE_BANDS[b][0] for b in users.age_band.tolist()]),
        "age": pa.array(persona(users.age.tolist()), pa.int32()),
        "gender": persona([V.GENDERS[g] for g in users.gender.tolist()]),
        "country": persona(list(users.country)),
        "city": persona(list(users.city)),
        "profession": persona([V.PROFESSIONS[p][0] for p in users.profession.tolist()]),
        "aesthetics": persona([[V.AESTHETICS[a] for a in row if a >= 0] for row in users.aesthetics.tolist()], []),
        "home_subreddits": persona(home_names, []),
        "p_focus": pa.array(persona([round(x, 4) for x in users.p_focus.tolist()]), pa.float64()),
        "location_share": pa.array(persona([round(x, 4) for x in users.loc_share.tolist()]), pa.float64()),
        "n_comments": pa.array(world.n_comments, pa.int64()),
        "n_submissions": pa.array(world.n_submissions, pa.int64()),
        "n_image_posts": pa.array(world.n_image_posts, pa.int64()),
        "n_deleted_lines": pa.array(world.n_hidden, pa.int64()),
        **{f"n_cues_{k}": pa.array(v, pa.int64()) for k, v in world.cues.items()},
        "is_bot": [False] * n + [True] * (nt - n),
        "is_deleted_alias": users.deleted_alias.tolist() + [False] * (nt - n),
    })
    pq.write_table(table, truth / "users.parquet")
    kinds = []
    for c in subs.community.tolist():
        kinds.append(comms[c].name if c >= 0 else ("location" if c == KIND_LOCATION else "general"))
    pq.write_table(pa.table({
        "subreddit": subs.names, "subreddit_id": subs.ids, "community": kinds, "location": subs.location,
        "is_visual": subs.is_visual.tolist(), "popularity": subs.popularity.tolist(),
    }), truth / "subreddits.parquet")
