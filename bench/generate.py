"""Benchmark the synthetic dump generator.

    python bench/generate.py                       # 2000 users x 4 months, images on
    python bench/generate.py --users 20000 --months 2020-05:2020-08 --no-images

Prints lines/s and uncompressed MB/s by wall clock and by CPU time of this process (the generator is
single-threaded, so CPU time is what one core delivers even on a busy machine), and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zipp.config import GenerateConfig
from zipp.generate import generate_dump


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--months", default="2020-05:2020-08")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bad-rate", type=float, default=0.005)
    ap.add_argument("--format", choices=["pushshift", "arctic"], default="pushshift")
    ap.add_argument("--no-images", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one, removed after)")
    ap.add_argument("--json", action="store_true", help="print the full summary as JSON too")
    a = ap.parse_args()
    cfg = GenerateConfig(users=a.users, months=a.months, seed=a.seed, bad_rate=a.bad_rate, format=a.format, images=not a.no_images)
    tmp = None
    out = a.out
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="zipp-bench-gen-"))
        out = tmp / "dump"
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        s = generate_dump(cfg, out)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines, mb = s["total_lines"], s["uncompressed_mb"]
    print(f"config: users={a.users} months={a.months} format={a.format} images={not a.no_images} bad_rate={a.bad_rate}")
    print(f"lines: {lines:,}  uncompressed: {mb:.1f} MB  compressed: {s['compressed_mb']:.1f} MB  images: {s['n_images_written']:,}")
    print(f"wall: {wall:.2f} s  -> {lines / wall:,.0f} lines/s, {mb / wall:.1f} MB/s")
    print(f"cpu:  {cpu:.2f} s  -> {lines / cpu:,.0f} lines/s, {mb / cpu:.1f} MB/s (one core)")
    print(f"peak RSS: {peak_mib:.0f} MiB")
    if a.json:
        print(json.dumps(s, indent=2))


if __name__ == "__main__":
    main()
