"""Zstandard NDJSON files as the real dumps have them: one frame, a declared 2 GiB window
(``zstd --long=31``), newline-terminated JSON lines.

Memory: python-zstandard's streaming compressor keeps an input window buffer that grows with the
data written, up to the declared window (2 GiB), plus the long-distance-matching table (zstd's
default for window_log 31 is 2**24 entries = 128 MiB; we set ldm_hash_log=20: 8 MiB, twice the
speed, ~6% larger files). Measured: opening a writer adds 9 MiB RSS; 17.6 MB of NDJSON adds 17 MiB
more (~1 MiB per MB written). So a writer's RSS is about min(uncompressed bytes written, 2 GiB) +
10 MiB; the generator keeps two open at once (RC and RS of a month), so a real-size month (GBs)
can reach ~2 x 2 GiB. Nothing else in the generator grows with a month.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import zstandard

DUMP_WINDOW_LOG = 31
MAX_WINDOW_SIZE = 2**31


LDM_HASH_LOG = 20  # zstd's default at window_log 31 is 24: a 128 MiB table and half the speed, for ~6% smaller files


def compressor(level: int = 3, window_log: int = DUMP_WINDOW_LOG) -> zstandard.ZstdCompressor:
    params = zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log, enable_ldm=True, ldm_hash_log=LDM_HASH_LOG,
                                                            threads=0)
    return zstandard.ZstdCompressor(compression_params=params)


class ZstLineWriter:
    """Buffered writer of raw lines (bytes without the newline) into ``path`` (written to
    ``path.part`` and renamed on close)."""

    def __init__(self, path: Path, level: int = 3, window_log: int = DUMP_WINDOW_LOG, flush_lines: int = 4096):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".part")
        self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed by close()/abort()
        self._w = compressor(level, window_log).stream_writer(self._fh, closefd=False)
        self._buf: list[bytes] = []
        self._flush_lines = flush_lines
        self.lines = 0
        self.bytes = 0

    def write(self, line: bytes) -> None:
        self._buf.append(line)
        if len(self._buf) >= self._flush_lines:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            data = b"\n".join(self._buf) + b"\n"
            self.lines += len(self._buf)
            self.bytes += len(data)
            self._w.write(data)
            self._buf = []

    def close(self) -> None:
        self._flush()
        self._w.close()  # ends the (single) frame; an extra flush(FLUSH_FRAME) would append an empty 2nd frame
        self._fh.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._w.close()
            self._fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def iter_raw_lines(path: Path, max_window_size: int = MAX_WINDOW_SIZE, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Every line of a (2 GiB window) .zst NDJSON file as raw bytes, newline stripped; bytes after
    a last newline (if any) come as a final line."""
    dctx = zstandard.ZstdDecompressor(max_window_size=max_window_size)
    rest = b""
    with open(path, "rb") as fh:
        for block in dctx.read_to_iter(fh, read_size=chunk, write_size=chunk):
            if rest:
                block = rest + block
            parts = block.split(b"\n")
            rest = parts.pop()
            yield from parts
    if rest:
        yield rest
