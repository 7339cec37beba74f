"""Malformed lines: how the generator injects them and one classifier that names the kind of any
line (used by the tests to reconcile the files with ``truth/bad_lines.json``; usable by the ETL).

Kinds, checked in this order by :func:`classify_line`:

- ``empty_line``: nothing but whitespace.
- ``oversize``: longer than 1 MiB (a valid JSON object with a > 1 MiB body; a couple per file at most).
- ``invalid_utf8``: bytes that are not UTF-8 (e.g. ``\\xff`` inside ``body``/``title``).
- ``truncated``: not parseable JSON (a proper prefix of a real line).
- ``non_object``: JSON that is not an object (``[1,2]``, ``"str"``, ``42``, ``null``, ``true``).
- ``missing_key``: no ``id``, no ``author``, or no ``subreddit`` (except promoted ads, which really
  have no subreddit).
- ``wrong_type``: ``score`` not an int (``"12"``), or ``created_utc`` null or a non-numeric string.
  A digit string ``created_utc`` (``"1446336000"``) is NOT bad: it is real era drift.
"""

from __future__ import annotations

import orjson

KINDS = ("truncated", "non_object", "wrong_type", "missing_key", "invalid_utf8", "empty_line", "oversize")
_WEIGHTS = (0.21, 0.1, 0.24, 0.2, 0.1, 0.13, 0.02)
KIND_CDF = tuple(sum(_WEIGHTS[: i + 1]) / sum(_WEIGHTS) for i in range(len(_WEIGHTS)))
ONE_MIB = 1 << 20
OVERSIZE_MAX_PER_FILE = 2
IMAGE_HOSTS = frozenset({"i.redd.it", "i.imgur.com"})
_NON_OBJECTS = (b"[1,2]", b'"str"', b"42", b"null", b"true", b"[]", b'"[deleted]"', b"3.14")
_BAD_BYTES = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xfe\xfe", b"\x80abc")
_FILLER = "All work and no play makes a very long comment. " * 8


def pick_kind(u: float) -> str:
    for k, c in zip(KINDS, KIND_CDF):
        if u < c:
            return k
    return KINDS[-1]


def corrupt(kind: str, rec: dict, line: bytes, u: float, dumps=orjson.dumps) -> bytes:
    """A bad line of ``kind`` made from a good record and its serialised line (no newline)."""
    if kind == "truncated":
        s = line.decode("utf-8")
        cut = 1 + int(u * (len(s) - 2))  # 1 .. len-1: a proper prefix of an object never parses
        return s[:cut].encode("utf-8")
    if kind == "non_object":
        return _NON_OBJECTS[int(u * len(_NON_OBJECTS))]
    if kind == "wrong_type":
        bad = dict(rec)
        v = int(u * 3)
        if v == 0:
            bad["score"] = str(rec.get("score", 12))
        elif v == 1:
            bad["created_utc"] = None
        else:
            bad["created_utc"] = "notanumber"
        return dumps(bad)
    if kind == "missing_key":
        bad = dict(rec)
        keys = ("id", "author", "subreddit") if "subreddit" in rec else ("id", "author")
        bad.pop(keys[int(u * len(keys))], None)
        return dumps(bad)
    if kind == "invalid_utf8":
        bb = _BAD_BYTES[int(u * len(_BAD_BYTES))]
        for key in (b'"body":"', b'"title":"', b'"selftext":"'):
            if key in line:
                return line.replace(key, key + bb, 1)
        return line[:-1] + b',"x":"' + bb + b'"}'
    if kind == "empty_line":
        return b"" if u < 0.8 else b"   "
    if kind == "oversize":
        bad = dict(rec)
        field = "body" if "body" in rec else "selftext"
        bad[field] = _FILLER * (ONE_MIB // len(_FILLER) + 2 + int(u * 8))
        return dumps(bad)
    raise ValueError(f"unknown bad-line kind {kind!r}")


def classify_line(line: bytes) -> str | None:
    """None for a good line, else its bad-line kind. ``line`` is one line without its newline."""
    if not line.strip():
        return "empty_line"
    if len(line) > ONE_MIB:
        return "oversize"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        o = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "truncated"
    return classify_obj(o)


def classify_obj(o: object) -> str | None:
    if not isinstance(o, dict):
        return "non_object"
    if "id" not in o or "author" not in o or ("subreddit" not in o and o.get("promoted") is not True):
        return "missing_key"
    if type(o.get("score")) is not int:
        return "wrong_type"
    cu = o.get("created_utc")
    t = type(cu)
    if not (t is int or t is float or (t is str and cu.isdigit())):
        return "wrong_type"
    return None


def is_image_post(o: dict) -> bool:
    """A submission whose link is a direct image (i.redd.it / i.imgur.com) or a gallery."""
    if o.get("is_gallery") is True:
        return True
    url = o.get("url")
    if not isinstance(url, str) or "://" not in url:
        return False
    return url.split("://", 1)[1].split("/", 1)[0] in IMAGE_HOSTS
