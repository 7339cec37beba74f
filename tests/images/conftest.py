"""Fixtures for the image stage: PNG/JPEG bytes made in code, a loopback HTTP server with one route
per failure mode, and a gold/user_images table writer."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pytest

from zipp.images.fetch import LoopbackHTTPServer

SLOW_S = 3.0  # the slow route's delay: well over the tests' images.timeout_s


def image_bytes(color=(200, 30, 30), size=(48, 40), fmt="PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


RED = image_bytes((200, 30, 30))
BLUE_JPG = image_bytes((20, 40, 220), fmt="JPEG")
GREEN = image_bytes((20, 180, 40), size=(30, 50))


def _send(h: BaseHTTPRequestHandler, code: int, body: bytes = b"", ctype: str | None = "image/png",
          headers: dict | None = None, length: bool = True) -> None:
    h.send_response(code)
    if ctype:
        h.send_header("Content-Type", ctype)
    if length:
        h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    try:
        h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout / size cap): expected for some routes


def _flaky(code: int, retry_after: str | None = None) -> Callable:
    """Fails with ``code`` on the first hit, then serves an image."""

    def route(h, hit: int) -> None:
        if hit == 1:
            _send(h, code, b"try again", ctype="text/plain", headers={"Retry-After": retry_after} if retry_after else None)
        else:
            _send(h, 200, GREEN)

    return route


def _slow(h, hit: int) -> None:
    time.sleep(SLOW_S)
    _send(h, 200, RED)


def _streamed_oversize(h, hit: int) -> None:
    # HTTP/1.0 body delimited by connection close: no Content-Length to trust
    h.send_response(200)
    h.send_header("Content-Type", "image/png")
    h.end_headers()
    try:
        for _ in range(64):
            h.wfile.write(b"\x89PNG" + b"\0" * 16380)
    except (BrokenPipeError, ConnectionResetError):
        pass


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        srv: ImageServer = self.server.owner  # type: ignore[attr-defined]
        with srv.lock:
            srv.hits[path] += 1
            hit = srv.hits[path]
        route = srv.routes.get(path)
        if route is None:
            _send(self, 404, b"not found", ctype="text/plain")
        elif isinstance(route, bytes):
            _send(self, 200, route, ctype="image/jpeg" if path.endswith(".jpg") else "image/png")
        else:
            route(self, hit)

    def log_message(self, format, *args) -> None:
        pass


class ImageServer:
    """Loopback server; ``routes`` maps a path to bytes (served as an image) or ``route(handler, hit)``;
    ``hits`` counts requests per path. Routes can be changed while it runs."""

    def __init__(self):
        self.routes: dict[str, bytes | Callable] = {
            "/img/red.png": RED,
            "/img/red-copy.png": RED,  # identical bytes under another URL
            "/img/blue.jpg": BLUE_JPG,
            "/img/green.png": GREEN,
            "/flaky.png": _flaky(503),
            "/throttled.png": _flaky(429, retry_after="0"),
            "/always500.png": lambda h, hit: _send(h, 500, b"boom", ctype="text/plain"),
            "/slow.png": _slow,
            "/page.html": lambda h, hit: _send(h, 200, b"<html><body>hi</body></html>", ctype="text/html; charset=utf-8"),
            "/garbage.png": lambda h, hit: _send(h, 200, b"\x00\x01 definitely not a png" * 10),
            "/truncated.png": lambda h, hit: _send(h, 200, RED[: len(RED) // 2]),
            "/big.png": lambda h, hit: _send(h, 200, b"\0" * 300_000),
            "/big-streamed.png": _streamed_oversize,
        }
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve_folder(self, prefix: str, folder: Path, pattern: str = "*") -> list[str]:
        """Add every file in ``folder`` as ``<prefix>/<name>``; returns their paths."""
        paths = []
        for f in sorted(folder.glob(pattern)):
            self.routes[f"{prefix}/{f.name}"] = f.read_bytes()
            paths.append(f"{prefix}/{f.name}")
        return paths

    def start(self) -> ImageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def image_server():
    srv = ImageServer().start()
    yield srv
    srv.stop()


# Test policy: real URLs on the test server (no mirror: conf/env/local.yaml points images.mirror_dir
# at the generated dump), short timeouts and backoffs, a size cap the "big" routes exceed, no rate limit.
FAST_FETCH = [
    "images.mirror_dir=null", "images.timeout_s=1.0", "images.retries=2", "images.backoff_s=0.01",
    "images.max_bytes=200000", "images.per_host_rps=null", "images.workers=8",
]

SHARED_PHOTOS = ["*.png", "*.jpg"]


def write_user_images(lake: Path, rows: list[tuple[int, str]], mode: str = "overwrite") -> pa.Table:
    """Write gold/user_images with one row per (user_id, url) (other columns filled plausibly)."""
    from zipp.lake import write_arrow
    from zipp.tables import GOLD_USER_IMAGES, GOLD_USER_IMAGES_SCHEMA

    n = len(rows)
    table = pa.table({
        "user_id": [u for u, _ in rows],
        "user_key": [f"key{u:04d}" for u, _ in rows],
        "subreddit_id": [u % 3 for u, _ in rows],
        "subreddit": [f"sub{u % 3}" for u, _ in rows],
        "post_id": [f"t3_{i:05d}" for i in range(n)],
        "url": [url for _, url in rows],
        "created": [datetime(2016, 1, 1, tzinfo=UTC)] * n,
        "nsfw": [False] * n,
    })
    write_arrow(lake, GOLD_USER_IMAGES, table, mode=mode, schema=GOLD_USER_IMAGES_SCHEMA)
    return table


@pytest.fixture
def fast_fetch() -> list[str]:
    """Config overrides for a quick fetch policy (see FAST_FETCH)."""
    return list(FAST_FETCH)


@pytest.fixture
def images() -> dict[str, bytes]:
    """The bytes the server's /img/ routes serve."""
    return {"red": RED, "blue_jpg": BLUE_JPG, "green": GREEN}


@pytest.fixture
def user_images() -> Callable[..., pa.Table]:
    """write_user_images(lake, [(user_id, url), ...], mode='overwrite')."""
    return write_user_images
