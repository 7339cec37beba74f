"""Input files: which are dump files, their kind and month, and their fingerprint.

Names understood (any folder depth under the input folder):

- Pushshift: ``RC_2016-01.zst`` (comments), ``RS_2017-09.head1000.zst`` (submissions)
- Arctic-Shift style: ``..._2024-02_comments...ndjson``, ``submissions_2024-02.jsonl``

Extensions: ``.zst`` (any zstd window), ``.ndjson``, ``.jsonl``, ``.json``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

_EXT = (".zst", ".ndjson", ".jsonl", ".json")
_PUSHSHIFT = re.compile(r"^R([CS])_(\d{4}-\d{2})(?=[._]|$)")
_MONTH = re.compile(r"(?<!\d)(\d{4}-(?:0[1-9]|1[0-2]))(?!\d)")
_KIND_WORD = re.compile(r"(comments|submissions)", re.I)


@dataclass(frozen=True)
class SourceFile:
    path: str  # absolute
    rel: str  # relative to the input folder: the file's name in every table
    kind: str  # comments | submissions
    month: str  # YYYY-MM from the name
    size: int
    mtime_ns: int

    def sha256(self) -> str:
        return file_sha256(self.path)


def parse_name(name: str) -> tuple[str, str] | None:
    """(kind, month) from a file name, or None when it is not a dump file."""
    if not name.endswith(_EXT):
        return None
    m = _PUSHSHIFT.match(name)
    if m:
        return ("comments" if m.group(1) == "C" else "submissions"), m.group(2)
    kind, month = _KIND_WORD.search(name), _MONTH.search(name)
    if kind and month:
        return kind.group(1).lower(), month.group(1)
    return None


def discover(input_dir: str | Path, months: list[str] | None = None) -> tuple[list[SourceFile], list[str]]:
    """(dump files sorted by month/kind/name, names with a data extension that were not understood)."""
    root = Path(input_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {root} does not exist")
    found: list[SourceFile] = []
    skipped: list[str] = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith((".", "_")) for part in p.relative_to(root).parts):
            continue
        km = parse_name(p.name)
        if km is None:
            if p.name.endswith(_EXT) and p.parent.name != "truth":
                skipped.append(str(p.relative_to(root)))
            continue
        kind, month = km
        if months is not None and month not in months:
            continue
        st = p.stat()
        found.append(SourceFile(str(p), str(p.relative_to(root)), kind, month, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: (f.month, f.kind, f.rel))
    return found, skipped


def file_sha256(path: str | Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(block):
            h.update(data)
    return h.hexdigest()
