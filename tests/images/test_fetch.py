import hashlib
import random
import urllib.error
import urllib.request

import pytest

from zipp.images.fetch import (
    HTTP_ERROR,
    NOT_IMAGE,
    OK,
    TIMEOUT,
    TOO_LARGE,
    Fetcher,
    HostLimiter,
    ImageCache,
    TokenBucket,
    mirror_url,
    url_rewriter,
)


@pytest.fixture
def fetcher(make_config, tmp_path, fast_fetch):
    cfg = make_config(*fast_fetch).images
    return Fetcher(cfg, ImageCache(tmp_path / "cache"))


def test_every_failure_mode_gets_its_status(fetcher, image_server):
    expected = {
        "/img/red.png": OK, "/img/blue.jpg": OK,
        "/flaky.png": OK, "/throttled.png": OK,  # 503 / 429 once, then 200: the retry gets it
        "/always500.png": HTTP_ERROR, "/missing.png": HTTP_ERROR,
        "/slow.png": TIMEOUT,
        "/page.html": NOT_IMAGE, "/garbage.png": NOT_IMAGE, "/truncated.png": NOT_IMAGE,
        "/big.png": TOO_LARGE, "/big-streamed.png": TOO_LARGE,
    }
    results = fetcher.fetch_all([image_server.url(p) for p in expected])
    got = {p: results[image_server.url(p)].status for p in expected}
    assert got == expected

    r = {p: results[image_server.url(p)] for p in expected}
    assert r["/flaky.png"].attempts == 2 and image_server.hits["/flaky.png"] == 2
    assert r["/throttled.png"].attempts == 2
    assert r["/always500.png"].attempts == 3 and r["/always500.png"].http_status == 500  # 1 + retries=2
    assert r["/missing.png"].attempts == 1 and r["/missing.png"].http_status == 404  # 4xx is not retried
    assert image_server.hits["/slow.png"] == 3  # timeouts are retried
    assert image_server.hits["/page.html"] == 1 and image_server.hits["/big.png"] == 1  # permanent: no retry
    assert all((x.sha256 is not None) == (x.status == OK) for x in r.values())


def test_ok_bytes_land_in_the_content_addressed_cache_once(fetcher, image_server, images):
    RED = images["red"]
    urls = [image_server.url("/img/red.png"), image_server.url("/img/red-copy.png"), image_server.url("/img/blue.jpg")]
    results = fetcher.fetch_all(urls)
    red, copy, blue = (results[u] for u in urls)
    assert red.status == copy.status == blue.status == OK
    assert red.sha256 == copy.sha256 == hashlib.sha256(RED).hexdigest() != blue.sha256
    files = sorted(p for p in fetcher.cache.root.rglob("*") if p.is_file())
    assert len(files) == 2  # identical bytes from two URLs are one file
    assert fetcher.cache.get(red.sha256) == RED
    assert fetcher.cache.path(red.sha256).parent.name == red.sha256[:2]


def test_backoff_doubles_with_jitter(make_config, tmp_path, image_server, fast_fetch):
    cfg = make_config(*fast_fetch, "images.retries=3", "images.backoff_s=1.0").images
    slept: list[float] = []
    f = Fetcher(cfg, ImageCache(tmp_path / "c"), sleep=slept.append, rng=random.Random(0))
    assert f.fetch(image_server.url("/always500.png")).status == HTTP_ERROR
    assert len(slept) == 3
    for k, s in enumerate(slept):
        assert 0.5 * 2**k <= s <= 1.5 * 2**k


def test_token_bucket_spaces_requests_per_host():
    now = [0.0]

    def sleep(s):
        now[0] += s

    bucket = TokenBucket(rate=4.0, burst=1, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[0] == 0.0  # the saved-up token
    assert waits[1:] == pytest.approx([0.25] * 4)
    assert now[0] == pytest.approx(1.0)

    limiter = HostLimiter(2.0, burst=1, clock=lambda: now[0], sleep=sleep)
    assert limiter.acquire("a.example") == 0.0
    assert limiter.acquire("b.example") == 0.0  # another host has its own bucket
    assert limiter.acquire("a.example") == pytest.approx(0.5)
    assert HostLimiter(None).acquire("a.example") == 0.0


def test_rate_limit_is_keyed_by_the_original_host(make_config, tmp_path, image_server, fast_fetch):
    cfg = make_config(*fast_fetch, "images.per_host_rps=1000").images
    image_server.routes["/i.example.com/img/red.png"] = image_server.routes["/img/red.png"]
    f = Fetcher(cfg, ImageCache(tmp_path / "c"), rewrite=lambda u: mirror_url(u, image_server.base))
    assert f.fetch("https://i.example.com/img/red.png?width=640").status == OK
    assert f.limiter.hosts() == ["i.example.com"]  # not 127.0.0.1: the mirror stands in for that host


def test_mirror_url_keeps_host_and_path_and_drops_the_query():
    assert mirror_url("https://i.redd.it/abc123.jpg?width=640&s=ff", "http://127.0.0.1:9/") == "http://127.0.0.1:9/i.redd.it/abc123.jpg"
    assert mirror_url("https://i.imgur.com/a/b.png#frag", "http://proxy/m") == "http://proxy/m/i.imgur.com/a/b.png"


def test_mirror_dir_is_served_on_loopback_only_while_in_use(make_config, tmp_path, fast_fetch, images):
    folder = tmp_path / "mirror"
    (folder / "i.redd.it").mkdir(parents=True)
    (folder / "i.redd.it" / "abc.png").write_bytes(images["red"])
    cfg = make_config(*fast_fetch, f"images.mirror_dir={folder}").images
    with url_rewriter(cfg) as rewrite:
        target = rewrite("https://i.redd.it/abc.png?width=64")
        assert target.startswith("http://127.0.0.1:") and target.endswith("/i.redd.it/abc.png")
        f = Fetcher(cfg, ImageCache(tmp_path / "c"), rewrite=rewrite)
        res = f.fetch_all(["https://i.redd.it/abc.png?width=64", "https://i.redd.it/nope.png"])
        assert res["https://i.redd.it/abc.png?width=64"].status == OK
        assert res["https://i.redd.it/nope.png"].status == HTTP_ERROR
    with pytest.raises(urllib.error.URLError):  # the server is gone after the stage
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(target, timeout=1)


def test_mirror_base_rewrites_without_a_server(make_config):
    cfg = make_config("images.mirror_dir=null", "images.mirror_base=http://proxy.internal/m").images
    with url_rewriter(cfg) as rewrite:
        assert rewrite("https://i.redd.it/x.jpg?a=1") == "http://proxy.internal/m/i.redd.it/x.jpg"
    with url_rewriter(make_config("images.mirror_dir=null").images) as rewrite:
        assert rewrite is None


def test_local_env_mirrors_the_generated_dump(make_config, tmp_path):
    cfg = make_config()
    assert cfg.images.mirror_dir == f"{cfg.paths.dump}/images"


def test_both_mirrors_is_a_config_error(make_config):
    from zipp.config import ConfigError

    with pytest.raises(ConfigError, match="mirror"):
        make_config("images.mirror_base=http://x", "images.mirror_dir=/tmp")


@pytest.mark.realdata
def test_real_photos_fetch_ok(make_config, tmp_path, fast_fetch, image_server, shared_data):
    fetcher = Fetcher(make_config(*fast_fetch, "images.max_bytes=2000000").images, ImageCache(tmp_path / "c"))
    paths = []
    for pattern in ("*.png", "*.jpg"):
        paths += image_server.serve_folder("/real", shared_data / "images", pattern)
    assert len(paths) == 14
    results = fetcher.fetch_all([image_server.url(p) for p in paths])
    assert {r.status for r in results.values()} == {OK}, {u: r.error for u, r in results.items() if r.status != OK}
    assert len({r.sha256 for r in results.values()}) == 14
