"""Procedurally drawn synthetic faces: every image from a row of generating factors, deterministic per seed.

Drawing happens in coordinates where the image spans [-1, 1] on both axes (x right, y down), at twice
the size, then 2x2 blocks are averaged so the edges come out smooth.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from latentatlas.config import DataConfig
from latentatlas.data.meta import image_rows
from latentatlas.errors import LatentAtlasError
from latentatlas.progress import Progress

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
# With several classes, each class has its own face shape (width scale, height / width), skin tint, hair
# colour and background hue: far apart in image space, so a latent map should separate them.
_CLASS_BACKGROUNDS = np.array(
    [
        [0.15, 0.25, 0.70],
        [0.70, 0.20, 0.15],
        [0.15, 0.55, 0.20],
        [0.55, 0.20, 0.60],
        [0.65, 0.55, 0.10],
        [0.10, 0.55, 0.60],
        [0.35, 0.35, 0.35],
        [0.60, 0.35, 0.10],
    ],
    dtype=np.float32,
)
_CLASS_TINTS = np.array(
    [
        [0.95, 0.80, 0.70],
        [0.55, 0.75, 0.55],
        [0.60, 0.65, 0.95],
        [0.95, 0.60, 0.60],
        [0.90, 0.90, 0.55],
        [0.75, 0.60, 0.90],
        [0.50, 0.40, 0.30],
        [0.98, 0.98, 0.98],
    ],
    dtype=np.float32,
)
_CLASS_HAIR = np.array([0, 3, 5, 1, 4, 2, 0, 3])  # rows of _HAIR_PALETTE


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


def _apply_classes(factors: pd.DataFrame, n_classes: int, seed: int) -> np.ndarray:
    """Give each face one of `n_classes` classes and move its shape and colours to that class; returns the
    labels. The labels come from their own seeded stream, one draw per face, so prefixes still agree."""
    draws = np.random.default_rng(np.random.SeedSequence([seed, 0xC1A55])).random(len(factors))
    labels = np.minimum((draws * n_classes).astype(np.int64), n_classes - 1)
    shape = np.linspace(0.0, 1.0, n_classes, dtype=np.float32)[labels]  # 0 = narrow and tall, 1 = wide and round
    width = factors["face_width"].to_numpy(np.float32) * (0.78 + 0.4 * shape)
    aspect = factors["face_height"].to_numpy(np.float32) / factors["face_width"].to_numpy(np.float32)
    factors["face_width"] = width
    factors["face_height"] = width * (aspect + 0.35 - 0.45 * shape)
    skin = factors[["skin_r", "skin_g", "skin_b"]].to_numpy(np.float32)
    skin = np.clip(0.45 * skin + 0.55 * _CLASS_TINTS[labels], 0, 1)
    factors[["skin_r", "skin_g", "skin_b"]] = skin
    hair = factors[["hair_r", "hair_g", "hair_b"]].to_numpy(np.float32)
    factors[["hair_r", "hair_g", "hair_b"]] = np.clip(0.3 * hair + 0.7 * _HAIR_PALETTE[_CLASS_HAIR[labels]], 0, 1)
    bg = factors[["bg_r", "bg_g", "bg_b"]].to_numpy(np.float32)
    factors[["bg_r", "bg_g", "bg_b"]] = np.clip(0.25 * bg + 0.6 * _CLASS_BACKGROUNDS[labels], 0, 1)
    return labels


def synthetic_into(
    out: np.ndarray, n: int, image_size: int, seed: int, progress: bool = False, n_classes: int = 1
) -> pd.DataFrame:
    """Render n faces of `seed` into `out` (an array or a memmap) chunk by chunk; returns their meta
    (with a `class` column when there are several classes)."""
    factors = _synthetic_factors(n, np.random.default_rng(seed))
    labels = _apply_classes(factors, n_classes, seed) if n_classes > 1 else None
    with Progress(n, "synthetic faces", "img", enabled=progress, lines=False) as bar:
        for start in range(0, n, _SYNTHETIC_CHUNK):
            stop = min(start + _SYNTHETIC_CHUNK, n)
            out[start:stop] = _render_faces(factors.iloc[start:stop], image_size)
            bar.update(stop - start)
    ids = [f"synthetic-{i:06d}" for i in range(n)]
    head = image_rows(ids, ids)
    if labels is not None:
        head["class"] = labels
    return pd.concat([head, factors.astype(np.float32)], axis=1)


def synthetic_faces(n: int, image_size: int = 64, seed: int = 0, classes: int = 1) -> tuple[np.ndarray, pd.DataFrame]:
    """Procedurally drawn faces, uint8 (n, S, S, 3), and their generating factors (one row per image).
    With `classes` > 1 each face belongs to one of that many strongly different kinds (meta column `class`)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise LatentAtlasError(f"number of synthetic faces must be a positive integer, got {n!r}")
    # The same validation as the config.
    DataConfig(image_size=image_size, synthetic_count=n, synthetic_seed=seed, synthetic_classes=classes)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    meta = synthetic_into(images, n, image_size, seed, n_classes=classes)
    return images, meta
