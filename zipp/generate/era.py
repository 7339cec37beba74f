"""Schema drift by the month being written (what real Pushshift / Arctic-Shift files show)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass


def ym(month: str) -> tuple[int, int]:
    y, m = month.split("-")
    return int(y), int(m)


def month_index(month: str) -> int:
    """Months since 2005-06 (the first Reddit month); ids and RNG streams are keyed by it."""
    y, m = ym(month)
    return (y - 2005) * 12 + (m - 6)


def month_bounds(month: str) -> tuple[int, int]:
    y, m = ym(month)
    t0 = calendar.timegm((y, m, 1, 0, 0, 0))
    y1, m1 = (y + 1, 1) if m == 12 else (y, m + 1)
    return t0, calendar.timegm((y1, m1, 1, 0, 0, 0))


@dataclass(frozen=True)
class Era:
    month: str
    created: str  # "int" | "str" | "mixed" | "float": the JSON type of created_utc
    fullname: bool  # author_fullname (t2_...) present
    comment_permalink: bool  # comments carry permalink
    ups: bool  # old files also carry ups
    ireddit: bool  # i.redd.it image hosting exists
    preview_new: bool  # preview images on preview.redd.it (else i.redditmedia.com)
    video: bool  # v.redd.it, post_hint hosted:video
    crosspost: bool  # crosspost_parent / crosspost_parent_list
    gallery: bool  # is_gallery, gallery_data, media_metadata
    gallery_hint: bool  # post_hint "gallery"
    edited_float: bool  # edited is a float timestamp (else int) when edited
    recrawl: bool  # retrieved_on is a later bulk re-crawl, not minutes after creation
    arctic: bool
    arctic_meta: bool  # _meta on lines (always in arctic format)


def era_for(month: str, fmt: str = "pushshift") -> Era:
    t = ym(month)
    arctic = fmt == "arctic"
    if arctic and t >= (2023, 11):
        created = "float"
    elif t == (2015, 2):
        created = "mixed"
    elif (2008, 1) <= t <= (2015, 11):
        created = "str"
    else:
        created = "int"
    return Era(
        month=month,
        created=created,
        fullname=arctic or t >= (2018, 1),
        comment_permalink=arctic or t >= (2018, 1),
        ups=not arctic and t < (2018, 1),
        ireddit=t >= (2016, 6),
        preview_new=t >= (2018, 6),
        video=t >= (2017, 6),
        crosspost=t >= (2017, 8),
        gallery=t >= (2020, 6),
        gallery_hint=t >= (2020, 8),
        edited_float=t >= (2016, 1),
        recrawl=t < (2018, 1),
        arctic=arctic,
        arctic_meta=arctic,
    )


def created_value(ts: int, mode: str, u: float) -> int | str | float:
    if mode == "int":
        return ts
    if mode == "str":
        return str(ts)
    if mode == "float":
        return float(ts)
    return str(ts) if u < 0.5 else ts  # mixed
