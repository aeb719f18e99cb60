"""Time the image cache: the first load (decode everything) against a cached load (memory-map only).

    python benchmarks/data_cache.py [SOURCE] [--image-size 64] [--limit N]

SOURCE defaults to ../shared/data/celeba-10k; "synthetic-faces" times the built-in generator instead.
The cache goes to a fresh temporary folder, so earlier runs never make the first load look fast.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    try:
        config = DataConfig(source=args.source, image_size=args.image_size, limit=args.limit)
        with tempfile.TemporaryDirectory(prefix="latentatlas-bench-") as cache:
            start = time.perf_counter()
            first = load_images(config, cache_dir=cache, progress=False)
            decode_s = time.perf_counter() - start
            start = time.perf_counter()
            cached = load_images(config, cache_dir=cache, progress=False)
            checksum = int(np.asarray(cached.images[:: max(1, len(cached.images) // 100)], dtype=np.int64).sum())
            cached_s = time.perf_counter() - start
    except LatentAtlasError as exc:
        print(f"data_cache: error: {exc}", file=sys.stderr)
        return 2
    n = len(first.images)
    print(f"source       {args.source}")
    print(f"images       {n} at {args.image_size}x{args.image_size} ({len(first.skipped)} skipped)")
    print(f"first load   {decode_s:.2f} s ({n / decode_s:.0f} images/s)")
    print(f"cached load  {cached_s:.3f} s (memory-mapped: {type(cached.images).__name__}, checksum {checksum})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
