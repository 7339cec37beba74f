"""Line parsing, file splitting and file names: no Spark, each bad-input case alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from etl_dumps import DROP, comment, submission, ts, write_lines, write_truncated_zst, zst_bytes

from zipp.etl.parse import ParseOptions, count_lines, gallery_urls, parse_chunk, preview_urls
from zipp.etl.sources import discover, parse_name
from zipp.etl.split import StagingRoom, read_chunk, split_file

JAN = ts("2016-01-10")


def opts(month="2016-01", kind="comments", **kw) -> ParseOptions:
    return ParseOptions(kind=kind, month=month, source_file=f"RC_{month}.zst", ingested_at_us=1_700_000_000_000_000, **kw)


def parse(lines: list[bytes], **kw):
    return parse_chunk(b"\n".join(lines) + b"\n", 1, opts(**kw))


def only_reason(line: bytes, **kw) -> str:
    """The one line's fate when surrounded by good lines: its quarantine reason ('' if it became bronze)."""
    good = comment("g1", "alice", "pics", JAN)
    res = parse([good, line, good.replace(b'"g1"', b'"g2"')], **kw)
    assert res.lines == 3 and res.bronze.num_rows + res.quarantine.num_rows == 3
    rows = res.quarantine.to_pylist()
    assert all(r["line_no"] == 2 for r in rows), "only the middle line may be quarantined"
    return rows[0]["reason"] if rows else ""


@pytest.mark.parametrize("line, reason", [
    (b"this is not json", "invalid_json"),
    (b'{"id": "x1", "author": "a"', "invalid_json"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'"just a string"', "not_an_object"),
    (b"null", "not_an_object"),
    (comment("x1", "alice", "pics", JAN, score="12"), "bad_type:score"),
    (comment("x1", "alice", "pics", JAN, score=12.5), "bad_type:score"),
    (comment("x1", "alice", "pics", "1451606400"), "bad_type:created_utc"),  # a string after 2015-11
    (comment("x1", "alice", "pics", None), "bad_type:created_utc"),
    (comment("x1", "alice", "pics", DROP), "missing:created_utc"),
    (comment(DROP, "alice", "pics", JAN), "missing:id"),
    (comment("x1", DROP, "pics", JAN), "missing:author"),
    (comment("x1", "alice", DROP, JAN), "missing:subreddit"),
    (comment("x1", "alice", "", JAN), "missing:subreddit"),
    (comment({"nested": 1}, "alice", "pics", JAN), "bad_type:id"),
    (comment("x1", "alice", "pics", JAN).replace(b"a comment", b"caf\xe9 \xff"), "invalid_utf8"),
    (b"", "empty_line"),
    (b"   \r", "empty_line"),
])
def test_each_bad_line_is_quarantined_with_its_reason(line, reason):
    assert only_reason(line) == reason


def test_unknown_extra_field_and_numeric_id_stay_in_bronze():
    assert only_reason(comment("x1", "alice", "pics", JAN, brand_new_field={"a": [1, 2]})) == ""
    res = parse([comment(7, "alice", "pics", JAN)])
    assert res.bronze.column("id").to_pylist() == ["7"]  # a JSON number in a text field keeps its text


def test_created_utc_string_is_valid_in_its_era():
    nov = ts("2015-11-03")
    res = parse([comment("a", "x", "pics", str(nov)), comment("b", "x", "pics", nov), comment("c", "x", "pics", "notanumber")],
                month="2015-11")
    assert res.reasons == {"bad_type:created_utc": 1}
    assert res.bronze.column("created_utc").to_pylist() == [nov, nov]
    # Arctic-Shift: floats, ints and numeric strings all occur
    feb = ts("2024-02-01")
    res = parse([comment("a", "x", "pics", float(feb)), comment("b", "x", "pics", str(feb)), comment("c", "x", "p", "soon")],
                month="2024-02")
    assert res.bronze.column("created_utc").to_pylist() == [feb, feb]
    assert res.reasons == {"bad_type:created_utc": 1}


def test_ten_megabyte_line_is_oversize_and_kept_truncated():
    big = comment("big", "alice", "pics", JAN, body="x" * 10_000_000)
    res = parse([comment("a", "x", "pics", JAN), big], raw_cap_bytes=100)
    q = res.quarantine.to_pylist()
    assert [r["reason"] for r in q] == ["oversize"]
    assert q[0]["raw_len"] == len(big) and q[0]["raw"] == big[:100] and q[0]["line_no"] == 2


def test_quarantine_keeps_raw_bytes_author_and_line_numbers():
    bad = comment("x1", "mallory", "pics", JAN, score="12")
    res = parse_chunk(comment("a", "x", "pics", JAN) + b"\n" + bad + b"\n", 41, opts())
    (q,) = res.quarantine.to_pylist()
    assert q["line_no"] == 42 and q["raw"] == bad and q["raw_len"] == len(bad)
    assert q["author"] == "mallory" and q["kind"] == "comments" and q["source_file"] == "RC_2016-01.zst"
    assert res.bronze.column("line_no").to_pylist() == [41]


def test_chunk_result_does_not_depend_on_how_lines_are_grouped():
    """The fast path (whole chunk) and the slow path (a bad line forces per-line naming) agree."""
    lines = [comment(f"c{i}", f"user{i % 7}", "pics", JAN + i, score=i) for i in range(40)]
    lines[5] = comment("c5", "u", "pics", JAN, score="12")
    lines[17] = b"{broken"
    lines[30] = comment("c30", "u", "pics", JAN).replace(b"a comment", b"\\ud800 lone surrogate")
    whole = parse(lines)
    singles = [parse_chunk(line + b"\n", i + 1, opts()) for i, line in enumerate(lines)]
    assert whole.bronze.to_pylist() == [r for s in singles for r in s.bronze.to_pylist()]
    assert whole.quarantine.to_pylist() == [r for s in singles for r in s.quarantine.to_pylist()]
    good_only = [x for i, x in enumerate(lines) if i not in (5, 17)]
    fast = parse(good_only)  # no bad line: the fast path
    assert fast.bronze.column("id").to_pylist() == whole.bronze.column("id").to_pylist()


def test_typed_columns_and_arctic_meta():
    line = comment("a1", "alice", "pics", JAN, score=-3, stickied=True, controversiality="1", retrieved_on=DROP,
                   retrieved_utc=1_600_000_000, _meta={"retrieved_2nd_on": 1_700_000_000})
    (row,) = parse([line]).bronze.to_pylist()
    assert row["score"] == -3 and row["stickied"] is True and row["controversiality"] == 1
    assert row["retrieved_on"] == 1_600_000_000 and row["retrieved_2nd_on"] == 1_700_000_000
    assert row["ingested_at"].year == 2023 and row["source_file"] == "RC_2016-01.zst"


def test_submission_images_preview_and_gallery_extraction():
    mm = {"b2": {"status": "valid", "s": {"u": "https://preview.redd.it/b2.jpg?width=10&amp;s=abc"}},
          "a1": {"status": "valid", "s": {"u": "https://preview.redd.it/a1.jpg?width=10&amp;s=def"}},
          "zz": {"status": "failed"}}
    gd = {"items": [{"media_id": "a1"}, {"media_id": "b2"}, {"media_id": "zz"}]}
    post = submission("s1", "alice", "pics", JAN, media_metadata=mm, gallery_data=gd, is_gallery=True,
                      preview={"images": [{"source": {"url": "https://external-preview.redd.it/p.jpg?a=1&amp;b=2"}}]})
    (row,) = parse([post], kind="submissions").bronze.to_pylist()
    assert row["gallery_urls"] == ["https://preview.redd.it/a1.jpg?width=10&amp;s=def",
                                   "https://preview.redd.it/b2.jpg?width=10&amp;s=abc"]
    assert row["preview_urls"] == ["https://external-preview.redd.it/p.jpg?a=1&amp;b=2"]
    assert row["is_gallery"] is True
    assert gallery_urls(None, None) is None and preview_urls('{"images": "odd"}') is None


def test_zst_split_into_line_aligned_chunks(tmp_path):
    lines = [comment(f"c{i}", "alice", "pics", JAN + i, body="word " * (i % 50)) for i in range(3000)]
    path = write_lines(tmp_path / "RC_2016-01.zst", lines)
    chunks = split_file(path, 0, 50_000, tmp_path / "chunks")
    assert len(chunks) > 5
    assert sum(c.n_lines for c in chunks) == 3000
    assert [c.first_line_no for c in chunks] == [1] + [sum(c.n_lines for c in chunks[:i]) + 1 for i in range(1, len(chunks))]
    joined = b"".join(read_chunk(c) for c in chunks)
    assert joined == b"\n".join(lines) + b"\n" and all(read_chunk(c).endswith(b"\n") for c in chunks)


def test_zst_chunks_do_not_depend_on_how_the_decompressor_cuts_its_output(tmp_path, monkeypatch):
    """Chunks are cut from the decompressor's pieces without joining them: whatever the pieces'
    sizes, the chunks are the greedy line-aligned cut of the whole stream (a line longer than a
    chunk is one chunk; a last line without newline counts)."""
    import random

    import zipp.etl.split as split

    rnd = random.Random(7)
    lines = [b"x" * rnd.choice([0, 5, 40, 300]) for _ in range(400)] + [b"y" * 2500] + [b"z" * 30 for _ in range(50)]
    data = b"\n".join(lines)  # no final newline
    limit = 1000

    def reference(buf: bytes) -> list[bytes]:
        out = []
        while len(buf) >= limit and (cut := buf.rfind(b"\n", 0, limit) + 1 or buf.find(b"\n", limit) + 1):
            out.append(buf[:cut])
            buf = buf[cut:]
        return out + [buf] if buf else out

    for trial in range(5):
        sizes, pos = [], 0
        while pos < len(data):
            sizes.append(rnd.choice([1, 7, 333, 999, 1500, 4096]))
            pos += sizes[-1]
        pieces = [data[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(len(sizes))]
        monkeypatch.setattr(split, "decompressed_pieces", lambda _path, pieces=pieces: iter(pieces))
        chunks = split_file(tmp_path / "RC_2016-01.zst", 0, limit, tmp_path / f"c{trial}")
        assert [read_chunk(c) for c in chunks] == reference(data)
        assert [c.n_lines for c in chunks] == [count_lines(b) for b in reference(data)]
        assert sum(c.n_lines for c in chunks) == len(lines)


def test_plain_file_chunks_are_ranges_and_last_line_without_newline_counts(tmp_path):
    lines = [comment(f"c{i}", "alice", "pics", JAN) for i in range(200)]
    path = write_lines(tmp_path / "arctic_2016-01_comments.ndjson", lines, final_newline=False)
    chunks = split_file(path, 0, 4_000, None)
    assert sum(c.n_lines for c in chunks) == 200 and all(c.path == str(path) for c in chunks)
    res = [parse_chunk(read_chunk(c), c.first_line_no, opts()) for c in chunks]
    assert sum(r.bronze.num_rows for r in res) == 200 and res[-1].bronze.column("line_no").to_pylist()[-1] == 200


def test_truncated_zst_keeps_whole_lines_and_flags_the_tail(tmp_path):
    import random

    rnd = random.Random(1)
    lines = [comment(f"c{i}", "alice", "pics", JAN, body="".join(rnd.choices("abcdefghij ", k=300))) for i in range(3000)]
    path = write_truncated_zst(tmp_path / "RC_2016-01.zst", lines, keep=0.5)
    chunks = split_file(path, 0, 100_000, tmp_path / "chunks")
    tail = chunks[-1]
    assert tail.tail_reason == "truncated" and tail.n_lines == 1
    complete = sum(c.n_lines for c in chunks[:-1])
    assert 500 < complete < 3000
    data = b"".join(read_chunk(c) for c in chunks)
    assert (b"\n".join(lines) + b"\n").startswith(data)


def test_multiple_frames_and_empty_files(tmp_path):
    a, b = comment("a", "x", "pics", JAN), comment("b", "x", "pics", JAN)
    p = tmp_path / "RC_2016-01.zst"
    p.write_bytes(zst_bytes(a + b"\n") + zst_bytes(b + b"\n"))
    assert b"".join(read_chunk(c) for c in split_file(p, 0, 1000, tmp_path / "c")) == a + b"\n" + b + b"\n"
    empty_zst = tmp_path / "RS_2016-01.zst"
    empty_zst.write_bytes(zst_bytes(b""))
    empty_plain = write_lines(tmp_path / "RS_2016-02.ndjson", [])
    assert split_file(empty_zst, 0, 1000, tmp_path / "c") == [] and split_file(empty_plain, 0, 1000, None) == []
    garbage = tmp_path / "RC_2016-03.zst"
    garbage.write_bytes(b"definitely not zstd")
    (chunk,) = split_file(garbage, 0, 1000, tmp_path / "c")
    assert chunk.tail_reason == "corrupt_input"


def test_split_waits_for_staging_room_until_a_parse_frees_it(tmp_path):
    """A split stages a chunk only while the staged chunks leave room for it: here a second thread
    plays the parse tasks and deletes the oldest chunk every 20 ms, and the staged bytes never pass
    the limit while all 30 chunks go through."""
    import threading
    import time

    lines = [comment(f"c{i}", "alice", "pics", JAN + i, body="w" * 200) for i in range(3000)]
    path = write_lines(tmp_path / "RC_2016-01.zst", lines)
    root, limit = tmp_path / "chunks", 4 * 25_000
    room = StagingRoom(root, limit, slots=2)
    room.enter(0)
    peak, done, parsed = [0], threading.Event(), []

    def parse_tasks():
        while not done.is_set() or any(root.glob("f*/*.ndjson")):
            staged = sorted(root.glob("f*/*.ndjson"))
            peak[0] = max(peak[0], sum(p.stat().st_size for p in staged))
            if staged:
                parsed.append(staged[0].name)
                staged[0].unlink()
            time.sleep(0.02)

    t = threading.Thread(target=parse_tasks)
    t.start()
    try:
        chunks = split_file(path, 0, 25_000, root / "f00000", room)
    finally:
        done.set()
        t.join()
    assert len(chunks) == len(parsed) > 20 and sum(c.n_lines for c in chunks) == 3000
    assert 0 < peak[0] <= limit and room.waited_s > 0


def test_split_never_waits_where_no_slot_is_left_for_parsing_and_stops_on_abort_or_stall(tmp_path):
    root = tmp_path / "chunks"
    (root / "f00000").mkdir(parents=True)
    (root / "f00000" / "f00000-000000-1-10.ndjson").write_bytes(b"x" * 900)
    # local[1] (or as many splits as slots): a waiting split would hold the slot its parse tasks need
    lone = StagingRoom(root, 1000, slots=1)
    lone.enter(0)
    lone.wait_for(500)
    assert lone.waited_s == 0
    # a parse task failed: nothing will drain the folder, so the split fails at once
    room = StagingRoom(root, 1000, slots=4)
    (root / "_abort").touch()
    with pytest.raises(RuntimeError, match="parse task of this run failed"):
        room.wait_for(500)
    (root / "_abort").unlink()
    # nothing parsed for stall_s: stage on, and no more waiting for this split
    room = StagingRoom(root, 1000, slots=4, stall_s=0.2, poll_s=0.01)
    room.wait_for(500)
    assert 0.2 <= room.waited_s < 5
    room.wait_for(500)
    assert room.waited_s < 5
    # an empty folder always takes the next chunk, however big
    (root / "f00000" / "f00000-000000-1-10.ndjson").unlink()
    fresh = StagingRoom(root, 1000, slots=4)
    fresh.wait_for(10_000)
    assert fresh.waited_s == 0


def test_file_names_give_kind_and_month(tmp_path):
    assert parse_name("RC_2016-01.zst") == ("comments", "2016-01")
    assert parse_name("RS_2017-09.head1000.zst") == ("submissions", "2017-09")
    assert parse_name("arcticshift_2024-02_comments.sample.ndjson") == ("comments", "2024-02")
    assert parse_name("submissions_2024-02.jsonl") == ("submissions", "2024-02")
    assert parse_name("RC_2016-01.zst.part") is None and parse_name("x_2016-13_comments.ndjson") is None
    write_lines(tmp_path / "RC_2016-01.zst", [b"{}"])
    write_lines(tmp_path / "sub" / "RS_2016-02.ndjson", [b"{}"])
    write_lines(tmp_path / "notes.json", [b"{}"])
    write_lines(tmp_path / "truth" / "manifest.json", [b"{}"])
    found, skipped = discover(tmp_path)
    assert [(f.rel, f.kind, f.month) for f in found] == [("RC_2016-01.zst", "comments", "2016-01"),
                                                         ("sub/RS_2016-02.ndjson", "submissions", "2016-02")]
    assert skipped == ["notes.json"]
    assert [f.month for f in discover(tmp_path, ["2016-02"])[0]] == ["2016-02"]
    assert found[0].sha256() == hashlib.sha256((tmp_path / "RC_2016-01.zst").read_bytes()).hexdigest()


def test_promoted_ads_have_their_own_reason():
    ad = submission("ad1", "Podify", DROP, JAN, promoted=True)
    res = parse([submission("s1", "alice", "pics", JAN), ad], kind="submissions")
    assert res.reasons == {"promoted_ad": 1}


def test_forgotten_authors_become_content_free_quarantine_rows():
    from zipp.etl.parse import drop_forgotten
    from zipp.identity import user_key

    res = parse([comment("a", "alice", "pics", JAN), comment("b", "bob", "pics", JAN), b"bad"])
    res = drop_forgotten(res, frozenset({user_key("alice", "s")}), "s", opts())
    assert res.bronze.column("author").to_pylist() == ["bob"]
    assert [(r["line_no"], r["reason"], r["raw"], r["author"]) for r in res.quarantine.to_pylist()] == [
        (1, "forgotten", b"", None), (3, "invalid_json", b"bad", None)]


def test_a_parsed_chunk_is_deleted_and_a_retried_task_returns_its_counts(tmp_path):
    """Staging holds only the chunks in flight: a parse task deletes its staged chunk once its files
    and counts are written, and a retry (or a speculative twin) of the task returns those counts."""
    from zipp.config import EtlConfig
    from zipp.etl.bronze import parse_one
    from zipp.etl.sources import SourceFile

    lines = [comment(f"c{i}", "alice", "pics", JAN + i) for i in range(300)] + [b"{not json"]
    path = write_lines(tmp_path / "RC_2016-01.zst", lines)
    src = SourceFile(str(path), "RC_2016-01.zst", "comments", "2016-01", path.stat().st_size, 0)
    chunks = split_file(path, 0, 8_000, tmp_path / "chunks")
    assert len(chunks) > 3
    out = tmp_path / "out"
    first = [parse_one(c, src, 0, EtlConfig(), str(out), frozenset(), "salt").to_pylist()[0] for c in chunks]
    assert not any(Path(c.path).exists() for c in chunks)
    written = sorted(p.name for p in out.rglob("*.parquet"))
    again = [parse_one(c, src, 0, EtlConfig(), str(out), frozenset(), "salt").to_pylist()[0] for c in chunks]
    assert again == first and sorted(p.name for p in out.rglob("*.parquet")) == written
    assert sum(r["lines"] for r in first) == 301 and sum(r["quarantine_rows"] for r in first) == 1
    with pytest.raises(FileNotFoundError):  # a chunk that was never parsed is not silently skipped
        Path(chunks[0].path + ".done").unlink()
        parse_one(chunks[0], src, 0, EtlConfig(), str(out), frozenset(), "salt")
