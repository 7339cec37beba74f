"""Polite, bounded image downloads into a content-addressed cache.

Every URL ends with one status:

- ``ok``: an ``image/*`` (or untyped) body within ``max_bytes`` that PIL decodes; its bytes are
  stored once under ``<cache>/images/<sha256[:2]>/<sha256>`` (identical bytes from many URLs are one file);
- ``http_error``: a 4xx, or a 5xx / 429 / connection failure still failing after the retries;
- ``timeout``: no complete response within ``timeout_s`` on every attempt;
- ``not_image``: a non-image content type, or bytes PIL cannot decode;
- ``too_large``: ``Content-Length`` or the body over ``max_bytes`` (or a decompression bomb).

Retries (``retries`` extra attempts) apply only to transient failures (5xx, 429, timeouts,
connection errors), with exponential backoff ``backoff_s * 2**k`` and +-50% jitter (``Retry-After``
honoured up to 30 s). Each attempt first takes a token from its host's bucket (``per_host_rps``),
keyed by the URL's *original* host, so a mirror or proxy in front of it is rate-limited the same way.
Plain stdlib ``urllib`` in a thread pool: no extra dependency, and each worker blocks only on I/O.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import io
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from zipp.config import ImagesConfig

log = logging.getLogger(__name__)

OK, HTTP_ERROR, TIMEOUT, NOT_IMAGE, TOO_LARGE = "ok", "http_error", "timeout", "not_image", "too_large"
STATUSES = (OK, HTTP_ERROR, TIMEOUT, NOT_IMAGE, TOO_LARGE)
_CHUNK = 1 << 16
_MAX_RETRY_AFTER_S = 30.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class FetchResult:
    url: str  # the original URL (before any mirror rewrite)
    status: str
    sha256: str | None = None  # set only for ok
    http_status: int | None = None
    attempts: int = 0
    nbytes: int = 0
    error: str | None = None


# ----------------------------------------------------------------------------- rate limiting


class TokenBucket:
    """Thread-safe token bucket: ``rate`` tokens/s, at most ``burst`` saved up. ``acquire()``
    reserves a token (the balance may go negative) and sleeps outside the lock until it is due, so
    concurrent callers are spaced 1/rate apart. ``clock``/``sleep`` are injectable for tests."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class HostLimiter:
    """One :class:`TokenBucket` per host, made on first use; ``rate=None`` means unlimited."""

    def __init__(self, rate: float | None, **bucket_kwargs):
        self.rate = rate
        self._kw = bucket_kwargs
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted(self._buckets)

    def acquire(self, host: str) -> float:
        if self.rate is None:
            return 0.0
        with self._lock:
            bucket = self._buckets.get(host)
            if bucket is None:
                bucket = self._buckets[host] = TokenBucket(self.rate, **self._kw)
        return bucket.acquire()


# ----------------------------------------------------------------------------- cache


class ImageCache:
    """Content-addressed byte store: ``<root>/images/<sha[:2]>/<sha>``, written atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve() / "images"  # absolute: Ray actors read these paths

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str | None) -> bool:
        return bool(sha256) and self.path(sha256).is_file()

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path(sha)
        if not dest.is_file():  # same bytes from another URL: already stored
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        return sha


# ----------------------------------------------------------------------------- mirrors


def mirror_url(url: str, base: str) -> str:
    """``https://HOST/PATH?QUERY`` -> ``<base>/HOST/PATH`` (query and fragment dropped)."""
    parts = urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path or '/'}"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        log.debug("mirror: " + format, *args)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose listen backlog fits the download pool: the default of 5 drops
    SYNs when 16 workers connect at once, and the kernel's 1 s SYN retry reads as a timeout."""

    request_queue_size = 128
    daemon_threads = True


class MirrorServer:
    """Serve a folder on an ephemeral loopback port (``ThreadingHTTPServer``) while in use."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"images.mirror_dir {self.folder} is not a folder")
        self._server = LoopbackHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(self.folder)))
        self._thread = threading.Thread(target=self._server.serve_forever, name="zipp-image-mirror", daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        log.info("images: serving mirror %s at %s", self.folder, self.base)
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def url_rewriter(cfg: ImagesConfig) -> Iterator[Callable[[str], str] | None]:
    """The URL rewrite the config asks for (None: fetch the real URLs), with the loopback mirror
    server running for the duration when ``mirror_dir`` is set."""
    if cfg.mirror_dir:
        with MirrorServer(cfg.mirror_dir) as server:
            yield partial(mirror_url, base=server.base)
    elif cfg.mirror_base:
        yield partial(mirror_url, base=cfg.mirror_base)
    else:
        yield None


# ----------------------------------------------------------------------------- fetching


class _Transient(Exception):
    """A failure worth retrying; carries the status to report if it is the last attempt."""

    def __init__(self, status: str, http_status: int | None, error: str, retry_after: float | None = None):
        super().__init__(error)
        self.status, self.http_status, self.error, self.retry_after = status, http_status, error, retry_after


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, socket.timeout)) or (
        isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, (TimeoutError, socket.timeout))
    )


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return min(float(value), _MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def check_image(data: bytes) -> str | None:
    """None if PIL fully decodes ``data``, else the status to give it (not_image / too_large)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                return NOT_IMAGE
    except Image.DecompressionBombError:
        return TOO_LARGE
    except Exception:  # noqa: BLE001 - PIL raises many types for bad bytes (OSError, SyntaxError, ...)
        return NOT_IMAGE
    return None


class Fetcher:
    """Download URLs with the policy in :class:`ImagesConfig` into an :class:`ImageCache`."""

    def __init__(self, cfg: ImagesConfig, cache: ImageCache, rewrite: Callable[[str], str] | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        self.cfg = cfg
        self.cache = cache
        self.rewrite = rewrite
        self.limiter = HostLimiter(cfg.per_host_rps)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._opener = urllib.request.build_opener()
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy

    # one URL ---------------------------------------------------------------
    def fetch(self, url: str) -> FetchResult:
        # Reddit JSON HTML-escapes URLs (preview/gallery queries carry `&amp;`); request the real one
        real = html.unescape(url) if "&amp;" in url else url
        target = self.rewrite(real) if self.rewrite else real
        host = urlsplit(url).hostname or ""
        attempts_allowed = 1 + self.cfg.retries
        last: _Transient | None = None
        for attempt in range(attempts_allowed):
            if attempt:
                delay = self.cfg.backoff_s * (2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5)
                if last is not None and last.retry_after is not None:
                    delay = max(delay, last.retry_after)
                self._sleep(delay)
            self.limiter.acquire(host)
            try:
                return self._attempt(url, target, attempt + 1)
            except _Transient as t:
                last = t
                log.debug("images: %s attempt %d: %s", url, attempt + 1, t.error)
        assert last is not None
        return FetchResult(url, last.status, http_status=last.http_status, attempts=attempts_allowed, error=last.error)

    def _attempt(self, url: str, target: str, attempt: int) -> FetchResult:
        cfg = self.cfg
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https"):
            return FetchResult(url, HTTP_ERROR, attempts=attempt, error=f"unsupported scheme {parts.scheme!r}")
        opener = self._direct if parts.hostname in _LOOPBACK else self._opener
        req = urllib.request.Request(target, headers={"User-Agent": cfg.user_agent, "Accept": "image/*"})
        deadline = time.monotonic() + cfg.timeout_s
        try:
            with opener.open(req, timeout=cfg.timeout_s) as resp:
                code = resp.status
                ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                length = resp.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > cfg.max_bytes:
                    return FetchResult(url, TOO_LARGE, http_status=code, attempts=attempt, error=f"Content-Length {length}")
                if ctype and not ctype.startswith("image/"):
                    return FetchResult(url, NOT_IMAGE, http_status=code, attempts=attempt, error=f"Content-Type {ctype}")
                buf = bytearray()
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"body not complete after {cfg.timeout_s}s")
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    buf += chunk
                    if len(buf) > cfg.max_bytes:
                        return FetchResult(url, TOO_LARGE, http_status=code, attempts=attempt, error=f"body over {cfg.max_bytes} bytes")
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code == 429:
                raise _Transient(HTTP_ERROR, e.code, f"HTTP {e.code}", _retry_after(e.headers)) from None
            return FetchResult(url, HTTP_ERROR, http_status=e.code, attempts=attempt, error=f"HTTP {e.code}")
        except Exception as e:  # noqa: BLE001 - classify every network failure into a status
            if _is_timeout(e):
                raise _Transient(TIMEOUT, None, f"timeout: {e}") from None
            if isinstance(e, (urllib.error.URLError, ConnectionError, http.client.HTTPException, OSError)):
                raise _Transient(HTTP_ERROR, None, f"{type(e).__name__}: {e}") from None
            # anything else (a malformed URL, ...) is permanent for this URL; never fail the whole run
            return FetchResult(url, HTTP_ERROR, attempts=attempt, error=f"{type(e).__name__}: {e}")
        data = bytes(buf)
        bad = check_image(data)
        if bad is not None:
            return FetchResult(url, bad, http_status=code, attempts=attempt, nbytes=len(data), error="PIL could not decode the body")
        sha = self.cache.put(data)
        return FetchResult(url, OK, sha256=sha, http_status=code, attempts=attempt, nbytes=len(data))

    # many URLs -------------------------------------------------------------
    def fetch_all(self, urls: Iterable[str], progress: Callable[[int], None] | None = None) -> dict[str, FetchResult]:
        """Fetch distinct URLs concurrently (``workers`` threads); returns url -> result."""
        todo = list(dict.fromkeys(urls))
        out: dict[str, FetchResult] = {}
        if not todo:
            return out
        with ThreadPoolExecutor(max_workers=min(self.cfg.workers, len(todo)), thread_name_prefix="zipp-fetch") as pool:
            futures = {pool.submit(self.fetch, u): u for u in todo}
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
                if progress:
                    progress(1)
        return out
