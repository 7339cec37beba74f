"""Tests of the synthetic Reddit dump generator (zipp.generate), on small dumps made in code."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import typer
import zstandard

from zipp.config import GenerateConfig
from zipp.generate import classify_line, generate_dump, is_image_post, iter_raw_lines
from zipp.generate.badlines import KINDS
from zipp.generate.era import era_for
from zipp.generate.vocab import AESTHETIC_STYLE, BOTS

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _gen(root: Path, name: str, **kw) -> tuple[Path, dict]:
    out = root / name
    cfg = GenerateConfig(**kw)
    return out, generate_dump(cfg, out)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gen")


@pytest.fixture(scope="module")
def dump_a(root):
    """Pushshift, across the created_utc string -> int boundary, with bad lines and images."""
    return _gen(root, "a", users=200, months="2015-10:2016-01", seed=7, bad_rate=0.03, format="pushshift", images=True)


@pytest.fixture(scope="module")
def dump_b(root):
    """Arctic-Shift format across the gallery boundaries (2020-06 galleries, 2020-08 post_hint)."""
    return _gen(root, "b", users=150, months="2020-05:2020-08", seed=11, bad_rate=0.01, format="arctic", images=True)


def _month_files(out: Path) -> list[Path]:
    files = sorted(out.glob("R[CS]_*.zst"), key=lambda p: (p.name[3:10], p.name[:2]))
    assert files, f"no dump files in {out}"
    return files


def _good_lines(path: Path):
    for raw in iter_raw_lines(path):
        if classify_line(raw) is None:
            yield orjson.loads(raw)


def _all_lines(path: Path) -> list[bytes]:
    """Raw lines straight from the decompressed bytes (checks the newline framing too)."""
    data = zstandard.ZstdDecompressor(max_window_size=2**31).decompressobj().decompress(path.read_bytes())
    assert data.endswith(b"\n"), f"{path.name}: last line not newline-terminated"
    return data[:-1].split(b"\n")


# ------------------------------------------------------------------------------------------ format


def test_window_requires_2gib_decoder(dump_a):
    out, _ = dump_a
    for path in _month_files(out):
        head = path.read_bytes()[:32]
        assert zstandard.get_frame_parameters(head).window_size == 2**31
        with open(path, "rb") as fh, pytest.raises(zstandard.ZstdError, match="Frame requires too much memory"):
            zstandard.ZstdDecompressor().stream_reader(fh).read(1000)
        # one frame, fully read by a decoder that allows a 2 GiB window
        dobj = zstandard.ZstdDecompressor(max_window_size=2**31).decompressobj()
        data = dobj.decompress(path.read_bytes())
        assert dobj.eof and dobj.unused_data == b""
        with open(path, "rb") as fh:
            streamed = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(fh).read()
        assert streamed == data and data.count(b"\n") > 100


def test_determinism_same_seed_same_bytes_other_seed_differs(root, dump_a):
    out_a, _ = dump_a
    cfg = {"users": 200, "months": "2015-10:2016-01", "bad_rate": 0.03, "format": "pushshift", "images": True}
    out_same, _ = _gen(root, "a_again", seed=7, **cfg)
    out_other, _ = _gen(root, "a_other", seed=8, **cfg)

    def digests(out: Path) -> dict[str, str]:
        files = list(_month_files(out)) + [out / "prompts.parquet"] + sorted((out / "images").rglob("*.png"))
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    a, same, other = digests(out_a), digests(out_same), digests(out_other)
    assert a == same
    assert len([k for k in a if k.endswith(".png")]) > 20
    for name in (p.name for p in _month_files(out_a)):
        assert other[name] != a[name]


# ------------------------------------------------------------------------------------------ drift


def test_created_utc_string_until_2015_11_int_after(dump_a):
    out, _ = dump_a
    seen = Counter()
    for path in _month_files(out):
        month = path.name[3:10]
        want = str if month <= "2015-11" else int
        for o in _good_lines(path):
            cu = o["created_utc"]
            assert type(cu) is want, (path.name, cu)
            if want is str:
                assert cu.isdigit()
            assert type(o["retrieved_on"]) is int
            seen[want] += 1
    assert seen[str] > 500 and seen[int] > 500
    # no later-era fields in 2015/16 files
    for path in out.glob("RS_*.zst"):
        for o in _good_lines(path):
            assert "author_fullname" not in o and "is_gallery" not in o and "_meta" not in o
            assert o.get("post_hint") not in ("hosted:video", "gallery")
            assert o["domain"] != "i.redd.it"  # i.redd.it starts 2016-06


def test_era_rules_table():
    assert era_for("2007-05").created == "int"
    assert era_for("2009-09").created == "str"
    assert era_for("2015-02").created == "mixed"
    assert era_for("2015-11").created == "str" and era_for("2015-12").created == "int"
    assert era_for("2023-11", "arctic").created == "float" and era_for("2023-11").created == "int"
    assert not era_for("2017-12").fullname and era_for("2018-01").fullname and era_for("2005-12", "arctic").fullname
    assert not era_for("2020-05").gallery and era_for("2020-06").gallery and not era_for("2020-07").gallery_hint
    assert not era_for("2017-05").video and era_for("2017-06").video


def test_galleries_and_arctic_meta(dump_b):
    out, _ = dump_b
    galleries = Counter()
    hints = defaultdict(Counter)
    removal_types = Counter()
    for path in _month_files(out):
        month = path.name[3:10]
        for raw in iter_raw_lines(path):
            if classify_line(raw) is not None:
                continue
            o = orjson.loads(raw)
            keys = list(o)
            assert keys == sorted(keys), "arctic lines have sorted keys"
            assert isinstance(o["_meta"], dict) and o["_meta"], o["_meta"]
            removal_types[o["_meta"].get("removal_type")] += 1
            assert type(o["created_utc"]) is int and o["created"] == float(o["created_utc"])
            if o["author"] not in ("[deleted]",) and "promoted" not in o:
                assert re.fullmatch(r"t2_[0-9a-z]+", o["author_fullname"])
            assert "permalink" in o
            if path.name.startswith("RS_"):
                hints[month][o.get("post_hint")] += 1
                if o.get("is_gallery"):
                    galleries[month] += 1
                    assert month >= "2020-06"
                    assert o["url"].startswith("https://www.reddit.com/gallery/")
                    ids = [it["media_id"] for it in o["gallery_data"]["items"]]
                    assert len(ids) >= 2 and set(ids) == set(o["media_metadata"])
                    for mid in ids:
                        u = o["media_metadata"][mid]["s"]["u"]
                        assert u.startswith(f"https://preview.redd.it/{mid}.png?")
                        assert "&amp;" in u and not re.search(r"&(?!amp;)", u), u
            else:
                assert o["link_id"].startswith("t3_") and o["parent_id"][:3] in ("t1_", "t3_")
    assert galleries["2020-05"] == 0 and galleries["2020-06"] > 0 and sum(galleries.values()) >= 5
    assert hints["2020-05"]["gallery"] == hints["2020-06"]["gallery"] == hints["2020-07"]["gallery"] == 0
    assert hints["2020-08"]["gallery"] > 0
    assert hints["2020-06"]["hosted:video"] + hints["2020-07"]["hosted:video"] > 0
    assert removal_types["deleted"] > 0 and removal_types[None] > removal_types["deleted"]


def test_small_era_runs(root):
    out, _ = _gen(root, "feb15", users=40, months="2015-02", seed=3, bad_rate=0.0, images=False)
    types = Counter(type(o["created_utc"]) for p in _month_files(out) for o in _good_lines(p))
    assert set(types) == {int, str} and min(types.values()) > 50  # 2015-02 really is mixed


def test_oversize_lines_are_rare_and_accounted(root):
    out, _ = _gen(root, "oversize", users=40, months="2016-03", seed=5, bad_rate=0.5, images=False)
    truth = json.loads((out / "truth" / "bad_lines.json").read_text())
    n_over = 0
    for path in _month_files(out):
        over = [raw for raw in iter_raw_lines(path) if len(raw) > 2**20]
        assert len(over) == truth["per_file"][path.name]["oversize"] <= 2
        for raw in over:
            assert classify_line(raw) == "oversize" and isinstance(orjson.loads(raw), dict)
        n_over += len(over)
        assert path.stat().st_size < 2**20  # a > 1 MiB line still compresses to little
    assert n_over >= 1


def test_author_fullname_from_2018_and_arctic_float_created(root):
    out, _ = _gen(root, "c", users=60, months="2017-12:2018-01", seed=3, bad_rate=0.0, images=False)
    for path in _month_files(out):
        has = [("author_fullname" in o) for o in _good_lines(path) if o["author"] != "[deleted]" and "promoted" not in o]
        assert has and (all(has) if path.name[3:10] == "2018-01" else not any(has))
    out, _ = _gen(root, "d", users=40, months="2023-11", seed=3, bad_rate=0.0, format="arctic", images=False)
    for path in _month_files(out):
        types = {type(o["created_utc"]) for o in _good_lines(path)}
        assert types == {float}


# -------------------------------------------------------------------------------- bad lines, truth


def test_bad_lines_match_truth(dump_a):
    out, summary = dump_a
    truth = json.loads((out / "truth" / "bad_lines.json").read_text())
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    totals = Counter()
    for path in _month_files(out):
        lines = _all_lines(path)
        kinds = Counter(classify_line(raw) for raw in lines)
        found = {k: kinds.get(k, 0) for k in KINDS}
        assert found == truth["per_file"][path.name], path.name
        m = manifest["files"][path.name]
        assert m["total_lines"] == len(lines) == summary["files"][path.name]
        assert m["good_lines"] == kinds[None]
        assert m["bad_lines"] == len(lines) - kinds[None]
        totals.update(found)
        assert sum(1 for raw in lines if len(raw) > 2**20) <= 2
    assert dict(totals) == truth["totals"] == summary["bad_lines"]
    for k in KINDS:  # every kind is exercised at this rate and size, except the capped rare oversize
        if k != "oversize":
            assert totals[k] > 0, k
    assert 0.015 < sum(totals.values()) / summary["total_lines"] < 0.045


def test_manifest_and_user_truth_reconcile_with_files(dump_a):
    out, summary = dump_a
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    users = pq.read_table(out / "truth" / "users.parquet").to_pylist()
    by_name = {u["author"]: u for u in users}
    seen_ids: dict[str, set] = {"RC": set(), "RS": set()}
    per_author = defaultdict(Counter)
    image_posts_first = 0
    for path in _month_files(out):
        kind = path.name[:2]
        c = Counter()
        file_ids = set()
        for o in _good_lines(path):
            dup = o["id"] in seen_ids[kind]
            assert o["id"] not in file_ids, "ids are unique within a file"
            file_ids.add(o["id"])
            c["duplicate_ids"] += dup
            c["deleted"] += o["author"] == "[deleted]"
            c["bots"] += o["author"] in BOTS
            if kind == "RS":
                c["ads"] += "subreddit" not in o and o.get("promoted") is True
                c["image_posts"] += is_image_post(o)
                c["galleries"] += o.get("is_gallery") is True
                c["crossposts"] += "crosspost_parent" in o
                c["removed"] += o["selftext"] == "[removed]"
            else:
                c["removed"] += o["body"] == "[removed]"
            if not dup:
                per_author[o["author"]]["n_comments" if kind == "RC" else "n_submissions"] += 1
                if kind == "RS" and is_image_post(o):
                    per_author[o["author"]]["n_image_posts"] += 1
                    image_posts_first += 1
        seen_ids[kind] |= file_ids
        m = manifest["files"][path.name]
        for key in ("duplicate_ids", "deleted", "bots", "ads", "image_posts", "galleries", "crossposts", "removed"):
            assert m[key] == c[key], (path.name, key, m[key], c[key])
    assert summary["n_image_posts"] == image_posts_first > 0
    assert summary["duplicate_ids"] > 0 and any(m["ads"] for m in manifest["files"].values())
    assert sum(m["bots"] for m in manifest["files"].values()) > 0
    for name, counts in per_author.items():
        if name == "[deleted]" or name not in by_name:
            continue  # [deleted] lines and ad brands
        for key in ("n_comments", "n_submissions", "n_image_posts"):
            assert by_name[name][key] == counts[key], (name, key)
    for u in users:  # users with no visible line have zero counts
        if u["author"] not in per_author:
            assert u["n_comments"] == u["n_submissions"] == 0
    assert {u["author"] for u in users if u["is_bot"]} == set(BOTS)
    assert sum(u["is_deleted_alias"] for u in users) >= 1
    assert manifest["config"]["users"] == 200 and manifest["total_lines"] == summary["total_lines"]


def test_duplicates_are_next_month_recrawls(dump_a):
    out, _ = dump_a
    files = _month_files(out)
    by_file = {p.name: {o["id"]: o for o in _good_lines(p)} for p in files}
    dups = pq.read_table(out / "truth" / "duplicates.parquet").to_pylist()
    assert len(dups) > 0
    for d in dups:
        first, again = by_file[d["first_file"]][d["id"]], by_file[d["dup_file"]][d["id"]]
        assert d["dup_file"][:2] == d["first_file"][:2]
        assert d["dup_file"][3:10] > d["first_file"][3:10]
        assert again["retrieved_on"] > first["retrieved_on"] and again["score"] != first["score"]
        assert int(again["created_utc"]) == int(first["created_utc"])
        assert {k: v for k, v in again.items() if k not in ("score", "ups", "retrieved_on", "created_utc")} == \
               {k: v for k, v in first.items() if k not in ("score", "ups", "retrieved_on", "created_utc")}


# ----------------------------------------------------------------------------------------- images


def _image_urls(o: dict) -> list[tuple[str, list[str]]]:
    """(main url, related urls) per image of a submission; URLs HTML-unescaped like a fetcher would."""
    out = []
    if o.get("is_gallery"):
        for meta in o["media_metadata"].values():
            main = html.unescape(meta["s"]["u"])
            out.append((main, [html.unescape(p["u"]) for p in meta["p"]]))
    elif is_image_post(o):
        related = []
        for img in (o.get("preview") or {}).get("images", []):
            related.append(html.unescape(img["source"]["url"]))
            related += [html.unescape(r["url"]) for r in img["resolutions"]]
        out.append((o["url"], related))
    return out


def _local(images: Path, url: str) -> Path:
    assert url.startswith("https://")
    return images / url[len("https://"):].split("?", 1)[0]


@pytest.mark.parametrize("which", ["dump_a", "dump_b"])
def test_image_mirror_resolves(which, request):
    from PIL import Image

    out, summary = request.getfixturevalue(which)
    images = out / "images"
    truth = pq.read_table(out / "truth" / "images.parquet").to_pylist()
    dead_paths = {r["path"] for r in truth if r["dead"]}
    n_alive = n_dead = 0
    size = 64
    for path in out.glob("RS_*.zst"):
        for o in _good_lines(path):
            for main, related in _image_urls(o):
                local = _local(images, main)
                dead = str(local.relative_to(images)) in dead_paths
                for url in [main] + related:
                    p = _local(images, url)
                    assert p.exists() != dead, (url, dead)
                if dead:
                    n_dead += 1
                    continue
                n_alive += 1
                data = local.read_bytes()
                assert data.startswith(PNG_SIG)
                with Image.open(local) as im:
                    assert im.size == (size, size) and im.mode == "RGB"
    assert n_alive > 20 and n_dead > 0
    assert summary["n_dead_image_urls"] == len(dead_paths)
    hosts = {p.name for p in images.iterdir()}
    assert {"i.imgur.com"} <= hosts
    if which == "dump_b":
        assert {"i.redd.it", "preview.redd.it"} <= hosts


def test_images_carry_community_and_aesthetic_signal(dump_a):
    import numpy as np
    from PIL import Image

    out, _ = dump_a
    rows = [r for r in pq.read_table(out / "truth" / "images.parquet").to_pylist() if not r["dead"]]
    groups = defaultdict(list)
    for r in rows:
        with Image.open(out / "images" / r["path"]) as im:
            groups[(r["community"], r["aesthetic"])].append(np.asarray(im, dtype=np.float32).mean(axis=(0, 1)))
    big = [k for k, v in groups.items() if len(v) >= 3]
    assert len(big) >= 3
    within = np.mean([np.linalg.norm(np.array(groups[k]) - np.mean(groups[k], 0), axis=1).mean() for k in big])
    centers = np.array([np.mean(groups[k], 0) for k in big])
    between = np.mean([np.linalg.norm(a - b) for i, a in enumerate(centers) for b in centers[i + 1:]])
    assert between > 2 * within, (between, within)


# ------------------------------------------------------------------------------------- structure


def test_planted_structure_is_recoverable(dump_a):
    out, _ = dump_a
    users = {u["author"]: u for u in pq.read_table(out / "truth" / "users.parquet").to_pylist() if not u["is_bot"]}
    subs = {s["subreddit"]: s for s in pq.read_table(out / "truth" / "subreddits.parquet").to_pylist()}
    activity = defaultdict(Counter)
    cue_checks = Counter()
    for path in _month_files(out):
        for o in _good_lines(path):
            u = users.get(o["author"])
            if u is None or "subreddit" not in o:
                continue
            activity[o["author"]][o["subreddit"]] += 1
            body = o.get("body", "")
            m = re.match(r"Here in ([^,]+), ", body)
            if m:
                assert m.group(1) == u["city"], (body, u["city"])
                cue_checks["location"] += 1
            m = re.match(r"As a (\d+) year old, ", body)
            if m:
                assert int(m.group(1)) == u["age"]
                cue_checks["age"] += 1
            m = re.match(r"As an? ([a-z ]+), ", body)
            if m and m.group(1) not in ("guy", "woman", "mom", "dad", "enby", "nonbinary person", "retiree"):
                assert m.group(1) == u["profession"], (body, u["profession"])
                cue_checks["profession"] += 1
    assert sum(cue_checks.values()) > 10
    hits = total = 0
    for name, counts in activity.items():
        if sum(counts.values()) < 15:
            continue
        u = users[name]
        home = set(u["interests"])
        for sub, _ in counts.most_common(3):
            s = subs[sub]
            total += 1
            hits += s["community"] in home or (s["community"] == "location" and s["location"] in (u["country"], f"{u['city']}, {u['country']}"))
    assert total > 60
    assert hits / total > 0.75, hits / total
    # heavy-tailed activity: the top 10% of users write a large share of lines
    sizes = sorted((sum(c.values()) for c in activity.values()), reverse=True)
    assert sum(sizes[: max(1, len(sizes) // 10)]) > 0.3 * sum(sizes)


def test_prompts_follow_interests_and_aesthetics(dump_a):
    out, summary = dump_a
    t = pq.read_table(out / "prompts.parquet")
    assert t.schema.names == ["author", "prompt", "created"]
    assert str(t.schema.field("created").type).startswith("timestamp")
    rows = t.to_pylist()
    assert len(rows) == summary["n_prompts"] > 100
    users = {u["author"]: u for u in pq.read_table(out / "truth" / "users.parquet").to_pylist()}
    assert {r["author"] for r in rows} <= set(users)
    matched = sum(any(style in r["prompt"] for a in users[r["author"]]["aesthetics"] for style in AESTHETIC_STYLE[a]) for r in rows)
    assert matched == len(rows)
    lo, hi = min(r["created"] for r in rows), max(r["created"] for r in rows)
    assert lo.year == 2015 and hi.year == 2016


def test_cli_generate_dump(tmp_path):
    from typer.testing import CliRunner

    from zipp.generate.cli import register

    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = {"env": None, "conf_dir": None}

    register(app)
    out, images = tmp_path / "dump", tmp_path / "mirror"
    r = CliRunner().invoke(app, ["generate-dump", "--out", str(out), "--users", "25", "--months", "2016-06", "--seed", "5",
                                 "--bad-rate", "0.02", "--images", str(images), "--format", "arctic", "generate.duplicate_rate=0.0"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["files"] == {"RC_2016-06.zst": summary["files"]["RC_2016-06.zst"], "RS_2016-06.zst": summary["files"]["RS_2016-06.zst"]}
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    assert manifest["config"]["users"] == 25 and manifest["config"]["format"] == "arctic" and manifest["config"]["bad_rate"] == 0.02
    assert manifest["config"]["duplicate_rate"] == 0.0
    assert any(images.rglob("*.png")) and not (out / "images").exists()
    bad = CliRunner().invoke(app, ["generate-dump", "--out", str(out), "--format", "nope"])
    assert bad.exit_code == 2
