"""The planted world: subreddits (interest communities, locations, general) and users with latent
personas, plus precomputed text pools. Everything is a pure function of (config, seed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from zipp.generate import vocab as V

B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
KIND_GENERAL = -1
KIND_LOCATION = -2
HOME_SLOTS = 10  # 4 interests x 2 favourite subreddits + city + country


_T3 = [a + b + c for a in B36 for b in B36 for c in B36]  # all 3-digit base36 strings


def b36(n: int) -> str:
    """Non-negative int -> base36 (lowercase), like Reddit ids."""
    if n < 46656:
        return _T3[n].lstrip("0") or "0"
    hi, lo = divmod(n, 46656)
    if hi < 46656:
        return _T3[hi].lstrip("0") + _T3[lo]
    return b36(hi) + _T3[lo]


def stable_int(*parts: object, bits: int = 40) -> int:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") >> (64 - bits)


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """One independent PCG64 stream per (seed, *stream), e.g. (seed, month_index, kind)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *stream])))


# ------------------------------------------------------------------------------------- subreddits


@dataclass
class Subreddits:
    names: list[str]
    ids: list[str]  # t5_...
    community: np.ndarray  # community index, KIND_GENERAL or KIND_LOCATION
    location: list[str | None]  # "City, Country" or "Country" for location subs
    is_visual: np.ndarray  # bool
    popularity: np.ndarray  # global weight used for noise activity
    noise_cdf: np.ndarray  # cumulative over all non-location subs
    community_subs: list[np.ndarray]  # per community: sub indices, popularity order
    community_zipf: list[np.ndarray]  # per community: normalised within-community weights
    city_sub: dict[tuple[str, str], int]
    country_sub: dict[str, int]

    def __len__(self) -> int:
        return len(self.names)


def build_subreddits(n_communities: int) -> Subreddits:
    comms = V.COMMUNITIES[:n_communities]
    names: list[str] = []
    community: list[int] = []
    location: list[str | None] = []
    visual: list[bool] = []
    pop: list[float] = []
    index: dict[str, int] = {}

    def add(name: str, comm: int, loc: str | None, vis: bool, weight: float) -> int:
        key = name.lower()
        if key in index:
            return index[key]
        index[key] = len(names)
        names.append(name)
        community.append(comm)
        location.append(loc)
        visual.append(vis)
        pop.append(weight)
        return index[key]

    for rank, g in enumerate(V.GENERAL_SUBS):
        add(g, KIND_GENERAL, None, g in V.GENERAL_VISUAL, 30.0 / (rank + 1) ** 0.9)
    community_subs, community_zipf = [], []
    for ci, c in enumerate(comms):
        cw = 1.0 / (ci % 17 + 1) ** 0.6  # community popularity, Zipf-ish with a long flat tail
        idx, w = [], []
        for r, s in enumerate(c.subs):
            zw = 1.0 / (r + 1) ** 1.1
            idx.append(add(s, ci, None, c.visual, 4.0 * cw * zw))
            w.append(zw)
        community_subs.append(np.array(idx, dtype=np.int32))
        community_zipf.append(np.array(w) / sum(w))
    city_sub: dict[tuple[str, str], int] = {}
    country_sub: dict[str, int] = {}
    for country, (_, csub, cities) in V.LOCATIONS.items():
        country_sub[country] = add(csub, KIND_LOCATION, country, False, 0.0)
        for city, sub, _w in cities:
            city_sub[(country, city)] = add(sub, KIND_LOCATION, f"{city}, {country}", False, 0.0)
    popularity = np.array(pop, dtype=np.float64)
    cdf = np.cumsum(popularity / popularity.sum())
    cdf[-1] = 1.0
    ids = ["t5_" + b36(stable_int("subreddit", n.lower(), bits=30) + 36**4) for n in names]
    return Subreddits(names, ids, np.array(community, dtype=np.int32), location, np.array(visual), popularity, cdf,
                      community_subs, community_zipf, city_sub, country_sub)


# ------------------------------------------------------------------------------------------ users


@dataclass
class Users:
    n: int  # persona users; bots follow them at indices n .. n+len(bots)-1
    names: list[str]  # users then bots
    fullnames: list[str]  # t2_...
    interests: np.ndarray  # (n, 4) community index, -1 padded
    interest_w: np.ndarray  # (n, 4)
    age: np.ndarray
    age_band: np.ndarray  # index into V.AGE_BANDS
    gender: np.ndarray  # index into V.GENDERS
    country: list[str]
    city: list[str]
    profession: np.ndarray  # index into V.PROFESSIONS
    aesthetics: np.ndarray  # (n, 2) index into V.AESTHETICS, -1 padded
    home_subs: np.ndarray  # (n, HOME_SLOTS) int32
    home_cdf: np.ndarray  # (n, HOME_SLOTS) cumulative weights
    p_focus: np.ndarray  # share of activity in home subreddits
    loc_share: np.ndarray  # share of home activity in location subreddits
    rate_c: np.ndarray  # expected comments per month
    rate_s: np.ndarray  # expected submissions per month
    deleted_alias: np.ndarray  # bool: account deleted, every line shows "[deleted]"
    bots: tuple[str, ...]

    @property
    def n_total(self) -> int:
        return self.n + len(self.bots)


def _usernames(rng: np.random.Generator, n: int) -> list[str]:
    A, B = V.USER_WORDS_A, V.USER_WORDS_B
    style = rng.integers(0, 7, n)
    a = rng.integers(0, len(A), n)
    b = rng.integers(0, len(B), n)
    num = rng.integers(0, 10000, n)
    taken = {x.lower() for x in V.BOTS} | {x.lower() for x in V.AD_BRANDS} | {"[deleted]"}
    out = []
    for i in range(n):
        s, wa, wb, k = int(style[i]), A[a[i]], B[b[i]], int(num[i])
        if s == 0:
            name = f"{wa.capitalize()}-{wb.capitalize()}-{k:04d}"
        elif s == 1:
            name = f"{wa.capitalize()}_{wb.capitalize()}_{k:04d}"
        elif s == 2:
            name = f"{wa}{wb}{k % 100}"
        elif s == 3:
            name = f"{wb.capitalize()}{wa.capitalize()}"
        elif s == 4:
            name = f"the_{wa}_{wb}"
        elif s == 5:
            name = f"{wa}_{wb}{k % 1000}"
        else:
            name = f"throwaway{k}{wb}"
        base, j = name, 1
        while name.lower() in taken:
            name = f"{base}{j}"
            j += 1
        taken.add(name.lower())
        out.append(name)
    return out


def build_users(n: int, subs: Subreddits, n_communities: int, seed: int, comments_per_user: float, submissions_per_user: float,
                deleted_user_rate: float = 0.02) -> Users:
    rng = rng_for(seed, 0, 0)
    comms = V.COMMUNITIES[:n_communities]
    nc = len(comms)
    names = _usernames(rng, n)
    fullnames = ["t2_" + b36(x) for x in rng.integers(36**5, 36**8, n).tolist()]
    fullnames += ["t2_" + b36(stable_int("bot", b, bits=32) + 36**5) for b in V.BOTS]
    names = names + list(V.BOTS)

    comm_w = np.array([1.0 / (i % 17 + 1) ** 0.6 for i in range(nc)])
    comm_p = comm_w / comm_w.sum()
    n_int = rng.choice(np.arange(1, 5), size=n, p=[0.3, 0.35, 0.22, 0.13])
    n_int = np.minimum(n_int, nc)
    interests = np.full((n, 4), -1, dtype=np.int32)
    interest_w = np.zeros((n, 4))
    for i in range(n):
        k = int(n_int[i])
        interests[i, :k] = rng.choice(nc, size=k, replace=False, p=comm_p)
        interest_w[i, :k] = rng.dirichlet(np.full(k, 1.5)) if k > 1 else 1.0
    # Sort interests by weight so column 0 is the primary interest.
    order = np.argsort(-interest_w, axis=1, kind="stable")
    interests = np.take_along_axis(interests, order, 1)
    interest_w = np.take_along_axis(interest_w, order, 1)
    primary = interests[:, 0]

    age_shift = np.array([c.age_shift for c in comms])
    age = np.clip(np.round(rng.normal(30.0 + age_shift[primary], 9.0)), 18, 80).astype(np.int32)
    heavy = rng.random(n) < 0.08  # a few older users everywhere
    age = np.where(heavy, np.clip(age + rng.integers(15, 30, n), 18, 85), age).astype(np.int32)
    band_hi = np.array([hi for _, _, hi in V.AGE_BANDS])
    age_band = np.searchsorted(band_hi, age).astype(np.int32)

    pf = np.array([c.p_female for c in comms])
    pf_u = np.array([np.average(pf[interests[i, : n_int[i]]], weights=interest_w[i, : n_int[i]]) for i in range(n)])
    r = rng.random(n)
    gender = np.where(r < 0.03, 2, np.where(rng.random(n) < pf_u, 1, 0)).astype(np.int32)

    countries = list(V.LOCATIONS)
    cw = np.array([V.LOCATIONS[c][0] for c in countries])
    ci = rng.choice(len(countries), size=n, p=cw / cw.sum())
    country = [countries[i] for i in ci]
    city = []
    for i in range(n):
        cities = V.LOCATIONS[country[i]][2]
        w = np.array([x[2] for x in cities])
        city.append(cities[int(rng.choice(len(cities), p=w / w.sum()))][0])

    prof_names = [p[0] for p in V.PROFESSIONS]
    base_w = np.array([p[1] for p in V.PROFESSIONS])
    lo = np.array([p[2] for p in V.PROFESSIONS])
    hi = np.array([p[3] for p in V.PROFESSIONS])
    prof_boost = [np.array([3.0 if p in c.professions else 1.0 for p in prof_names]) for c in comms]
    retired_i = prof_names.index("retired")
    student_i = prof_names.index("student")
    profession = np.zeros(n, dtype=np.int32)
    for i in range(n):
        w = base_w.copy()
        for c in interests[i, : n_int[i]]:
            w = w * prof_boost[c]
        w = np.where((age[i] >= lo) & (age[i] <= hi), w, 0.0)
        if age[i] >= 66 or w.sum() == 0:
            w[retired_i] = max(w.sum() * 2.0, 1.0)
        if age[i] <= 22:
            w[student_i] = w.sum() * 1.5
        profession[i] = rng.choice(len(w), p=w / w.sum())

    na = len(V.AESTHETICS)
    aes_boost = [np.array([3.0 if a in c.aesthetics else 1.0 for a in V.AESTHETICS]) for c in comms]
    aesthetics = np.full((n, 2), -1, dtype=np.int32)
    n_aes = np.where(rng.random(n) < 0.6, 1, 2)
    for i in range(n):
        w = np.ones(na)
        for c in interests[i, : n_int[i]]:
            w = w * aes_boost[c]
        aesthetics[i, : n_aes[i]] = rng.choice(na, size=n_aes[i], replace=False, p=w / w.sum())

    # Home subreddits: two favourites per interest (within-community Zipf) plus city and country.
    p_focus = rng.beta(17.0, 3.0, n)  # mean 0.85
    loc_share = np.where(rng.random(n) < 0.35, 0.0, rng.beta(2.0, 9.0, n))
    home_subs = np.zeros((n, HOME_SLOTS), dtype=np.int32)
    home_w = np.zeros((n, HOME_SLOTS))
    for i in range(n):
        slot = 0
        for j in range(int(n_int[i])):
            c = interests[i, j]
            cs, cz = subs.community_subs[c], subs.community_zipf[c]
            k = min(2, len(cs))
            fav = rng.choice(len(cs), size=k, replace=False, p=cz)
            split = (0.68, 0.32) if k == 2 else (1.0,)
            for f, s in zip(fav, split):
                home_subs[i, slot] = cs[f]
                home_w[i, slot] = interest_w[i, j] * s * (1.0 - loc_share[i])
                slot += 1
        home_subs[i, 8] = subs.city_sub[(country[i], city[i])]
        home_w[i, 8] = loc_share[i] * 0.7
        home_subs[i, 9] = subs.country_sub[country[i]]
        home_w[i, 9] = loc_share[i] * 0.3
    home_cdf = np.cumsum(home_w / home_w.sum(axis=1, keepdims=True), axis=1)
    home_cdf[:, -1] = 1.0 + 1e-9

    activity = rng.lognormal(0.0, 1.15, n)
    activity /= np.exp(1.15**2 / 2)  # mean 1
    rate_c = comments_per_user * activity
    poster = rng.lognormal(0.0, 0.9, n) / np.exp(0.9**2 / 2)
    rate_s = submissions_per_user * activity**0.8 * poster
    deleted_alias = rng.random(n) < deleted_user_rate
    return Users(n, names, fullnames, interests, interest_w, age, age_band, gender, country, city, profession, aesthetics,
                 home_subs, home_cdf, p_focus, loc_share, rate_c, rate_s, deleted_alias, V.BOTS)


# ------------------------------------------------------------------------------------------- text


@dataclass
class TextPools:
    comments: list[list[str]]  # per community
    titles: list[list[str]]
    selftexts: list[list[str]]
    general_comments: list[str]
    general_titles: list[str]
    location_comments: dict[int, list[str]]  # per location subreddit index
    location_titles: dict[int, list[str]]


def _pick(seq, x: float):
    return seq[int(x * len(seq))]


def _fill(tpl: str, c: V.Community, r: list[float]) -> str:
    adj = _pick(V.ADJS, r[0])
    return tpl.format(
        adj=adj, Adj=adj.capitalize(), thing=_pick(c.things, r[1]), act=_pick(c.acts, r[2]), n=2 + int(r[3] * 10),
        season=_pick(V.SEASONS, r[4]), body="",
    ).strip()


def build_text_pools(n_communities: int, subs: Subreddits, seed: int, pool: int = 240) -> TextPools:
    rng = rng_for(seed, 0, 1)
    comms = V.COMMUNITIES[:n_communities]
    comments, titles, selftexts = [], [], []
    for c in comms:
        R = rng.random((pool, 6)).tolist()
        cp = [_fill(_pick(V.COMMENT_TEMPLATES, r[5]), c, r) for r in R]
        cp += list(c.phrases) * 6
        comments.append(cp)
        R = rng.random((pool // 2, 6)).tolist()
        titles.append([_fill(_pick(V.TITLE_TEMPLATES, r[5]), c, r) for r in R])
        st = []
        for r in rng.random((pool // 4, 6)).tolist():
            tpl = _pick(V.SELFTEXT_TEMPLATES, r[0])
            st.append(tpl.replace("{body}", _pick(cp, r[1])).format(act=c.acts[0], thing=_pick(c.things, r[2]), n=2 + int(r[3] * 10)))
        selftexts.append(st)
    general_comments = list(V.GENERAL_COMMENTS)
    general_titles = list(V.GENERAL_TITLES)
    loc_c: dict[int, list[str]] = {}
    loc_t: dict[int, list[str]] = {}
    hobbies = [c.acts[0] for c in comms] or ["hiking"]
    for si, loc in enumerate(subs.location):
        if loc is None:
            continue
        city = loc.split(", ")[0]
        R = rng.random((36, 4)).tolist()
        lc = [_pick(V.LOCATION_TEMPLATES, r[0]).format(place=_pick(V.PLACES, r[1]), city=city, season=_pick(V.SEASONS[:4], r[2]),
                                                      hobby=_pick(hobbies, r[3])) for r in R[:24]]
        lt = [_pick(V.LOCATION_TITLES, r[0]).format(place=_pick(V.PLACES, r[1]), city=city) for r in R[24:]]
        loc_c[si], loc_t[si] = lc, lt
    return TextPools(comments, titles, selftexts, general_comments, general_titles, loc_c, loc_t)
