"""Image sources (CelebA folder/zip, any image folder/zip, built-in synthetic faces) and the pre-decoded cache.

Every source becomes one uint8 array (n, S, S, 3) at the configured square size. It is decoded once into
`<cache>/<key>.npy` (memory-mapped on later loads) with `<key>.parquet` (meta) and `<key>.json` (manifest,
written last, so its presence means the entry is complete).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path, read_json, write_json

# Bump when decoding, cropping or the synthetic renderer changes: old cache entries then stop matching.
CACHE_FORMAT_VERSION = 2

SYNTHETIC_SOURCE = "synthetic-faces"
PARTITIONS = ("all", "train", "valid", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CELEBA_FOLDER = "img_align_celeba"
CELEBA_ATTRIBUTES = "list_attr_celeba.txt"
CELEBA_PARTITIONS = "list_eval_partition.txt"
# The usual CelebA face crop: a centred 148 x 148 square of the official 178 x 218 image.
CELEBA_CROP_FRACTION = 148 / 178
_PARTITION_CODES = {"0": "train", "1": "valid", "2": "test"}


@dataclass
class DataConfig:
    source: str = SYNTHETIC_SOURCE  # path (CelebA root folder or zip, any image folder or zip) or "synthetic-faces"
    image_size: int = 64
    partition: str = "all"  # CelebA only: all | train | valid | test
    synthetic_count: int = 2000
    synthetic_seed: int = 0
    limit: int | None = None  # keep only the first `limit` images (sorted order, after the partition filter)

    def __post_init__(self) -> None:
        self.source = str(self.source)
        if not self.source:
            raise LatentAtlasError("data source is empty: give a folder, a zip or 'synthetic-faces'")
        if self.source != SYNTHETIC_SOURCE:
            # Absolute, so a run's saved config still finds its images from any working directory.
            self.source = os.path.abspath(os.path.expanduser(self.source))
        if not _is_int(self.image_size) or self.image_size <= 0 or self.image_size % 16:
            raise LatentAtlasError(f"image size must be a positive multiple of 16, got {self.image_size!r}")
        if self.partition not in PARTITIONS:
            raise LatentAtlasError(f"partition must be one of {', '.join(PARTITIONS)}, got {self.partition!r}")
        if not _is_int(self.synthetic_count) or self.synthetic_count <= 0:
            raise LatentAtlasError(f"synthetic count must be a positive integer, got {self.synthetic_count!r}")
        if not _is_int(self.synthetic_seed):
            raise LatentAtlasError(f"synthetic seed must be an integer, got {self.synthetic_seed!r}")
        if self.limit is not None and (not _is_int(self.limit) or self.limit <= 0):
            raise LatentAtlasError(f"limit must be a positive integer or None, got {self.limit!r}")

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC_SOURCE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise LatentAtlasError(f"unknown data config keys: {', '.join(unknown)}")
        return cls(**d)


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (n, H, W, 3), memory-mapped from the cache
    meta: pd.DataFrame  # image_id, path, partition, then CelebA attributes (int8) or synthetic factors (float)
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded

    def __len__(self) -> int:
        return len(self.images)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def default_cache_dir() -> Path:
    """$LATENTATLAS_CACHE, or ~/.cache/latentatlas."""
    configured = os.environ.get("LATENTATLAS_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "latentatlas"


# ----------------------------------------------------------------------------- synthetic faces

# Drawing happens in coordinates where the image spans [-1, 1] on both axes (x right, y down).
_HAIR_PALETTE = np.array(
    [
        [0.07, 0.05, 0.04],
        [0.30, 0.18, 0.09],
        [0.55, 0.35, 0.16],
        [0.86, 0.72, 0.42],
        [0.62, 0.24, 0.10],
        [0.70, 0.70, 0.70],
    ],
    dtype=np.float32,
)
_SKIN_DARK = np.array([0.42, 0.27, 0.18], dtype=np.float32)
_SKIN_LIGHT = np.array([0.98, 0.85, 0.74], dtype=np.float32)
_SYNTHETIC_CHUNK = 32  # images per render batch: the canvas stays cache-friendly


def _synthetic_factors(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Every generating factor for n faces. One (n, k) uniform draw, row by row, so the first m faces of a
    larger set are exactly the m-face set of the same seed (a `limit` just keeps a prefix)."""
    draws = rng.random((n, 25), dtype=np.float32).T
    jitter = draws[19:25].T * 2 - 1  # small skin / hair colour noise
    u = lambda column, lo, hi: lo + draws[column] * (hi - lo)  # noqa: E731
    face_width = u(0, 0.40, 0.54)
    face_height = face_width * u(1, 1.15, 1.40)
    skin_tone = u(2, 0.0, 1.0)
    skin = np.clip(_SKIN_DARK + skin_tone[:, None] * (_SKIN_LIGHT - _SKIN_DARK) + 0.04 * jitter[:, :3], 0, 1)
    hair_choice = np.minimum((draws[3] * len(_HAIR_PALETTE)).astype(int), len(_HAIR_PALETTE) - 1)
    hair = np.clip(_HAIR_PALETTE[hair_choice] + 0.06 * jitter[:, 3:], 0, 1)
    # Background darker than the face: the Haar cascade (and most face detectors) look for a bright face blob.
    # Written out rather than a matmul, whose BLAS rounding depends on n and would break the prefix property.
    skin_luma = 0.299 * skin[:, 0] + 0.587 * skin[:, 1] + 0.114 * skin[:, 2]
    bg_hue = 0.1 + 0.9 * draws[4:7].T
    bg = bg_hue * (skin_luma * u(7, 0.35, 0.7))[:, None]
    eyes = {
        "eye_y": u(8, -0.34, -0.18),  # fraction of face height above the face centre (negative = up)
        "eye_size": u(9, 0.085, 0.12),  # iris radius as a fraction of face width
        "eye_spacing": u(10, 0.36, 0.46),  # half distance between the eyes, fraction of face width
    }
    return pd.DataFrame(
        {
            "face_width": face_width,
            "face_height": face_height,
            "skin_tone": skin_tone,
            "skin_r": skin[:, 0],
            "skin_g": skin[:, 1],
            "skin_b": skin[:, 2],
            **eyes,
            "brow_tilt": u(11, -0.35, 0.35),  # radians, positive = outer ends raised
            "mouth_curve": u(12, -1.0, 1.0),  # +1 smile, -1 frown
            "mouth_width": u(13, 0.28, 0.42),  # half width, fraction of face width
            "hair_r": hair[:, 0],
            "hair_g": hair[:, 1],
            "hair_b": hair[:, 2],
            "hair_length": u(14, 0.0, 1.0),
            "bg_r": bg[:, 0],
            "bg_g": bg[:, 1],
            "bg_b": bg[:, 2],
            "light_angle": u(15, 0.0, 2 * math.pi),
            "light_strength": u(16, 0.0, 0.35),
            "shift_x": u(17, -0.08, 0.08),
            "shift_y": u(18, -0.06, 0.06),
        }
    )


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(np.float32)[:, None, None]


def _ellipse_alpha(x, y, cx, cy, rx, ry, pixel: float, angle=None) -> np.ndarray:
    """Soft coverage of an (optionally rotated) ellipse: a one-pixel ramp at its edge."""
    dx, dy = x - cx, y - cy
    if angle is not None:
        cos, sin = np.cos(angle), np.sin(angle)
        dx, dy = dx * cos + dy * sin, -dx * sin + dy * cos
    radius = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    distance = (1.0 - radius) * np.minimum(rx, ry)  # approximately signed distance to the edge
    return np.clip(0.5 + distance / pixel, 0.0, 1.0)


class _Canvas:
    """A batch of images being drawn; each shape only touches the window that bounds it across the batch."""

    def __init__(self, background: np.ndarray, size: int) -> None:
        self.pixels = np.broadcast_to(background[:, None, None, :], (len(background), size, size, 3)).copy()
        self.pixel = 2.0 / size
        self.axis = (np.arange(size, dtype=np.float32) + 0.5) * self.pixel - 1.0

    def _span(self, lo: np.ndarray, hi: np.ndarray) -> slice:
        size = len(self.axis)
        start = int(np.clip(np.floor((lo.min() + 1.0) / self.pixel) - 1, 0, size))
        stop = int(np.clip(np.ceil((hi.max() + 1.0) / self.pixel) + 1, 0, size))
        return slice(start, max(start, stop))

    def window(self, x_lo, x_hi, y_lo, y_hi) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Coordinates (1, h, 1) / (1, 1, w) of the window bounding [x_lo, x_hi] x [y_lo, y_hi], and its index."""
        cols, rows = self._span(x_lo, x_hi), self._span(y_lo, y_hi)
        return self.axis[cols][None, None, :], self.axis[rows][None, :, None], (slice(None), rows, cols)

    def paint(self, index: tuple, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Alpha-blend `colour` (b, 3) into the window in place."""
        region = self.pixels[index]
        change = colour.reshape(colour.shape[0], 1, 1, 3) - region
        change *= alpha[..., None]
        region += change

    def ellipse(self, cx, cy, rx, ry, colour, strength: float = 1.0, angle=None) -> None:
        # The edge ramp of an elongated ellipse reaches past its tips: (1 - r) * min radius is only a rough distance.
        ramp = 0.5 * self.pixel * np.maximum(rx, ry) / np.minimum(rx, ry)
        reach = np.maximum(rx, ry) if angle is not None else None
        x_reach = (rx if reach is None else reach) + ramp
        y_reach = (ry if reach is None else reach) + ramp
        x, y, index = self.window(cx - x_reach, cx + x_reach, cy - y_reach, cy + y_reach)
        alpha = _ellipse_alpha(x, y, cx, cy, rx, ry, self.pixel, angle)
        if strength != 1.0:
            alpha *= strength
        self.paint(index, alpha, colour)


def _render_faces(factors: pd.DataFrame, image_size: int) -> np.ndarray:
    """Draw faces at twice the size, then average 2x2 blocks, so the edges come out smooth."""
    b = len(factors)
    size = 2 * image_size
    fw, fh = _col(factors, "face_width"), _col(factors, "face_height")
    cx, cy = _col(factors, "shift_x"), _col(factors, "shift_y") + 0.06
    skin = factors[["skin_r", "skin_g", "skin_b"]].to_numpy(np.float32)
    hair = factors[["hair_r", "hair_g", "hair_b"]].to_numpy(np.float32)
    canvas = _Canvas(factors[["bg_r", "bg_g", "bg_b"]].to_numpy(np.float32), size)
    pixel = canvas.pixel

    # Hair: a larger ellipse behind the head, cut off at a length-dependent height, plus a fringe over the forehead.
    hair_cy, hair_rx, hair_ry = cy - 0.1 * fh, fw * 1.18, fh * 1.12
    hair_bottom = cy + fh * (-0.25 + 1.15 * _col(factors, "hair_length"))
    hair_lowest = np.minimum(hair_bottom, hair_cy + hair_ry)
    x, y, index = canvas.window(cx - hair_rx, cx + hair_rx, hair_cy - hair_ry, hair_lowest)
    hair_shape = _ellipse_alpha(x, y, cx, hair_cy, hair_rx, hair_ry, pixel)
    canvas.paint(index, hair_shape * np.clip(0.5 + (hair_bottom - y) / pixel, 0.0, 1.0), hair)
    canvas.ellipse(cx, cy, fw, fh, skin)
    fringe_bottom = cy - 0.72 * fh
    x, y, index = canvas.window(cx - hair_rx, cx + hair_rx, hair_cy - hair_ry, fringe_bottom)
    fringe = _ellipse_alpha(x, y, cx, hair_cy, hair_rx, hair_ry, pixel)
    canvas.paint(index, fringe * np.clip(0.5 + (fringe_bottom - y) / pixel, 0.0, 1.0), hair)

    eye_y = cy + _col(factors, "eye_y") * fh
    eye_r = _col(factors, "eye_size") * fw
    spacing = _col(factors, "eye_spacing") * fw
    tilt = _col(factors, "brow_tilt")
    iris = np.broadcast_to(np.array([0.10, 0.07, 0.05], dtype=np.float32), skin.shape)
    white = np.full_like(skin, 0.92)
    for side in (-1.0, 1.0):
        ex = cx + side * spacing
        # A shadowed socket around a dark iris: eye regions darker than the cheeks are what detectors key on.
        canvas.ellipse(ex, eye_y, 1.9 * eye_r, 1.25 * eye_r, skin * 0.55, strength=0.6)
        canvas.ellipse(ex, eye_y, 1.45 * eye_r, 0.8 * eye_r, white)
        canvas.ellipse(ex, eye_y, 0.8 * eye_r, 0.8 * eye_r, iris)
        canvas.ellipse(ex, eye_y - 2.3 * eye_r, 2.0 * eye_r, 0.42 * eye_r, hair * 0.55, angle=-side * tilt)

    # Nose: a soft shadow below and between the eyes.
    canvas.ellipse(cx, cy + 0.2 * fh, 0.09 * fw, 0.06 * fh, skin * 0.6, strength=0.5)

    # Mouth: a curved band; its centre drops below the corners for a smile and rises above them for a frown.
    mouth_half = _col(factors, "mouth_width") * fw
    mouth_y, bend = cy + 0.5 * fh, _col(factors, "mouth_curve") * 0.1 * fh
    x, y, index = canvas.window(cx - mouth_half, cx + mouth_half, mouth_y - 0.15 * fh, mouth_y + 0.15 * fh)
    along = (x - cx) / mouth_half
    centre_line = mouth_y + bend * (1.0 - along**2)
    thickness = 0.045 * fh * (1.0 - 0.5 * along**2)
    band = np.clip(0.5 + (thickness - np.abs(y - centre_line)) / pixel, 0.0, 1.0)
    band *= np.clip(0.5 + (1.0 - np.abs(along)) * mouth_half / pixel, 0.0, 1.0)
    canvas.paint(index, band, np.array([0.55, 0.16, 0.16], dtype=np.float32) * (0.6 + 0.4 * skin))

    angle = _col(factors, "light_angle")
    axis = canvas.axis
    along_light = (np.cos(angle) * axis[None, None, :] + np.sin(angle) * axis[None, :, None]) / math.sqrt(2)
    light = 1.0 + _col(factors, "light_strength") * along_light
    small = (canvas.pixels * light[..., None]).reshape(b, image_size, 2, image_size, 2, 3).mean(axis=(2, 4))
    return np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _synthetic_into(out: np.ndarray, n: int, image_size: int, seed: int, progress: bool = False) -> pd.DataFrame:
    """Render n faces of `seed` into `out` (an array or a memmap) chunk by chunk; returns their meta."""
    factors = _synthetic_factors(n, np.random.default_rng(seed))
    starts = range(0, n, _SYNTHETIC_CHUNK)
    for start in tqdm(starts, desc="synthetic faces", unit="batch", disable=None if progress else True):
        stop = min(start + _SYNTHETIC_CHUNK, n)
        out[start:stop] = _render_faces(factors.iloc[start:stop], image_size)
    ids = [f"synthetic-{i:06d}" for i in range(n)]
    head = pd.DataFrame({"image_id": ids, "path": ids, "partition": "all"})
    return pd.concat([head, factors.astype(np.float32)], axis=1)


def synthetic_faces(n: int, image_size: int = 64, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Procedurally drawn faces, uint8 (n, S, S, 3), and their generating factors (one row per image)."""
    if not _is_int(n) or n <= 0:
        raise LatentAtlasError(f"number of synthetic faces must be a positive integer, got {n!r}")
    DataConfig(image_size=image_size, synthetic_count=n, synthetic_seed=seed)  # same validation as the config
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    meta = _synthetic_into(images, n, image_size, seed)
    return images, meta


# ----------------------------------------------------------------------------- decoding files


def _crop_box(width: int, height: int, fraction: float | None) -> tuple[int, int, int, int]:
    """Centred square: `fraction` of the width (CelebA face crop) or, with None, the largest one that fits."""
    side = min(width, height) if fraction is None else min(width, height, max(1, round(fraction * width)))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _decode_image(data: bytes, image_size: int, crop_fraction: float | None) -> np.ndarray:
    """Decode one file's bytes to a uint8 (S, S, 3) centred square. Raises on anything that is not an image."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        left, top, right, _ = _crop_box(width, height, crop_fraction)
        if image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4, 1/8 scale for free; ask for the smallest that keeps the crop >= size.
            scale = image_size / (right - left)
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        elif image.mode in ("I", "F") or image.mode.startswith("I;16"):
            # 16-bit / float grey: rescale to 8 bits before RGB, which would otherwise clip.
            values = np.asarray(image, dtype=np.float64)
            span = max(values.max() - values.min(), 1e-12)
            image = Image.fromarray(((values - values.min()) / span * 255).astype(np.uint8))
        image = image.convert("RGB")
        # Crop first: resizing with `box=` would let the filter pull in pixels from outside the crop.
        image = image.crop(_crop_box(image.width, image.height, crop_fraction))
        image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


# Everything a damaged, truncated or mislabelled file (or zip member) can raise while being read and decoded.
_DECODE_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
    zipfile.BadZipFile,
    zlib.error,
    KeyError,
)
_DECODE_BLOCK = 64  # images per thread-pool task: few enough tasks, fine enough progress


@dataclass
class _Source:
    """A resolved file source: how to list and read its images, and what identifies its content."""

    kind: str  # "celeba-folder" | "celeba-zip" | "folder" | "zip"
    root: Path  # folder or zip file holding the images
    members: list[str]  # image paths relative to `root` (or names inside the zip), sorted
    fingerprint: list  # stat data that changes when the content does
    text_root: Path | None = None  # CelebA: folder holding the attribute / partition files
    prefix: str = ""  # CelebA: the images' path prefix ("img_align_celeba/"), for the `path` column

    @property
    def is_celeba(self) -> bool:
        return self.kind.startswith("celeba")

    @property
    def crop_fraction(self) -> float | None:
        return CELEBA_CROP_FRACTION if self.is_celeba else None

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], bytes]]:
        """A function returning a member's bytes. Zip handles are per thread: one ZipFile shared by decoding
        threads would serialise every read on its file lock."""
        if not self.kind.endswith("zip"):
            root = self.root
            yield lambda name: (root / name).read_bytes()
            return
        local, handles, lock = threading.local(), [], threading.Lock()

        def read_zip(name: str) -> bytes:
            if not hasattr(local, "archive"):
                local.archive = zipfile.ZipFile(self.root)
                with lock:
                    handles.append(local.archive)
            return local.archive.read(name)

        try:
            yield read_zip
        finally:
            for archive in handles:
                archive.close()


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def _stat_entry(path: Path) -> list:
    stat = path.stat()
    return [path.name, stat.st_size, stat.st_mtime_ns]


def _list_folder(folder: Path) -> tuple[list[str], list]:
    """Image files under `folder` (relative, sorted) and their (name, size, mtime) listing for the cache key."""
    fingerprint = []
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_dir = Path(current).relative_to(folder)
        for name in files:
            rel = (rel_dir / name).as_posix()
            if _is_image_name(rel):
                stat = os.stat(os.path.join(current, name))
                fingerprint.append([rel, stat.st_size, stat.st_mtime_ns])
    fingerprint.sort()
    return [entry[0] for entry in fingerprint], fingerprint


def _list_zip(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise LatentAtlasError(f"cannot read zip file {path}: {exc}") from None
    return sorted(name for name in names if _is_image_name(name) and "__MACOSX/" not in name)


def _resolve_source(source: str) -> _Source:
    path = Path(source).expanduser()
    if not path.exists():
        raise LatentAtlasError(f"data source not found: {source} (give a folder, a zip or 'synthetic-faces')")
    path = path.resolve()
    try:
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise LatentAtlasError(f"data source {path} is a file but not a zip archive")
            members = _list_zip(path)
            if path.name == f"{CELEBA_FOLDER}.zip":
                return _Source("celeba-zip", path, members, [_stat_entry(path)], text_root=path.parent)
            return _Source("zip", path, members, [_stat_entry(path)])
        if not path.is_dir():
            raise LatentAtlasError(f"data source {path} is neither a folder nor a zip file")
        if path.name == CELEBA_FOLDER:  # the image folder itself was given; the text files sit beside it
            members, fingerprint = _list_folder(path)
            return _Source(
                "celeba-folder", path, members, fingerprint, text_root=path.parent, prefix=f"{CELEBA_FOLDER}/"
            )
        if (path / CELEBA_FOLDER).is_dir():
            members, fingerprint = _list_folder(path / CELEBA_FOLDER)
            return _Source(
                "celeba-folder", path / CELEBA_FOLDER, members, fingerprint, text_root=path, prefix=f"{CELEBA_FOLDER}/"
            )
        if (path / f"{CELEBA_FOLDER}.zip").is_file():
            archive = path / f"{CELEBA_FOLDER}.zip"
            return _Source("celeba-zip", archive, _list_zip(archive), [_stat_entry(archive)], text_root=path)
        members, fingerprint = _list_folder(path)
        return _Source("folder", path, members, fingerprint)
    except PermissionError as exc:
        raise LatentAtlasError(f"cannot read data source {path}: {exc.strerror}") from None


def _read_celeba_attributes(path: Path) -> pd.DataFrame:
    try:
        with open(path, encoding="utf-8") as f:
            f.readline()  # image count
            names = f.readline().split()
            table = pd.read_csv(f, sep=r"\s+", header=None, names=["image_id", *names], dtype={"image_id": str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise LatentAtlasError(f"cannot read CelebA attributes {path}: {exc}") from None
    if not names or table[names].isna().any().any():
        raise LatentAtlasError(f"malformed CelebA attribute file {path}: expected a count, names, then rows")
    try:
        return table.set_index("image_id")[names].astype(np.int8)
    except (ValueError, TypeError):
        raise LatentAtlasError(f"malformed CelebA attribute file {path}: attribute values must be 1 / -1") from None


def _read_celeba_partitions(path: Path) -> pd.Series:
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, names=["image_id", "code"], dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise LatentAtlasError(f"cannot read CelebA partitions {path}: {exc}") from None
    labels = table["code"].map(_PARTITION_CODES)
    if labels.isna().any():
        raise LatentAtlasError(f"malformed CelebA partition file {path}: codes must be 0, 1 or 2")
    return pd.Series(labels.to_numpy(), index=table["image_id"].to_numpy())


def _celeba_text_fingerprint(source: _Source) -> list:
    entries = []
    for name in (CELEBA_ATTRIBUTES, CELEBA_PARTITIONS):
        path = source.text_root / name
        if path.is_file():
            entries.append(_stat_entry(path))
    return entries


def _plan_file_source(source: _Source, config: DataConfig) -> pd.DataFrame:
    """Meta rows (image_id, path, partition, attributes) for the images to decode, in sorted order."""
    if not source.members:
        raise LatentAtlasError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {source.root}")
    if source.is_celeba:
        ids = [name.rsplit("/", 1)[-1] if source.kind == "celeba-zip" else name for name in source.members]
        paths = [source.prefix + name for name in source.members]
        meta = pd.DataFrame({"image_id": ids, "path": paths, "partition": "all"})
        partition_file = source.text_root / CELEBA_PARTITIONS
        if partition_file.is_file():
            labels = _read_celeba_partitions(partition_file)
            meta["partition"] = meta["image_id"].map(labels).fillna("all").to_numpy()
        elif config.partition != "all":
            raise LatentAtlasError(f"partition {config.partition!r} needs {partition_file}, which is missing")
        attribute_file = source.text_root / CELEBA_ATTRIBUTES
        if attribute_file.is_file():
            attributes = _read_celeba_attributes(attribute_file)
            joined = attributes.reindex(meta["image_id"]).fillna(0).astype(np.int8).reset_index(drop=True)
            meta = pd.concat([meta, joined], axis=1)
    else:
        meta = pd.DataFrame({"image_id": source.members, "path": source.members, "partition": "all"})
    if config.partition != "all":
        meta = meta[meta["partition"] == config.partition].reset_index(drop=True)
        if meta.empty:
            raise LatentAtlasError(f"no images in partition {config.partition!r} of {source.root}")
    if config.limit is not None:
        meta = meta.iloc[: config.limit].reset_index(drop=True)
    return meta


def _decode_worker_count(n: int) -> int:
    return 1 if n < 256 else min(8, os.cpu_count() or 1)


def _decode_into(out: np.ndarray, source: _Source, members: list[str], image_size: int, progress: bool) -> np.ndarray:
    """Decode `members` into rows of `out`; returns a bool mask of the rows that decoded."""
    ok = np.zeros(len(members), dtype=bool)
    crop = source.crop_fraction

    def decode_block(start: int) -> int:
        stop = min(start + _DECODE_BLOCK, len(members))
        for i in range(start, stop):
            try:
                out[i] = _decode_image(read(members[i]), image_size, crop)
                ok[i] = True
            except _DECODE_ERRORS:
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
    meta = _synthetic_into(out, n, size, config.synthetic_seed, progress)
    out.flush()
    return meta


def _write_decoded(
    path: Path, source: _Source, meta: pd.DataFrame, size: int, progress: bool
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
    return meta[ok].reset_index(drop=True), skipped


def _build_entry(
    config: DataConfig,
    cache_dir: Path,
    key: str,
    description: dict,
    source: _Source | None,
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


def _describe(config: DataConfig) -> tuple[dict, _Source | None]:
    """What identifies the decoded result (hashed into the cache key), and the resolved file source."""
    common = {"format_version": CACHE_FORMAT_VERSION, "image_size": config.image_size, "limit": config.limit}
    if config.is_synthetic:
        return {
            **common,
            "source": SYNTHETIC_SOURCE,
            "count": config.synthetic_count,
            "seed": config.synthetic_seed,
        }, None
    source = _resolve_source(config.source)
    if config.partition != "all" and not source.is_celeba:
        raise LatentAtlasError(
            f"partition {config.partition!r} applies to CelebA sources only; {source.root} is not one"
        )
    fingerprint = list(source.fingerprint)
    if source.is_celeba:
        fingerprint += _celeba_text_fingerprint(source)
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
    plan = _plan_file_source(source, config) if source is not None else None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentAtlasError(f"cannot create image cache folder {cache_dir}: {exc.strerror}") from None
    return _build_entry(config, cache_dir, key, description, source, plan, progress)


decode_image = _decode_image
