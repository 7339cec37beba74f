"""Does the GAT learn the planted communities of a generated dump? The #4 done-when, end to end.

Runs what a user runs, as subprocesses of the ``zipp`` CLI on one scratch folder:
``generate-dump`` (planted interest communities, ground truth in ``truth/``) -> ``ingest`` (Spark ETL
to gold) -> ``train`` (Ray Train) -> ``embed-users`` (attention export), once per seed, and then reports

* test posting accuracy, AUC and Hits@10 of the trained model vs the popularity baseline (the
  trainer's own figures, ``<run>/model/metrics.json``);
* the references of ``bench/graph_ceiling.py`` on the same split and negatives: item-kNN, FISM and
  what knowing the planted communities / interests would reach (the attainable ceiling);
* how often a user's top-attention subreddit (mean over heads, per layer) lies in one of the user's
  planted interests, vs chance (a uniformly random one of the user's subreddits) and vs the
  subreddit with the most activity. Users with >= 2 subreddits, and "mixed": only users with both
  on- and off-interest subreddits.

    python bench/graph_quality.py --users 10000 --work /tmp/gq [--seeds 0,1,2] [graph.key=value ...]

Steps whose output exists are reused (delete the folder to start over); ``--tag`` prefixes the run
names, to compare settings on one dump. With ``--images`` the dump gets images, ``embed-images``
runs (tiny random-weight CLIP: not meaningful for ImageAlign) and each seed also trains the
lambda=0 ablation. About 1 minute to generate and ingest and 4 minutes per seed for 10,000 users
on 2 cores. Writes ``bench/out/graph_quality[-TAG].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def zipp(*args: str) -> float:
    """Run one ``zipp`` command; its seconds. Its output goes to the terminal."""
    cmd = [str(Path(sys.executable).parent / "zipp"), *args]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def attention_vs_truth(lake: Path, truth: Path, salt: str, run: str) -> dict:
    """:func:`zipp.graph.evaluate.attention_vs_interests` of ``run``'s exported attention against the
    dump's planted interests, with comments + submissions as the activity baseline."""
    import numpy as np
    import pandas as pd

    from zipp import tables as T
    from zipp.graph.evaluate import attention_vs_interests
    from zipp.identity import user_key
    from zipp.lake import read_arrow

    users = pd.read_parquet(truth / "users.parquet")
    subs = pd.read_parquet(truth / "subreddits.parquet")
    interests = {user_key(a, salt): set(i) for a, i in zip(users.author, users.interests)}
    community = dict(zip(subs.subreddit.str.lower(), subs.community))
    att = read_arrow(lake, T.GOLD_ATTENTION, columns=["user_key", "subreddit", "layer", "head", "attention"],
                     filters=[("run", "=", run)]).to_pandas()
    edges = read_arrow(lake, T.GOLD_EDGES, columns=["user_key", "subreddit", "n_comments", "n_submissions"]).to_pandas()
    edges["activity"] = edges.n_comments + edges.n_submissions
    att = att.merge(edges[["user_key", "subreddit", "activity"]], on=["user_key", "subreddit"], how="left")
    att = att[att.user_key.isin(interests)]  # persona users (bots and deleted authors have no truth)
    att["on"] = np.array([community.get(s, "?") in interests[u] for u, s in zip(att.user_key, att.subreddit)])
    return attention_vs_interests(att, activity="activity")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--work", default="/tmp/zipp-graph-quality")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--images", action="store_true", help="dump with images, embed-images, and the lambda=0 ablation")
    ap.add_argument("--tag", default="", help="prefix of the run names (compare settings on one dump)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out"))
    ap.add_argument("overrides", nargs="*", help="graph.key=value settings for every training run")
    args = ap.parse_args()

    from graph_ceiling import references

    from zipp.config import load_config

    work = Path(args.work).resolve()
    dump, lake, runs = work / "dump", work / "lake", work / "runs"
    where = [f"paths.work={work}", f"paths.lake={lake}", f"paths.runs={runs}", f"paths.dump={dump}",
             f"paths.cache={work / 'cache'}"]
    cfg = load_config("local", where + args.overrides)
    salt = os.environ.get(cfg.etl.user_salt_env) or cfg.etl.user_salt
    seconds: dict[str, float] = {}
    if not (dump / "truth" / "users.parquet").is_file():
        seconds["generate"] = zipp("generate-dump", "--out", str(dump), "--users", str(args.users),
                                   f"generate.images={str(args.images).lower()}", *where)
    if not (lake / "gold" / "user_subreddit_edges").is_dir():
        seconds["ingest"] = zipp("ingest", "--input", str(dump), "--lake", str(lake), *where)
    if args.images and not (lake / "gold" / "image_embeddings").is_dir():
        seconds["embed_images"] = zipp("embed-images", "--lake", str(lake), *where)

    report: dict = {"users": args.users, "work": str(work), "overrides": args.overrides,
                    "references": references(lake, dump / "truth", salt, cfg.graph), "runs": {}}
    weights = [0.1, 0.0] if args.images else [0.0]
    for seed in [int(s) for s in args.seeds.split(",")]:
        for lam in weights:
            name = f"{args.tag}s{seed}-lambda{lam:g}"
            run = runs / name
            sets = [*where, *args.overrides, f"graph.seed={seed}", f"graph.image_align_weight={lam}"]
            if not (run / "model" / "metrics.json").is_file():
                seconds[f"train {name}"] = zipp("train", "--lake", str(lake), "--run", name, *sets)
            seconds[f"embed-users {name}"] = zipp("embed-users", "--lake", str(lake), "--run", name, *sets)
            m = json.loads((run / "model" / "metrics.json").read_text())
            report["runs"][name] = {"best_epoch": m["best_epoch"], "last_epoch": m["last_epoch"],
                                    "test": {k: round(v, 4) for k, v in m["test"].items()},
                                    "attention": attention_vs_truth(lake, dump / "truth", salt, name)}
    report["seconds"] = {k: round(v, 1) for k, v in seconds.items()}

    refs = report["references"]["test_posting_accuracy"]
    print(f"\n{'test posting accuracy':<34}{'acc':>8}{'AUC':>8}")
    for k, v in refs.items():
        print(f"{'  ' + k:<34}{v['acc']:>8.4f}{v['auc']:>8.4f}")
    for name, r in report["runs"].items():
        t = r["test"]
        print(f"{'  GATv2 ' + name:<34}{t['test_acc']:>8.4f}{t['test_auc']:>8.4f}   "
              f"(popularity {t['test_pop_acc']:.4f}; Hits@10 {t['test_hits']:.4f} vs {t['test_pop_hits']:.4f}; "
              f"best epoch {r['best_epoch']}/{r['last_epoch']})")
    print("\ntop-attention subreddit in a planted interest (mixed users): model / chance / most activity")
    for name, r in report["runs"].items():
        for layer, res in r["attention"].items():
            m = res["mixed"]
            heads = ", ".join(f"{v:.2f}" for v in res["per_head"].values())
            print(f"  {name} {layer}: {m['top_attention_on_interest']:.3f} / {m['chance']:.3f} / {m['most_activity']:.3f}"
                  f"  ({m['users']} users; single heads: {heads})")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"graph_quality{'-' + args.tag if args.tag else ''}.json").write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
