"""Small PNGs whose palette, texture and style carry the poster's community and aesthetic.

Each (community, aesthetic) pair has a deterministic base pattern (computed once and cached); an
image is that pattern plus cheap per-image jitter (shift, flip, brightness, channel gain, grain),
so images of one community/aesthetic cluster in any image-embedding space while no two are equal.
"""

from __future__ import annotations

import colorsys
import os
import queue
import struct
import threading
import zlib
from pathlib import Path

import numpy as np

from zipp.generate import vocab as V

LOCATION_KEY = 1000  # pattern key for location subreddits (city skylines)


def _box_blur(x: np.ndarray, r: int = 2) -> np.ndarray:
    out = np.zeros_like(x)
    n = 0
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out += np.roll(np.roll(x, dy, 0), dx, 1)
            n += 1
    return out / n


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def base_texture(key: int, size: int) -> np.ndarray:
    """The community's look before any aesthetic: float32 (size, size, 3) in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.Generator(np.random.PCG64(key + 7919))
    if key == LOCATION_KEY:  # skyline: gradient sky, dark building blocks
        sky = np.stack([0.35 + 0.4 * yy, 0.5 + 0.3 * yy, 0.85 - 0.2 * yy], -1)
        img = sky.copy()
        x = 0
        while x < size:
            w = int(rng.integers(max(2, size // 16), max(3, size // 6)))
            h = float(rng.uniform(0.25, 0.75))
            mask = (xx * size >= x) & (xx * size < x + w) & (yy > 1 - h)
            img[mask] = _hsv(0.6, 0.3, float(rng.uniform(0.12, 0.3)))
            x += w + int(rng.integers(0, 3))
        return img.astype(np.float32)
    h = (key * 0.6180339887) % 1.0
    ca, cb, cc = _hsv(h, 0.75, 0.85), _hsv(h + 0.09, 0.55, 0.45), _hsv(h + 0.5, 0.8, 0.95)
    f = 2 + (key // 6) % 4
    t = key % 6
    if t == 0:  # horizon bands
        tex = np.clip((yy - 0.55) * 6, 0, 1) + 0.15 * np.sin(xx * np.pi * f)
    elif t == 1:  # concentric rings
        tex = 0.5 + 0.5 * np.sin(np.hypot(xx - 0.5, yy - 0.5) * np.pi * 2 * f)
    elif t == 2:  # checker
        tex = ((np.floor(xx * f * 2) + np.floor(yy * f * 2)) % 2).astype(np.float32)
    elif t == 3:  # diagonal stripes
        tex = 0.5 + 0.5 * np.sin((xx + yy) * np.pi * 2 * f)
    elif t == 4:  # soft blobs
        tex = np.zeros_like(xx)
        for _ in range(3 + f):
            cx, cy, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
            tex += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        tex = np.clip(tex, 0, 1)
    else:  # waves
        tex = 0.5 + 0.5 * np.sin(xx * np.pi * 2 * f + 2 * np.sin(yy * np.pi * 3))
    tex = tex[..., None].astype(np.float32)
    img = ca * (1 - tex) + cb * tex
    accent = (np.abs(xx - 0.5 - 0.2 * np.sin(key)) < 0.04)[..., None]
    img = np.where(accent, 0.6 * img + 0.4 * cc, img)
    return np.clip(img, 0, 1).astype(np.float32)


def apply_aesthetic(img: np.ndarray, aesthetic: str) -> np.ndarray:
    x = img.copy()
    gray = x.mean(-1, keepdims=True)
    size = x.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    vign = (1.0 - 0.9 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2))[..., None]
    if aesthetic == "minimalist":
        x = np.round((0.5 * x + 0.5 * gray.mean()) * 3) / 3 * 0.7 + 0.3
    elif aesthetic == "vibrant":
        x = gray + (x - gray) * 1.8
    elif aesthetic == "vintage film":
        sep = np.concatenate([gray * 1.07, gray * 0.9, gray * 0.7], -1)
        x = 0.55 * x + 0.45 * sep
        x = 0.1 + 0.8 * x
    elif aesthetic == "dark moody":
        x = x * 0.42 * vign + np.array([0.0, 0.02, 0.06], dtype=np.float32)
    elif aesthetic == "pastel":
        x = 0.45 * (gray + (x - gray) * 0.7) + 0.55
    elif aesthetic == "neon cyberpunk":
        edge = np.abs(x - np.roll(x, 1, 1)).sum(-1, keepdims=True)
        x = 0.18 * x + np.clip(edge * 4, 0, 1) * np.array([1.0, 0.1, 0.9], dtype=np.float32) + np.clip(1 - edge * 4, 0, 1) * np.array([0.0, 0.15, 0.3], dtype=np.float32) * yy[..., None]
    elif aesthetic == "golden hour":
        x = x * np.array([1.15, 0.88, 0.55], dtype=np.float32) * vign + np.array([0.12, 0.06, 0.0], dtype=np.float32)
    elif aesthetic == "black and white":
        x = np.repeat(gray, 3, -1)
    elif aesthetic == "watercolor":
        x = 0.6 * _box_blur(x, 2) + 0.4
    elif aesthetic == "cozy rustic":
        x = 0.55 * x + 0.45 * gray * np.array([0.95, 0.68, 0.42], dtype=np.float32)
    elif aesthetic == "high contrast":
        x = (x - 0.5) * 2.2 + 0.5
    elif aesthetic == "dreamy soft focus":
        x = 0.65 * _box_blur(x, 3) + 0.35 * np.array([1.0, 0.85, 0.92], dtype=np.float32)
    return np.clip(x, 0, 1).astype(np.float32)


def encode_png(u8: np.ndarray, level: int = 0) -> bytes:
    """Minimal deterministic RGB8 PNG encoder (filter 0 rows + zlib). Noisy 64x64 images barely
    compress, so level 0 (stored) is the fast default."""
    h, w, _ = u8.shape
    raw = np.empty((h, 1 + 3 * w), np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = u8.reshape(h, 3 * w)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + chunk(b"IEND", b""))


class ImageMaker:
    """Renders PNG bytes for (pattern key, aesthetic index) with per-image jitter."""

    N_NOISE = 16

    def __init__(self, size: int = 64):
        self.size = size
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        g = np.random.Generator(np.random.PCG64(4242))
        self._noise = g.normal(0.0, 1.0, (self.N_NOISE, size, size, 3)).astype(np.float32)
        self._noise_bw = np.repeat(self._noise[..., :1], 3, -1)

    def base(self, key: int, aesthetic: int) -> np.ndarray:
        k = (key, aesthetic)
        b = self._cache.get(k)
        if b is None:
            b = apply_aesthetic(base_texture(key, self.size), V.AESTHETICS[aesthetic])
            self._cache[k] = b
        return b

    def render(self, key: int, aesthetic: int, rng: np.random.Generator) -> bytes:
        b = self.base(key, aesthetic)
        s = self.size
        r = rng.random(8).tolist()
        img = np.roll(b, (int(r[0] * s) // 4, int(r[1] * s)), (0, 1))
        if r[2] < 0.5:
            img = img[:, ::-1]
        name = V.AESTHETICS[aesthetic]
        bw = name == "black and white"
        grain = 0.06 if (bw or name == "vintage film") else 0.025
        noise = (self._noise_bw if bw else self._noise)[int(r[3] * self.N_NOISE)]
        gain = np.array([0.93 + 0.14 * r[4], 0.93 + 0.14 * r[5], 0.93 + 0.14 * r[6]], dtype=np.float32)
        if bw:
            gain[:] = gain[0]
        img = img * gain + (noise * grain + (r[7] - 0.5) * 0.12)
        np.clip(img, 0.0, 1.0, out=img)
        return encode_png((img * 255.0 + 0.5).astype(np.uint8))


def url_to_path(images_dir: Path, url: str) -> Path:
    """The mirror rule: ``https://HOST/PATH?QUERY`` -> ``images_dir/HOST/PATH`` (query dropped,
    ``&amp;`` irrelevant since only the path is kept)."""
    rest = url.split("://", 1)[1]
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return images_dir / rest


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except FileExistsError:
        pass
    except OSError:
        dst.write_bytes(src.read_bytes())


class ImageSink:
    """Writes image files on one background thread (file creation is slow on busy disks; the
    GIL is released during the I/O), so rendering and line generation go on meanwhile."""

    def __init__(self, maxsize: int = 512):
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._err: BaseException | None = None
        self._dirs: set[Path] = set()
        self._t = threading.Thread(target=self._run, name="zipp-image-sink", daemon=True)
        self._t.start()

    def put(self, path: Path, data: bytes, links: tuple[Path, ...] = ()) -> None:
        if self._err is not None:
            raise RuntimeError(f"image writer failed: {self._err}") from self._err
        self._q.put((path, data, links))

    def _mkdir(self, d: Path) -> None:
        if d not in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
            self._dirs.add(d)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._err is not None:
                continue
            path, data, links = item
            try:
                self._mkdir(path.parent)
                path.write_bytes(data)
                for dst in links:
                    self._mkdir(dst.parent)
                    link_or_copy(path, dst)
            except BaseException as e:  # noqa: BLE001 - reported by the next put() or close()
                self._err = e

    def close(self) -> None:
        self._q.put(None)
        self._t.join()
        if self._err is not None:
            raise RuntimeError(f"image writer failed: {self._err}") from self._err
