"""Time the image cache: the first load (decode everything, on 1, 2, ... worker processes) against a
cached load (memory-map only).

    python benchmarks/data_cache.py [SOURCE] [--image-size 64] [--limit N] [--workers 1,2]

SOURCE defaults to ../shared/data/celeba-10k; "synthetic-faces" times the built-in generator instead.
Each first load goes to a fresh temporary cache folder, so earlier runs never make it look fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from latentatlas.data import DataConfig, load_images
from latentatlas.errors import LatentAtlasError

DEFAULT_SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--workers", default="1,2", help="decoding worker processes to compare, e.g. 1,2,4")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    print(f"source       {args.source} at {args.image_size}x{args.image_size}, {os.cpu_count()} CPUs visible")
    try:
        config = DataConfig(source=args.source, image_size=args.image_size, limit=args.limit)
        checksums = set()
        for count in workers:
            with tempfile.TemporaryDirectory(prefix="latentatlas-bench-") as cache:
                start = time.perf_counter()
                first = load_images(config, cache_dir=cache, progress=False, workers=count)
                decode_s = time.perf_counter() - start
                n = len(first.images)
                print(
                    f"first load   {count} worker(s): {decode_s:.2f} s, {n / decode_s:.0f} images/s "
                    f"({n} images, {len(first.skipped)} skipped)",
                    flush=True,
                )
                start = time.perf_counter()
                cached = load_images(config, cache_dir=cache, progress=False)
                checksums.add(int(np.asarray(cached.images[:: max(1, n // 100)], dtype=np.int64).sum()))
                cached_s = time.perf_counter() - start
        print(f"cached load  {cached_s:.3f} s (memory-mapped: {type(cached.images).__name__})")
        print(f"identical    {len(checksums) == 1} (checksum over every run's images)")
    except LatentAtlasError as exc:
        print(f"data_cache: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
