"""The pre-decoded image cache: every source becomes one uint8 array (n, S, S, 3) at the configured size.

It is decoded once into `<cache>/<key>.npy` (memory-mapped on later loads) with `<key>.parquet` (meta)
and `<key>.json` (manifest, written last, so its presence means the entry is complete).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from latentatlas.config import SYNTHETIC_SOURCE, DataConfig
from latentatlas.data.decode import DECODE_ERRORS, decode_image
from latentatlas.data.sources import Source, celeba_text_fingerprint, plan_file_source, resolve_source
from latentatlas.data.synthetic import synthetic_into
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path, read_json, write_json

# Bump when decoding, cropping or the synthetic renderer changes: old cache entries then stop matching.
CACHE_FORMAT_VERSION = 2
_DECODE_BLOCK = 64  # images per thread-pool task: few enough tasks, fine enough progress


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (n, H, W, 3), memory-mapped from the cache
    meta: pd.DataFrame  # image_id, path, partition, then CelebA attributes (int8) or synthetic factors (float)
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded

    def __len__(self) -> int:
        return len(self.images)


def default_cache_dir() -> Path:
    """$LATENTATLAS_CACHE, or ~/.cache/latentatlas."""
    configured = os.environ.get("LATENTATLAS_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "latentatlas"


def _decode_worker_count(n: int) -> int:
    return 1 if n < 256 else min(8, os.cpu_count() or 1)


def _decode_into(out: np.ndarray, source: Source, members: list[str], image_size: int, progress: bool) -> np.ndarray:
    """Decode `members` into rows of `out`; returns a bool mask of the rows that decoded."""
    ok = np.zeros(len(members), dtype=bool)
    crop = source.crop_fraction

    def decode_block(start: int) -> int:
        stop = min(start + _DECODE_BLOCK, len(members))
        for i in range(start, stop):
            try:
                out[i] = decode_image(read(members[i]), image_size, crop)
                ok[i] = True
            except DECODE_ERRORS:
                ok[i] = False
        return stop - start

    starts = range(0, len(members), _DECODE_BLOCK)
    bar = tqdm(total=len(members), desc="decoding images", unit="img", disable=None if progress else True)
    with bar, source.reader() as read:
        workers = _decode_worker_count(len(members))
        if workers == 1:
            for start in starts:
                bar.update(decode_block(start))
        else:
            with ThreadPoolExecutor(workers) as pool:
                for done in pool.map(decode_block, starts):
                    bar.update(done)
    return ok


# ----------------------------------------------------------------------------- the cache


def _cache_key(description: dict) -> str:
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path, Path]:
    return cache_dir / f"{key}.npy", cache_dir / f"{key}.parquet", cache_dir / f"{key}.json"


def _load_cached(cache_dir: Path, key: str) -> ImageSet | None:
    npy, parquet, manifest_path = _cache_paths(cache_dir, key)
    if not (manifest_path.is_file() and npy.is_file() and parquet.is_file()):
        return None
    try:
        manifest = read_json(manifest_path)
        images = np.load(npy, mmap_mode="r", allow_pickle=False)
        meta = pd.read_parquet(parquet)
    except (LatentAtlasError, ValueError, OSError):
        return None  # a damaged entry is simply rebuilt
    if images.shape[0] != len(meta) or manifest.get("n_images") != len(meta):
        return None
    return ImageSet(images=images, meta=meta, skipped=list(manifest.get("skipped", [])))


def _warn_skipped(skipped: list[str]) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        print(f"latentatlas: warning: skipped {len(skipped)} unreadable file(s): {shown}", file=sys.stderr)


def _write_synthetic(path: Path, config: DataConfig, progress: bool) -> pd.DataFrame:
    n = config.synthetic_count if config.limit is None else min(config.synthetic_count, config.limit)
    size = config.image_size
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    meta = synthetic_into(out, n, size, config.synthetic_seed, progress)
    out.flush()
    return meta


def _write_decoded(
    path: Path, source: Source, meta: pd.DataFrame, size: int, progress: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Decode straight into a memmap at `path` (so no more than one image at a time sits in memory per
    thread); returns the meta of the images that decoded and the paths of those that did not."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(meta), size, size, 3))
    members = [name[len(source.prefix) :] for name in meta["path"]]
    ok = _decode_into(out, source, members, size, progress)
    out.flush()
    if ok.all():
        return meta, []
    skipped = meta.loc[~ok, "path"].tolist()
    if not ok.any():
        raise LatentAtlasError(f"none of the {len(ok)} image files in {source.root} could be decoded")
    # Copy the good rows into a fresh file in bounded chunks, then swap it in for the one with holes.
    rows = np.flatnonzero(ok)
    with atomic_path(path) as compact_path:
        shape = (len(rows), size, size, 3)
        compact = np.lib.format.open_memmap(compact_path, mode="w+", dtype=np.uint8, shape=shape)
        for start in range(0, len(rows), 4096):
            compact[start : start + 4096] = out[rows[start : start + 4096]]
        compact.flush()
        del compact
    return meta.loc[ok].reset_index(drop=True), skipped


def _build_entry(
    config: DataConfig,
    cache_dir: Path,
    key: str,
    description: dict,
    source: Source | None,
    plan: pd.DataFrame | None,
    progress: bool,
) -> ImageSet:
    """Decode the source once into the cache entry `key`; npy and parquet first, the manifest last."""
    npy, parquet, manifest_path = _cache_paths(cache_dir, key)
    with atomic_path(npy) as tmp:
        if source is None or plan is None:
            meta, skipped = _write_synthetic(tmp, config, progress), []
        else:
            meta, skipped = _write_decoded(tmp, source, plan, config.image_size, progress)
        with atomic_path(parquet) as tmp_parquet:
            meta.to_parquet(tmp_parquet, index=False)
    manifest = {
        "format_version": CACHE_FORMAT_VERSION,
        "key": key,
        "n_images": len(meta),
        "image_size": config.image_size,
        "source": description,
        "config": config.to_dict(),
        "skipped": skipped,
    }
    write_json(manifest_path, manifest)
    _warn_skipped(skipped)
    loaded = _load_cached(cache_dir, key)
    if loaded is None:
        raise LatentAtlasError(f"image cache entry {npy} could not be read back after writing it")
    return loaded


def _describe(config: DataConfig) -> tuple[dict, Source | None]:
    """What identifies the decoded result (hashed into the cache key), and the resolved file source."""
    common = {"format_version": CACHE_FORMAT_VERSION, "image_size": config.image_size, "limit": config.limit}
    if config.is_synthetic:
        return {
            **common,
            "source": SYNTHETIC_SOURCE,
            "count": config.synthetic_count,
            "seed": config.synthetic_seed,
        }, None
    source = resolve_source(config.source)
    if config.partition != "all" and not source.is_celeba:
        raise LatentAtlasError(
            f"partition {config.partition!r} applies to CelebA sources only; {source.root} is not one"
        )
    fingerprint = list(source.fingerprint)
    if source.is_celeba:
        fingerprint += celeba_text_fingerprint(source)
    digest = hashlib.sha256(json.dumps(fingerprint, separators=(",", ":")).encode("utf-8")).hexdigest()
    description = {
        **common,
        "source": str(source.root),
        "kind": source.kind,
        "listing": digest,
        "crop": "celeba-148/178" if source.is_celeba else "centre-square",
        "partition": config.partition if source.is_celeba else "all",
    }
    return description, source


def load_images(config: DataConfig, cache_dir: str | Path | None = None, progress: bool = True) -> ImageSet:
    """The configured images as uint8 (n, S, S, 3), decoded once into the cache and memory-mapped after."""
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    description, source = _describe(config)
    key = _cache_key(description)
    cached = _load_cached(cache_dir, key)
    if cached is not None:
        return cached
    # Planning raises on an empty source or partition, before anything is written.
    plan = plan_file_source(source, config) if source is not None else None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentAtlasError(f"cannot create image cache folder {cache_dir}: {exc.strerror}") from None
    return _build_entry(config, cache_dir, key, description, source, plan, progress)
