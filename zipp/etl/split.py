"""Cut one input file into line-aligned chunks so that one big month is parsed by many cores.

``.zst`` files are decompressed once with python-zstandard (2 GiB window, all frames, a cut frame is
detected) and written as plain chunk files to the staging folder; plain ``.ndjson``/``.jsonl`` files
are only scanned for line ends and their chunks are byte ranges of the file itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

READ_SIZE = 1 << 20
WRITE_SIZE = 1 << 22


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


def split_file(path: str | Path, file_idx: int, chunk_bytes: int, out_dir: str | Path | None) -> list[Chunk]:
    """Chunks of ``path``; ``.zst`` chunks are written under ``out_dir``."""
    if is_zst(path):
        if out_dir is None:
            raise ValueError("out_dir is needed to stage chunks of a .zst file")
        return _split_zst(Path(path), file_idx, chunk_bytes, Path(out_dir))
    return _split_plain(Path(path), file_idx, chunk_bytes)


def _lines_in(data: bytes | bytearray, final: bool) -> int:
    n = data.count(b"\n")
    return n + (1 if final and data and not data.endswith(b"\n") else 0)


def _split_zst(path: Path, file_idx: int, chunk_bytes: int, out_dir: Path) -> list[Chunk]:
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks: list[Chunk] = []
    next_line = 1

    def emit(data: bytes | bytearray, final: bool, tail: InputError | None = None) -> None:
        nonlocal next_line
        n = 1 if tail else _lines_in(data, final)
        c = Chunk(file_idx, len(chunks), next_line, n, "", 0, len(data), tail.reason if tail else "",
                  tail.detail if tail else "")
        # published by an atomic rename; the name carries what a parse task needs (see published_chunks)
        p = out_dir / (f"f{file_idx:05d}-{c.seq:06d}-{c.first_line_no}-{n}" + (".tail" if tail else ".ndjson"))
        tmp = p.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(p)
        c.path = str(p)
        chunks.append(c)
        next_line += n

    buf = bytearray()
    try:
        for piece in decompressed_pieces(path):
            buf += piece
            while len(buf) >= chunk_bytes:
                cut = buf.rfind(b"\n", 0, chunk_bytes) + 1 or buf.find(b"\n", chunk_bytes) + 1
                if not cut:  # a line longer than a chunk: wait for its end
                    break
                emit(buf[:cut], final=False)
                del buf[:cut]
    except InputError as err:
        while buf.rfind(b"\n") >= 0:
            cut = buf.rfind(b"\n", 0, chunk_bytes) + 1 or buf.find(b"\n", chunk_bytes) + 1
            emit(buf[:cut], final=False)
            del buf[:cut]
        emit(buf, final=True, tail=err)  # the partial last line, maybe empty
        return chunks
    if buf:
        emit(buf, final=True)
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
            n = _lines_in(data, final)
            chunks.append(Chunk(file_idx, len(chunks), next_line, n, str(path), offset, len(data)))
            next_line += n
            offset += len(data)
    return chunks


def published_chunks(chunk_dir: str | Path) -> list[Chunk]:
    """Complete (non-tail) chunks a running split has published so far, so their parse can start."""
    out = []
    for p in Path(chunk_dir).glob("f*/f*.ndjson"):
        f, seq, first, n = p.stem[1:].split("-")
        out.append(Chunk(int(f), int(seq), int(first), int(n), str(p), 0, p.stat().st_size))
    return out


def read_chunk(chunk: Chunk) -> bytes:
    with open(chunk.path, "rb") as fh:
        fh.seek(chunk.offset)
        return fh.read(chunk.length)
