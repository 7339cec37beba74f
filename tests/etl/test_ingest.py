"""`zipp ingest` over a dump written in code that holds every bad-input case of the issue: where each
line ends up, the silver/gold rules, gates, readers, an identical rerun, and `zipp forget`."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from conftest import all_tables, table_hash
from etl_dumps import DROP, comment, submission, ts, write_lines, write_truncated_zst

from zipp import lake as lakeio
from zipp.identity import user_key

pytestmark = [pytest.mark.spark]

SALT = "zipp-local-dev-salt"
JAN = ts("2016-01-10")
BIG = 10 * 2**20


def build_dump(root: Path) -> dict:
    """Returns {file: expected quarantine reasons by line number}."""
    expect = {}
    rc = [
        comment("c1", "alice", "pics", JAN, score=5, body="alice likes pics"),  # 1
        comment("c2", "bob", "pics", JAN + 60, brand_new_field={"x": [1]}),  # 2 unknown extra field: kept
        b"this is not json",  # 3
        b"[1, 2, 3]",  # 4
        comment("c5", "alice", "pics", JAN, score="12"),  # 5
        comment("c6", "alice", "pics", "1452384000"),  # 6 a string created_utc after 2015-11
        comment("c7", "alice", "pics", None),  # 7
        comment(DROP, "alice", "pics", JAN),  # 8
        comment("c9", DROP, "pics", JAN),  # 9
        comment("c10", "alice", DROP, JAN),  # 10
        comment("c11", "alice", "pics", JAN).replace(b"a comment", b"caf\xe9"),  # 11 invalid UTF-8
        comment("c12", "alice", "pics", JAN, body="x" * BIG),  # 12 a 10 MB line
        comment("dup1", "alice", "pics", JAN, score=1, body="old version", retrieved_on=1_500_000_000),  # 13
        comment("c14", "AutoModerator", "pics", JAN, body="rule 1"),  # 14 bot
        comment("c15", "[deleted]", "pics", JAN, body="[deleted]"),  # 15 deleted author
        b"",  # 16
        comment("c17", "carol", "Pics", JAN, score=3, body="carol in Pics"),  # 17 subreddit case
        comment("c18", "carol", "funny", JAN, score=9, body="carol is funny"),  # 18
    ]
    write_lines(root / "RC_2016-01.zst", rc)
    expect["RC_2016-01.zst"] = {3: "invalid_json", 4: "not_an_object", 5: "bad_type:score", 6: "bad_type:created_utc",
                                7: "bad_type:created_utc", 8: "missing:id", 9: "missing:author", 10: "missing:subreddit",
                                11: "invalid_utf8", 12: "oversize", 16: "empty_line"}
    # the same id in a second file of the month, retrieved later: silver keeps this one
    write_lines(root / "arctic_2016-01_comments.ndjson", [
        comment("dup1", "alice", "pics", JAN, score=7, body="new version", retrieved_on=1_600_000_000),
        comment("d1", "dave", "pics", JAN, body="dave here"),
    ], final_newline=False)
    expect["arctic_2016-01_comments.ndjson"] = {}
    nov = ts("2015-11-20")
    write_lines(root / "RC_2015-11.zst", [comment("n1", "alice", "pics", str(nov)), comment("n2", "bob", "pics", nov)])
    expect["RC_2015-11.zst"] = {}
    mm = {"m2": {"status": "valid", "s": {"u": "https://preview.redd.it/m2.png?width=64&amp;s=b"}},
          "m1": {"status": "valid", "s": {"u": "https://preview.redd.it/m1.png?width=64&amp;s=a"}}}
    write_lines(root / "RS_2016-01.zst", [
        submission("s1", "alice", "pics", JAN, url="https://i.redd.it/abc.png", post_hint="image", title="my cat", score=50),
        submission("s2", "bob", "pics", JAN, url="https://www.reddit.com/gallery/s2", is_gallery=True,
                   media_metadata=mm, gallery_data={"items": [{"media_id": "m1"}, {"media_id": "m2"}]}),
        submission("s3", "carol", "pics", JAN, url="https://imgur.com/gallerypage", post_hint="image",
                   preview={"images": [{"source": {"url": "https://external-preview.redd.it/p3.jpg?a=1&amp;b=2"}}]}),
        submission("s4", "carol", "nsfw_stuff", JAN, url="https://example.com/link", over_18=True),
        submission("s5", "HelperBot", "pics", JAN, url="https://i.redd.it/bot.png", post_hint="image"),
        submission("s6", "Podify", DROP, JAN, promoted=True),
    ])
    expect["RS_2016-01.zst"] = {6: "promoted_ad"}
    rnd = random.Random(3)
    feb = [comment(f"f{i}", f"user{i % 5}", "pics", ts("2016-02-03") + i, body="".join(rnd.choices("abcdef gh", k=400)))
           for i in range(2000)]
    # line 1: a re-crawl of January's c18 (new score, later retrieval) inside February's file
    feb[0] = comment("c18", "carol", "funny", JAN, score=11, body="carol is funny", retrieved_on=1_600_000_000)
    write_truncated_zst(root / "RC_2016-02.zst", feb, keep=0.5)
    (root / "RS_2016-02.ndjson").write_bytes(b"")
    (root / "notes.json").write_text("{}")
    return expect


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, etl_cli):
    root = tmp_path_factory.mktemp("bad")
    dump, lake, runs = root / "dump", root / "lake", root / "runs"
    expect = build_dump(dump)
    code, out = etl_cli("ingest", "--input", dump, "--lake", lake, "--run", "first", f"paths.runs={runs}",
                        "etl.quarantine_max_rate=1.0", "etl.chunk_bytes=65536")
    assert code == 0, out
    return {"dump": dump, "lake": lake, "runs": runs, "expect": expect, "out": out,
            "manifest": json.loads((runs / "first" / "manifest.json").read_text())}


def rows(lake: Path, name: str, **eq) -> list[dict]:
    out = lakeio.read_arrow(lake, name).to_pylist()
    return [r for r in out if all(r[k] == v for k, v in eq.items())]


def test_every_line_is_bronze_or_quarantine_per_file(ingested):
    lake, man = ingested["lake"], ingested["manifest"]
    files = {f["source_file"]: f for f in man["bronze"]["files"]}
    bronze = rows(lake, "bronze/comments") + rows(lake, "bronze/submissions")
    quarantine = rows(lake, "quarantine")
    for name, f in files.items():
        n_b = sum(r["source_file"] == name for r in bronze)
        n_q = sum(r["source_file"] == name for r in quarantine)
        assert f["lines"] == n_b + n_q, name
        assert (f["bronze_rows"], f["quarantine_rows"]) == (n_b, n_q)
        lines = sorted(r["line_no"] for r in bronze + quarantine if r["source_file"] == name)
        assert lines == list(range(1, f["lines"] + 1)), f"{name}: every line number exactly once"
    assert files["RC_2016-01.zst"]["lines"] == 18 and files["RS_2016-02.ndjson"]["empty"]
    recorded = {r["source_file"]: r for r in lakeio.read_arrow(lake, "_etl/files").to_pylist()}
    assert recorded["RC_2016-01.zst"]["lines"] == 18 and recorded["RS_2016-02.ndjson"]["lines"] == 0
    assert all(len(r["sha256"]) == 64 and r["status"] == "ok" for r in recorded.values())


def test_each_bad_input_ends_in_quarantine_with_its_reason(ingested):
    lake = ingested["lake"]
    for name, expect in ingested["expect"].items():
        got = {r["line_no"]: r["reason"] for r in rows(lake, "quarantine", source_file=name)}
        assert got == expect, name
    (big,) = rows(lake, "quarantine", source_file="RC_2016-01.zst", line_no=12)
    assert big["raw_len"] > BIG and len(big["raw"]) == 4096
    (utf,) = rows(lake, "quarantine", source_file="RC_2016-01.zst", line_no=11)
    assert b"caf\xe9" in utf["raw"]
    # the run says how many, by reason
    reasons = ingested["manifest"]["bronze"]["reasons"]
    assert reasons["bad_type:created_utc"] == 2 and reasons["truncated"] == 1 and reasons["promoted_ad"] == 1
    assert "quarantine bad_type:created_utc: 2" in ingested["out"]
    assert ingested["manifest"]["unrecognised_names"] == ["notes.json"]


def test_truncated_frame_keeps_its_whole_lines(ingested):
    lake = ingested["lake"]
    (tail,) = rows(lake, "quarantine", source_file="RC_2016-02.zst")
    assert tail["reason"] == "truncated"
    kept = rows(lake, "bronze/comments", source_file="RC_2016-02.zst")
    assert 300 < len(kept) < 2000 and tail["line_no"] == len(kept) + 1
    assert ingested["manifest"]["silver_months"] == ["2015-11", "2016-01", "2016-02"]
    f = next(f for f in ingested["manifest"]["bronze"]["files"] if f["source_file"] == "RC_2016-02.zst")
    assert f["truncated"] and "TRUNCATED" in ingested["out"]


def test_bronze_types_extra_fields_and_eras(ingested):
    lake = ingested["lake"]
    (c2,) = rows(lake, "bronze/comments", id="c2")
    assert c2["author"] == "bob" and c2["month"] == "2016-01" and c2["line_no"] == 2
    nov = {r["id"]: r["created_utc"] for r in rows(lake, "bronze/comments", month="2015-11")}
    assert nov == {"n1": ts("2015-11-20"), "n2": ts("2015-11-20")}
    assert len(rows(lake, "bronze/comments", id="dup1")) == 2  # bronze keeps both copies


def test_silver_dedup_flags_and_user_key(ingested):
    lake = ingested["lake"]
    (dup,) = rows(lake, "silver/comments", id="dup1")
    assert dup["body"] == "new version" and dup["score"] == 7 and dup["source_file"] == "arctic_2016-01_comments.ndjson"
    (c1,) = rows(lake, "silver/comments", id="c1")
    assert c1["user_key"] == user_key("alice", SALT) and c1["created_utc"].isoformat().startswith("2016-01-10")
    (bot,) = rows(lake, "silver/comments", id="c14")
    (gone,) = rows(lake, "silver/comments", id="c15")
    assert bot["is_bot"] and not c1["is_bot"]
    assert gone["is_deleted_author"] and gone["is_removed_text"] and gone["user_key"] is None
    (c18,) = rows(lake, "silver/comments", id="c18")  # the re-crawl in February's file wins, in January
    assert (c18["score"], c18["month"], c18["source_file"]) == (11, "2016-01", "RC_2016-02.zst")
    (c17,) = rows(lake, "silver/comments", id="c17")
    assert (c17["subreddit"], c17["subreddit_lc"]) == ("Pics", "pics")
    # dup1's and c18's first copies lost to copies in other files: found by the shuffle of the ids the
    # files' id spans share, and dropped by running the tasks of their files again
    silver = ingested["manifest"]["silver"]["comments"]
    assert silver["cross_file_losers"] == 2 and silver["files_rerun"] >= 1 and silver["duplicates"] == 2
    assert not any("salt" in c for t in all_tables(lake) for c in lakeio.read_arrow(lake, t).column_names)


def test_silver_images_galleries_preview_nsfw(ingested):
    subs = {r["id"]: r for r in rows(ingested["lake"], "silver/submissions")}
    assert subs["s1"]["is_image"] and subs["s1"]["image_urls"] == ["https://i.redd.it/abc.png"]
    assert subs["s2"]["image_urls"] == ["https://preview.redd.it/m1.png?width=64&s=a", "https://preview.redd.it/m2.png?width=64&s=b"]
    assert subs["s3"]["image_urls"] == ["https://external-preview.redd.it/p3.jpg?a=1&b=2"]  # preview fallback
    assert not subs["s4"]["is_image"] and subs["s4"]["nsfw"] and not subs["s1"]["nsfw"]
    assert subs["s5"]["is_bot"] and subs["s5"]["is_image"]


def test_gold_edges_users_images_snippets(ingested):
    lake = ingested["lake"]
    alice, carol = user_key("alice", SALT), user_key("carol", SALT)
    edges = {(r["user_key"], r["subreddit"]): r for r in rows(lake, "gold/user_subreddit_edges")}
    a = edges[(alice, "pics")]
    # c1 + dup1 (Jan) + n1 (Nov) comments, s1 submission
    assert (a["n_comments"], a["n_submissions"], a["n_image_posts"]) == (3, 1, 1)
    assert a["score_sum"] == 5 + 7 + 1 + 50 and a["active_months"] == 2
    assert edges[(carol, "pics")]["n_comments"] == 1 and edges[(carol, "pics")]["n_submissions"] == 1
    assert edges[(carol, "funny")]["n_comments"] == 1 and edges[(carol, "funny")]["score_sum"] == 11
    assert not any(k[0] == user_key("AutoModerator", SALT) or k[0] == user_key("HelperBot", SALT) for k in edges)
    users = {r["user_key"]: r for r in rows(lake, "gold/users")}
    assert sorted(r["user_id"] for r in users.values()) == list(range(len(users)))
    assert users[carol]["n_subreddits"] == 3 and users[carol]["n_comments"] == 2
    assert a["user_id"] == users[alice]["user_id"]
    subs = {r["subreddit"]: r for r in rows(lake, "gold/subreddits")}
    assert subs["nsfw_stuff"]["nsfw_share"] == 1.0 and subs["pics"]["nsfw_share"] == 0.0
    images = {(r["post_id"], r["image_index"]): r["url"] for r in rows(lake, "gold/user_images")}
    assert images == {("t3_s1", 0): "https://i.redd.it/abc.png", ("t3_s2", 0): "https://preview.redd.it/m1.png?width=64&s=a",
                      ("t3_s2", 1): "https://preview.redd.it/m2.png?width=64&s=b",
                      ("t3_s3", 0): "https://external-preview.redd.it/p3.jpg?a=1&b=2"}
    snips = sorted((r["rank"], r["snippet_id"], r["kind"]) for r in rows(lake, "gold/snippets", user_key=alice, subreddit="pics"))
    assert snips == [(1, "t3_s1", "title"), (2, "t1_dup1", "comment"), (3, "t1_c1", "comment"), (4, "t1_n1", "comment")]


def test_gates_ran_and_wrote_html_reports(ingested):
    man = ingested["manifest"]
    for suite in ("bronze", "silver", "gold"):
        report = Path(man["gates"][suite]["report"])
        assert report.is_file() and "<html" in report.read_text().lower()
    stats = json.loads((ingested["runs"] / "first" / "stats" / "etl_bronze.json").read_text())
    assert stats["rows_in"] == man["bronze"]["lines"] and stats["drops"]["oversize"] == 1


def test_tables_read_the_same_in_spark_polars_and_duckdb(ingested, spark):
    import duckdb
    import polars as pl
    from deltalake import DeltaTable

    from zipp.etl.delta import read_table

    lake = ingested["lake"]
    for name in ("bronze/comments", "quarantine", "silver/submissions", "gold/user_subreddit_edges", "gold/user_images"):
        sdf = read_table(spark, lake, name)
        pdf = pl.read_delta(str(lake / name))
        ds = DeltaTable(str(lake / name)).to_pyarrow_dataset()  # noqa: F841 (read by duckdb below)
        n_duck = duckdb.sql("select count(*) from ds").fetchall()[0][0]
        assert sdf.count() == pdf.height == n_duck > 0, name
        assert set(sdf.columns) == set(pdf.columns)
    sums = read_table(spark, lake, "gold/user_subreddit_edges").groupBy().sum("n_comments").first()[0]
    assert sums == pl.read_delta(str(lake / "gold/user_subreddit_edges"))["n_comments"].sum()


def test_rerun_gives_identical_tables(ingested, etl_cli):
    lake = ingested["lake"]
    before = {t: table_hash(lake, t) for t in all_tables(lake) if not t.startswith("_etl")}
    versions = {t: lakeio.version(lake, t) for t in before}
    code, out = etl_cli("ingest", "--input", ingested["dump"], "--lake", lake, "--run", "second",
                        f"paths.runs={ingested['runs']}", "etl.quarantine_max_rate=1.0", "etl.chunk_bytes=65536", "etl.gates=false")
    assert code == 0, out
    after = {t: table_hash(lake, t) for t in before}
    assert after == before
    assert all(lakeio.version(lake, t) > versions[t] for t in ("bronze/comments", "silver/comments", "gold/user_images"))


def test_forget_removes_authors_everywhere_and_vacuums(ingested, etl_cli, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(ingested["lake"], lake)
    alice = user_key("alice", SALT)
    lakeio.write_arrow(lake, "gold/personas", __import__("pyarrow").table({"user_key": [alice, "other"], "persona": ["cat person", "x"]}))
    authors = tmp_path / "authors.txt"
    authors.write_text("# people who asked\nalice\n")
    old_files = {p for p in (lake / "silver/comments").rglob("*.parquet")}
    code, out = etl_cli("forget", "--lake", lake, "--authors", authors, f"paths.runs={tmp_path / 'runs'}")
    assert code == 0, out
    for t in all_tables(lake):
        if t.startswith("_etl"):
            continue
        tab = lakeio.read_arrow(lake, t)
        for col, val in (("user_key", alice), ("author", "alice")):
            if col in tab.column_names:
                assert val not in tab.column(col).to_pylist(), f"{t}.{col}"
    assert lakeio.read_arrow(lake, "gold/personas").column("user_key").to_pylist() == ["other"]
    assert rows(lake, "silver/comments", id="c2"), "other authors stay"
    log = {r["table_name"]: r for r in lakeio.read_arrow(lake, "_etl/forget_log").to_pylist()}
    assert log["silver/comments"]["rows_deleted"] == 3 and log["gold/personas"]["rows_deleted"] == 1
    assert log["quarantine"]["rows_deleted"] == 5  # the bad lines that still name her (lines 5-10)
    assert old_files - {p for p in (lake / "silver/comments").rglob("*.parquet")}, "vacuum deleted the old files"
    for p in lake.rglob("*.parquet"):  # no file of any version still holds her name or key
        if p.relative_to(lake).parts[0] not in ("quarantine", "_etl"):  # (quarantine: lines too broken to name her)
            assert b"alice" not in p.read_bytes() and alice.encode() not in p.read_bytes(), p
    assert lakeio.read_arrow(lake, "_etl/forgotten").column("user_key").to_pylist() == [alice]
    assert "alice" not in json.dumps(lakeio.read_arrow(lake, "_etl/forget_log").to_pylist(), default=str)
    # re-ingesting the dump does not bring her back: her lines become content-free `forgotten` rows
    code, out = etl_cli("ingest", "--input", ingested["dump"], "--lake", lake, "--months", "2016-01",
                        f"paths.runs={tmp_path / 'runs'}", "etl.quarantine_max_rate=1.0", "etl.gates=false")
    assert code == 0 and "quarantine forgotten: 4" in out, out  # c1, s1 and both copies of dup1
    for t in ("bronze/comments", "silver/comments", "gold/user_subreddit_edges", "gold/snippets"):
        tab = lakeio.read_arrow(lake, t)
        assert alice not in tab.column("user_key").to_pylist() if "user_key" in tab.column_names else \
            "alice" not in tab.column("author").to_pylist()


def test_copies_in_one_file_stray_late_ids_and_odd_ids_are_deduplicated(tmp_path, etl_cli):
    """The dedup's three paths in one month cut into 64 KiB chunks (one bronze file each): a copy
    within one chunk (its task drops it), a late line re-crawling an early id (it stretches its
    chunk's id span over the others'), and an id that is not a base-36 number, in two chunks."""
    import numpy as np

    from zipp.etl.delta import table_files

    def cid(n):
        return np.base_repr(100_000 + n, 36).lower()

    def line(n, id, body, **kw):  # 299 bytes + newline: 218 lines to a 65,536-byte chunk
        raw = comment(id, f"user{n % 7}", "pics", ts("2016-03-02") + n, body=body, **kw)
        return comment(id, f"user{n % 7}", "pics", ts("2016-03-02") + n, body=body + "x" * (299 - len(raw)), **kw)

    lines = [line(n, cid(n), f"comment {n} ") for n in range(3000)]
    lines[2990] = line(5, cid(5), "re-crawled ", score=50, retrieved_on=1_600_000_000)  # chunk 13; the original is in chunk 0
    lines[1001] = line(1000, cid(1000), "older copy ", retrieved_on=1_400_000_000)  # chunk 4, beside the original
    lines[600] = line(600, "x_1", "odd, first ")  # chunk 2
    lines[2500] = line(600, "x_1", "odd, later file ")  # chunk 11
    assert {len(x) for x in lines} == {299}
    write_lines(tmp_path / "dump" / "RC_2016-03.zst", lines)
    code, out = etl_cli("ingest", "--input", tmp_path / "dump", "--lake", tmp_path / "lake", "--run", "dd",
                        f"paths.runs={tmp_path / 'runs'}", "etl.chunk_bytes=65536")
    assert code == 0, out
    lake = tmp_path / "lake"
    assert len(lakeio.read_arrow(lake, "bronze/comments").to_pylist()) == 3000
    assert len(table_files(lake, "bronze/comments")) == 14  # the chunks the comments above name
    silver = {}
    for r in lakeio.read_arrow(lake, "silver/comments").to_pylist():
        assert r["id"] not in silver, r["id"]
        silver[r["id"]] = r
    assert len(silver) == 3000 - 3
    assert silver[cid(5)]["body"].startswith("re-crawled") and silver[cid(5)]["line_no"] == 2991  # the later retrieval
    assert silver[cid(1000)]["body"].startswith("comment 1000")  # retrieved later than the copy on the next line
    assert silver["x_1"]["body"].startswith("odd, later file")  # same retrieval: the later line
    man = json.loads((tmp_path / "runs" / "dd" / "manifest.json").read_text())["silver"]["comments"]
    # the copy within chunk 4 never left its task; the two across chunks did, and their losers' tasks ran again
    assert man["duplicates"] == 3 and man["cross_file_losers"] == 2 and man["files_rerun"] == 2
    assert man["ids"] == man["rows"] == 2997


def test_split_waits_for_staging_room_on_few_cores(tmp_path, etl_cli):
    """etl.max_staged_bytes bounds the decompressed chunks waiting for their parse task. A month cut
    into 64 KiB chunks with room for 4: the staging folder never holds more, and the manifest says how
    long the split waited. Without the limit the split stages far more (on 2 cores one core
    decompresses faster than the other parses)."""
    import threading
    import time

    lines = [comment(f"c{i}", f"user{i % 11}", "pics", ts("2016-04-02") + i, body="w" * 250) for i in range(8000)]
    write_lines(tmp_path / "dump" / "RC_2016-04.zst", lines)
    seen = {}
    for limit in (4 * 65536, 0):
        staging, stop, peak = tmp_path / f"staging{limit}", threading.Event(), [0]

        def watch(staging=staging, stop=stop, peak=peak):
            while not stop.is_set():
                total = 0
                for p in staging.glob("*/chunks/f*/*.ndjson"):
                    try:
                        total += p.stat().st_size
                    except FileNotFoundError:  # parsed meanwhile
                        pass
                peak[0] = max(peak[0], total)
                time.sleep(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            code, out = etl_cli("ingest", "--input", tmp_path / "dump", "--lake", tmp_path / f"lake{limit}", "--run", f"bp{limit}",
                                f"paths.runs={tmp_path / 'runs'}", f"etl.staging={staging}", "etl.chunk_bytes=65536",
                                f"etl.max_staged_bytes={limit}", "etl.gates=false")
        finally:
            stop.set()
            watcher.join()
        assert code == 0, out
        (f,) = json.loads((tmp_path / "runs" / f"bp{limit}" / "manifest.json").read_text())["bronze"]["files"]
        assert f["lines"] == f["bronze_rows"] == 8000
        assert len(lakeio.read_arrow(tmp_path / f"lake{limit}", "silver/comments")) == 8000
        seen[limit] = (peak[0], f["split_wait_s"])
    assert 0 < seen[4 * 65536][0] <= 4 * 65536 and seen[4 * 65536][1] > 0
    assert seen[0][0] > 8 * 65536 and seen[0][1] == 0
