"""Cut one input file into line-aligned chunks so that one big month is parsed by many cores.

``.zst`` files are decompressed once with python-zstandard (2 GiB window, all frames, a cut frame is
detected) and written as plain chunk files to the staging folder; plain ``.ndjson``/``.jsonl`` files
are only scanned for line ends and their chunks are byte ranges of the file itself.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

# Small buffers: 1 MiB reads into 4 MiB output buffers fault in fresh pages on every call (a 1.1 GB
# month: 2.8 s, 0.95 s of it in the kernel); 128 KiB buffers are reused (2.0-2.5 s). What remains in
# the kernel is the first touch of the decoder's window (up to 2 GiB), once per file.
READ_SIZE = 1 << 17
WRITE_SIZE = 1 << 17


class InputError(Exception):
    """The stream ended badly; ``reason`` is the quarantine reason of its tail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Chunk:
    file_idx: int
    seq: int
    first_line_no: int  # 1-based line number of the chunk's first line within its file
    n_lines: int
    path: str  # staged chunk file, or the source file for plain inputs
    offset: int
    length: int
    tail_reason: str = ""  # set on the last chunk of a cut/corrupt .zst: its bytes are one partial line
    tail_detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def is_zst(path: str | Path) -> bool:
    return str(path).endswith(".zst")


def decompressed_pieces(path: str | Path) -> Iterator[bytes]:
    """Decompressed bytes of every frame; raises InputError after the last good byte if cut/corrupt."""
    import zstandard

    dctx = zstandard.ZstdDecompressor(max_window_size=2**31)
    with open(path, "rb") as fh:
        obj = dctx.decompressobj(write_size=WRITE_SIZE)
        in_frame = False
        while True:
            data = fh.read(READ_SIZE)
            if not data:
                break
            while data:
                try:
                    out = obj.decompress(data)
                except zstandard.ZstdError as e:
                    raise InputError("corrupt_input", f"zstd: {e}") from None
                in_frame = True
                if out:
                    yield out
                if obj.eof:
                    data = obj.unused_data
                    obj = dctx.decompressobj(write_size=WRITE_SIZE)
                    in_frame = bool(data)
                else:
                    data = b""
        if in_frame:
            raise InputError("truncated", "zstd frame ends before its end mark (file cut short)")


class StagingRoom:
    """Backpressure for the splits of one run: a split waits before staging a chunk while the chunks
    staged and not yet parsed would pass ``max_bytes``. Without it, where the split decompresses
    faster than the parse tasks read (few cores: one core decompresses ~450 MB/s, a parse task reads
    ~130 MB/s), staging fills with most of the decompressed month (100+ GB for a recent one).

    A waiting split holds a task slot, so it waits only while some slot is left for the parse tasks:
    fewer splits run (each marks itself under ``_splitting/``) than the cluster has ``slots``.
    ``local[1]``, or as many files as slots, never waits (it stages as before). A split also stops
    waiting when nothing was parsed for ``stall_s`` (a slot count that was wrong: better a full
    staging folder than a hung run), and fails when the driver marks the run ``_abort`` (a parse
    task failed: nothing will drain the folder)."""

    def __init__(self, root: str | Path, max_bytes: int, slots: int, stall_s: float = 300.0, poll_s: float = 0.05):
        self.root, self.max_bytes, self.slots = Path(root), max_bytes, slots
        self.stall_s, self.poll_s = stall_s, poll_s
        self.waited_s = 0.0
        self._gave_up = False

    def staged_bytes(self) -> int:
        return sum(size for _, size in _staged_chunks(self.root, (".ndjson", ".tail")))

    def splitting(self) -> int:
        return sum(1 for _ in (self.root / "_splitting").glob("*"))

    def enter(self, file_idx: int) -> Path:
        mark = self.root / "_splitting" / f"f{file_idx:05d}"
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()
        return mark

    def wait_for(self, nbytes: int) -> None:
        """Return once ``nbytes`` more fit (or waiting is unsafe or has stalled)."""
        if self.max_bytes <= 0 or self._gave_up:
            return
        staged = self.staged_bytes()
        if staged == 0 or staged + nbytes <= self.max_bytes or self.splitting() >= self.slots:
            return  # (an empty folder takes the next chunk, however big)
        t0 = last_change = time.monotonic()
        while staged + nbytes > self.max_bytes and staged > 0:
            if (self.root / "_abort").exists():
                raise RuntimeError("split stopped: a parse task of this run failed")
            if time.monotonic() - last_change > self.stall_s:
                self._gave_up = True  # stage on unthrottled: the run must not hang on a wrong slot count
                break
            if self.splitting() >= self.slots:  # another split took the last free slot meanwhile
                break
            time.sleep(self.poll_s)
            now = self.staged_bytes()
            if now != staged:
                last_change = time.monotonic()
            staged = now
        self.waited_s += time.monotonic() - t0


def split_file(path: str | Path, file_idx: int, chunk_bytes: int, out_dir: str | Path | None,
               room: StagingRoom | None = None) -> list[Chunk]:
    """Chunks of ``path``; ``.zst`` chunks are written under ``out_dir``, each once ``room`` has space."""
    if is_zst(path):
        if out_dir is None:
            raise ValueError("out_dir is needed to stage chunks of a .zst file")
        return _split_zst(Path(path), file_idx, chunk_bytes, Path(out_dir), room.wait_for if room else None)
    return _split_plain(Path(path), file_idx, chunk_bytes)


def _lines_in(parts: list, final: bool) -> int:
    """Lines in the bytes ``parts`` hold, one after the other; a final part not ending in a newline
    ends one more line when ``final``."""
    # numpy compares ~3x faster than bytes.count(b"\n"), which loops byte by byte
    n = sum(int(np.count_nonzero(np.frombuffer(p, np.uint8) == 10)) for p in parts)
    last = next((p for p in reversed(parts) if len(p)), None)
    return n + (1 if final and last is not None and bytes(last[-1:]) != b"\n" else 0)


class _Pending:
    """Decompressed bytes not yet in a chunk, kept as the decompressor's pieces: a chunk is written
    from the pieces themselves. (A bytearray that is appended to and cut from the front moved the whole
    buffer on every append: 4.7 s of a 7 s split of a 1.1 GB month.)"""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def append(self, piece: bytes) -> None:
        self.pieces.append(piece)
        self.size += len(piece)

    def cut(self, limit: int) -> int:
        """Where a chunk of at most ``limit`` bytes ends: after the last newline before ``limit``,
        else (one line longer than a chunk) after the first newline past it; 0 if there is none yet."""
        if not self.pieces:
            return 0
        starts, pos = [], 0
        for p in self.pieces:
            starts.append(pos)
            pos += len(p)
        j = next((k for k in range(len(self.pieces) - 1, -1, -1) if starts[k] < limit), 0)
        for k in range(j, -1, -1):
            i = self.pieces[k].rfind(b"\n", 0, limit - starts[k])
            if i >= 0:
                return starts[k] + i + 1
        for k in range(j, len(self.pieces)):
            i = self.pieces[k].find(b"\n", max(0, limit - starts[k]))
            if i >= 0:
                return starts[k] + i + 1
        return 0

    def pop(self, n: int) -> list:
        """The first ``n`` bytes, as pieces (memoryviews: no copy)."""
        out, taken = [], 0
        while taken < n:
            p = self.pieces[0]
            if taken + len(p) <= n:
                out.append(memoryview(p))
                taken += len(p)
                self.pieces.pop(0)
            else:
                k = n - taken
                out.append(memoryview(p)[:k])
                self.pieces[0] = p[k:]
                taken = n
        self.size -= n
        return out


def _split_zst(path: Path, file_idx: int, chunk_bytes: int, out_dir: Path,
               wait_for: Callable[[int], None] | None) -> list[Chunk]:
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks: list[Chunk] = []
    next_line = 1

    def emit(parts: list, final: bool, tail: InputError | None = None) -> None:
        nonlocal next_line
        length = sum(len(p) for p in parts)
        if wait_for is not None:
            wait_for(length)
        n = 1 if tail else _lines_in(parts, final)
        c = Chunk(file_idx, len(chunks), next_line, n, "", 0, length, tail.reason if tail else "",
                  tail.detail if tail else "")
        # published by an atomic rename; the name carries what a parse task needs (see published_chunks)
        p = out_dir / (f"f{file_idx:05d}-{c.seq:06d}-{c.first_line_no}-{n}" + (".tail" if tail else ".ndjson"))
        tmp = p.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.writelines(parts)
        tmp.replace(p)
        c.path = str(p)
        chunks.append(c)
        next_line += n

    buf = _Pending()
    try:
        for piece in decompressed_pieces(path):
            buf.append(piece)
            while buf.size >= chunk_bytes:
                cut = buf.cut(chunk_bytes)
                if not cut:  # a line longer than a chunk: wait for its end
                    break
                emit(buf.pop(cut), final=False)
    except InputError as err:
        while cut := buf.cut(chunk_bytes):
            emit(buf.pop(cut), final=False)
        emit(buf.pop(buf.size), final=True, tail=err)  # the partial last line, maybe empty
        return chunks
    if buf.size:
        emit(buf.pop(buf.size), final=True)
    return chunks


def _split_plain(path: Path, file_idx: int, chunk_bytes: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    size = path.stat().st_size
    offset, next_line = 0, 1
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            data = fh.read(chunk_bytes)
            end = offset + len(data)
            if end < size:
                cut = data.rfind(b"\n") + 1
                while not cut:  # one line longer than a chunk: read on to its end
                    more = fh.read(chunk_bytes)
                    if not more:
                        break
                    data += more
                    cut = data.rfind(b"\n") + 1
                if cut:
                    data = data[:cut]
            final = offset + len(data) >= size
            n = _lines_in([data], final)
            chunks.append(Chunk(file_idx, len(chunks), next_line, n, str(path), offset, len(data)))
            next_line += n
            offset += len(data)
    return chunks


def _staged_chunks(chunk_dir: str | Path, suffixes: tuple[str, ...]) -> Iterator[tuple[Path, int]]:
    """The chunk files (of these suffixes) staged under ``chunk_dir`` now, with their sizes."""
    for p in Path(chunk_dir).glob("f*/f*.*"):
        if p.suffix in suffixes:
            try:
                yield p, p.stat().st_size
            except FileNotFoundError:  # parsed and deleted since the listing: its parse had started
                continue


def published_chunks(chunk_dir: str | Path) -> list[Chunk]:
    """Complete (non-tail) chunks a running split has published so far, so their parse can start."""
    out = []
    for p, size in _staged_chunks(chunk_dir, (".ndjson",)):
        f, seq, first, n = p.stem[1:].split("-")
        out.append(Chunk(int(f), int(seq), int(first), int(n), str(p), 0, size))
    return out


def read_chunk(chunk: Chunk) -> bytes:
    with open(chunk.path, "rb") as fh:
        fh.seek(chunk.offset)
        return fh.read(chunk.length)
