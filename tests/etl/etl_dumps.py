"""Small dump files written in code: Pushshift-shaped lines, 2 GiB-window .zst frames."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import zstandard


def ts(day: str) -> int:
    """'2016-01-05' or '2016-01-05T10:00' -> epoch seconds (UTC)."""
    fmt = "%Y-%m-%dT%H:%M" if "T" in day else "%Y-%m-%d"
    return int(datetime.strptime(day, fmt).replace(tzinfo=timezone.utc).timestamp())


def comment(id: str, author: str, subreddit: str, created, score=1, body: str = "a comment", **extra) -> bytes:
    d = {"id": id, "author": author, "subreddit": subreddit, "subreddit_id": "t5_x", "link_id": "t3_l",
         "parent_id": "t3_l", "body": body, "score": score, "created_utc": created, "retrieved_on": 1_500_000_000,
         "controversiality": 0, "gilded": 0, "stickied": False, "distinguished": None}
    d.update(extra)
    return orjson.dumps({k: v for k, v in d.items() if v is not _DROP})


def submission(id: str, author: str, subreddit: str, created, score=1, title: str = "a title", url: str = "https://example.com/x",
               **extra) -> bytes:
    d = {"id": id, "author": author, "subreddit": subreddit, "title": title, "selftext": "", "url": url,
         "domain": "example.com", "score": score, "created_utc": created, "retrieved_on": 1_500_000_000,
         "num_comments": 0, "over_18": False, "is_self": False, "stickied": False}
    d.update(extra)
    return orjson.dumps({k: v for k, v in d.items() if v is not _DROP})


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


_DROP = _Drop()
DROP = _DROP  # pass as a field value to leave the key out


def zst_bytes(data: bytes) -> bytes:
    """A zstd frame declaring a 2 GiB window, like the Pushshift dumps."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31)
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


def write_lines(path: Path, lines: list[bytes], *, final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path.write_bytes(zst_bytes(data) if path.suffix == ".zst" else data)
    return path


def write_truncated_zst(path: Path, lines: list[bytes], keep: float = 0.6) -> Path:
    """A .zst cut after ``keep`` of its bytes (a download that stopped early)."""
    data = zst_bytes(b"\n".join(lines) + b"\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep)])
    return path
