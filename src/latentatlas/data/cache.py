"""The pre-decoded image cache: every source becomes one uint8 array (n, S, S, 3) at the configured size.

It is decoded once into `<cache>/<key>.npy` (memory-mapped on later loads) with `<key>.parquet` (meta)
and `<key>.json` (manifest, written last, so its presence means the entry is complete).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from latentatlas import checks
from latentatlas.config import DIGITS_SOURCE, SYNTHETIC_SOURCE, DataConfig
from latentatlas.data.decode import DECODE_ERRORS, decode_error_reason, decode_image
from latentatlas.data.digits import DIGITS_COUNT, digits_into
from latentatlas.data.sources import Source, celeba_text_fingerprint, plan_file_source, resolve_source
from latentatlas.data.synthetic import synthetic_into
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path, read_json, usable_cores, write_json
from latentatlas.progress import Progress

# Bump when decoding, cropping or the synthetic renderer changes: old cache entries then stop matching.
CACHE_FORMAT_VERSION = 2
_DECODE_BLOCK = 256  # images per worker task: few enough tasks, fine enough progress
_PARALLEL_MIN_IMAGES = 1024  # below this, starting worker processes costs more than it saves


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
    """Worker processes for decoding n images: one per usable core (at most 8), none for small sets, where
    starting processes costs more than it saves."""
    if n < _PARALLEL_MIN_IMAGES:
        return 1
    return min(8, usable_cores())


def _decode_block(path: Path, source: Source, members: list[str], start: int, image_size: int) -> list[str]:
    """Decode `members` into rows start, start+1, ... of the .npy memmap at `path` (opened here, so a worker
    process holds one image at a time); returns per row "" when it decoded, else why not."""
    out = np.load(path, mmap_mode="r+")
    reasons = [""] * len(members)
    with source.reader() as read:
        for i, name in enumerate(members):
            try:
                out[start + i] = decode_image(read(name), image_size, source.crop_fraction, name=name)
            except DECODE_ERRORS as exc:
                reasons[i] = decode_error_reason(exc) or "not decodable"
    out.flush()
    return reasons


def _decode_into(
    path: Path, source: Source, members: list[str], image_size: int, progress: bool, workers: int | None = None
) -> list[str]:
    """Decode `members` into the rows of the .npy at `path`, in blocks, on `workers` processes; returns per
    row "" when it decoded, else the reason. Only block results travel back: RAM stays bounded by the blocks."""
    reasons = [""] * len(members)
    workers = _decode_worker_count(len(members)) if workers is None else workers
    light = replace(source, members=[], fingerprint=[], skipped=[])  # what a worker needs, cheap to send
    blocks = [(start, members[start : start + _DECODE_BLOCK]) for start in range(0, len(members), _DECODE_BLOCK)]
    bar = Progress(len(members), "decoding images", "img", enabled=progress, lines=False)
    with bar:
        if workers <= 1:
            for start, block in blocks:
                reasons[start : start + len(block)] = _decode_block(path, light, block, start, image_size)
                bar.update(len(block))
            return reasons
        # forkserver: a clean process to fork workers from, never a copy of a parent holding torch's threads.
        context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {
                pool.submit(_decode_block, path, light, block, start, image_size): start for start, block in blocks
            }
            for future in as_completed(futures):
                block_reasons = future.result()
                start = futures[future]
                reasons[start : start + len(block_reasons)] = block_reasons
                bar.update(len(block_reasons))
    return reasons


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
        print(f"latentatlas: warning: skipped {len(skipped)} file(s): {shown}", file=sys.stderr)


def _builtin_count(config: DataConfig) -> int:
    total = DIGITS_COUNT if config.source == DIGITS_SOURCE else config.synthetic_count
    return total if config.limit is None else min(total, config.limit)


def _write_builtin(path: Path, config: DataConfig, progress: bool) -> pd.DataFrame:
    """Render (synthetic faces) or copy (digits) a built-in source straight into a memmap at `path`."""
    n, size = _builtin_count(config), config.image_size
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    if config.source == DIGITS_SOURCE:
        meta = digits_into(out, n, size)
    else:
        meta = synthetic_into(out, n, size, config.synthetic_seed, progress, config.synthetic_classes)
    out.flush()
    return meta


def _write_decoded(
    path: Path, source: Source, meta: pd.DataFrame, size: int, progress: bool, workers: int | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Decode straight into a memmap at `path` (so no more than one image at a time sits in memory per
    worker); returns the meta of the images that decoded and the paths of those that did not."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(meta), size, size, 3))
    out.flush()
    members = [name[len(source.prefix) :] for name in meta["path"]]
    reasons = _decode_into(path, source, members, size, progress, workers)
    ok = np.array([not reason for reason in reasons], dtype=bool)
    if ok.all():
        return meta, []
    skipped = [f"{name} ({reason})" for name, reason in zip(meta["path"], reasons) if reason]
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
    workers: int | None = None,
) -> ImageSet:
    """Decode the source once into the cache entry `key`; npy and parquet first, the manifest last."""
    npy, parquet, manifest_path = _cache_paths(cache_dir, key)
    with atomic_path(npy) as tmp:
        if source is None or plan is None:
            meta, skipped = _write_builtin(tmp, config, progress), []
        else:
            meta, skipped = _write_decoded(tmp, source, plan, config.image_size, progress, workers)
            skipped = [*source.skipped, *skipped]
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
    if config.source == DIGITS_SOURCE:
        return {**common, "source": DIGITS_SOURCE}, None
    if config.is_synthetic:
        description = {
            **common,
            "source": SYNTHETIC_SOURCE,
            "count": config.synthetic_count,
            "seed": config.synthetic_seed,
        }
        if config.synthetic_classes > 1:  # one class keeps the key (and cache entries) of earlier versions
            description["classes"] = config.synthetic_classes
        return description, None
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


def _check_disk_space(cache_dir: Path, needed: int) -> None:
    """Refuse a cache entry the disk cannot hold, before writing any of it."""
    free = shutil.disk_usage(cache_dir).free
    if needed > free:
        raise LatentAtlasError(
            f"the decoded images need {needed / 2**30:.1f} GiB in the image cache {cache_dir}, "
            f"which has {free / 2**30:.1f} GiB free (set LATENTATLAS_CACHE, or use --limit)"
        )


def load_images(
    config: DataConfig, cache_dir: str | Path | None = None, progress: bool = True, workers: int | None = None
) -> ImageSet:
    """The configured images as uint8 (n, S, S, 3), decoded once into the cache and memory-mapped after.

    The first use decodes on `workers` processes (default: one per core for 1,024 images or more).
    """
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
    n = len(plan) if plan is not None else _builtin_count(config)
    _check_disk_space(cache_dir, n * config.image_size**2 * 3)
    if workers is not None:
        checks.positive_int(workers, "decoding workers", maximum=256)
    return _build_entry(config, cache_dir, key, description, source, plan, progress, workers)
