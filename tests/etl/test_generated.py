"""A dump from `zipp.generate` (its bad lines, ads, re-crawls, bots and deleted authors planted on
purpose) through `zipp ingest`, reconciled with the generator's ground truth."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from zipp import lake as lakeio
from zipp.identity import user_key

pytestmark = [pytest.mark.spark]

# generator bad-line kind -> the ETL's quarantine reasons
KIND_TO_REASONS = {
    "truncated": ("invalid_json",), "non_object": ("not_an_object",), "invalid_utf8": ("invalid_utf8",),
    "empty_line": ("empty_line",), "oversize": ("oversize",),
    "missing_key": ("missing:id", "missing:author", "missing:subreddit"),
    "wrong_type": ("bad_type:score", "bad_type:created_utc"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory, etl_cli):
    from zipp.config import GenerateConfig
    from zipp.generate import generate_dump

    root = tmp_path_factory.mktemp("gen")
    dump, lake, runs = root / "dump", root / "lake", root / "runs"
    generate_dump(GenerateConfig(users=300, months="2015-11:2016-01", bad_rate=0.01, images=False, seed=7), dump)
    code, out = etl_cli("ingest", "--input", dump, "--lake", lake, "--run", "gen", f"paths.runs={runs}")
    assert code == 0, out
    return {"dump": dump, "lake": lake, "out": out, "truth": json.loads((dump / "truth" / "manifest.json").read_text()),
            "bad": json.loads((dump / "truth" / "bad_lines.json").read_text()),
            "manifest": json.loads((runs / "gen" / "manifest.json").read_text())}


def test_lines_and_bad_lines_per_file_match_the_truth(generated):
    files = {f["source_file"]: f for f in generated["manifest"]["bronze"]["files"]}
    assert set(files) == set(generated["truth"]["files"])
    for name, truth in generated["truth"]["files"].items():
        f = files[name]
        assert f["lines"] == truth["total_lines"], name
        assert f["quarantine_rows"] == truth["bad_lines"] + truth["ads"], name
        assert f["reasons"].get("promoted_ad", 0) == truth["ads"], name
        for kind, n in generated["bad"]["per_file"][name].items():
            assert sum(f["reasons"].get(r, 0) for r in KIND_TO_REASONS[kind]) == n, (name, kind)


def test_recrawls_deduplicated_and_per_user_counts_match_the_truth(generated):
    import pyarrow.parquet as pq

    lake, dump = generated["lake"], generated["dump"]
    comments = lakeio.read_arrow(lake, "silver/comments", columns=["id", "author"]).to_pylist()
    subs = lakeio.read_arrow(lake, "silver/submissions", columns=["id", "author", "is_image"]).to_pylist()
    assert len({r["id"] for r in comments}) == len(comments) and len({r["id"] for r in subs}) == len(subs)
    dups = pq.read_table(dump / "truth" / "duplicates.parquet").to_pylist()
    total_dups = sum(f["duplicate_ids"] for f in generated["truth"]["files"].values())
    assert len(dups) == total_dups > 0
    bronze_n = sum(f["bronze_rows"] for f in generated["manifest"]["bronze"]["files"])
    assert len(comments) + len(subs) == bronze_n - total_dups
    n_c, n_s = Counter(r["author"] for r in comments), Counter(r["author"] for r in subs)
    n_img = Counter(r["author"] for r in subs if r["is_image"])
    users = pq.read_table(dump / "truth" / "users.parquet").to_pylist()
    for u in users:
        assert (n_c[u["author"]], n_s[u["author"]], n_img[u["author"]]) == \
            (u["n_comments"], u["n_submissions"], u["n_image_posts"]), u["author"]
    assert n_c["[deleted]"] + n_s["[deleted]"] == sum(u["n_deleted_lines"] for u in users)


def test_bots_are_flagged_and_gold_counts_people_only(generated):
    import pyarrow.parquet as pq

    lake, dump = generated["lake"], generated["dump"]
    users = pq.read_table(dump / "truth" / "users.parquet").to_pylist()
    flagged = {r["author"] for r in lakeio.read_arrow(lake, "silver/comments", columns=["author", "is_bot"]).to_pylist()
               if r["is_bot"]}
    assert flagged == {u["author"] for u in users if u["is_bot"] and u["n_comments"]}
    gold = {r["user_key"]: r for r in lakeio.read_arrow(lake, "gold/users").to_pylist()}
    salt = "zipp-local-dev-salt"
    people = [u for u in users if not u["is_bot"] and (u["n_comments"] or u["n_submissions"])]
    assert len(gold) == len(people)
    for u in people:
        g = gold[user_key(u["author"], salt)]
        assert (g["n_comments"], g["n_submissions"], g["n_image_posts"]) == (u["n_comments"], u["n_submissions"], u["n_image_posts"])
    edges = lakeio.read_arrow(lake, "gold/user_subreddit_edges").to_pylist()
    assert sum(e["n_comments"] for e in edges) == sum(u["n_comments"] for u in people)
    assert all(generated["manifest"]["gates"][s]["success"] for s in ("bronze", "silver", "gold"))
