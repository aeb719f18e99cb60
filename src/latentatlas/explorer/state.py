"""What the explorer computes from a run, once at startup: `ExplorerState`.

The display subset of z-points, the centre, the covariance, its principal axes and a Mahalanobis fit on
the training z-points, so that decoding one latent vector is a single small forward pass. The web layer
(`app.py`) only validates requests and calls these methods.

A point of a plane is a full latent vector: the plane's two coordinates are set, every other coordinate
is taken from the base (the centre, or real z-point number `base`). In the "pca" basis the plane is
spanned by two principal axes and coordinates are measured from the centre.
"""

from __future__ import annotations

import difflib
import math
import os
import threading
import uuid
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.analysis import confidence_ellipse
from latentatlas.data import DataConfig, load_images
from latentatlas.decoding import decode_latents
from latentatlas.embedding import category_label, colour_columns, nearest, umap_embedding
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation import FaceDetector
from latentatlas.explorer.batching import DecodeBatcher
from latentatlas.io import data_uri
from latentatlas.pipelines.regions import region_labels
from latentatlas.samplers import SAMPLERS, make_sampler
from latentatlas.stats import PCA, Mahalanobis, moments
from latentatlas.store import Run

MAX_DISPLAY_POINTS = 50_000
MAX_SAMPLES = 64  # images per sample request: each one is a decode and a PNG
MAX_STEPS = 32
COORD_LIMIT = 1e6  # beyond this the decoder only produces saturated noise (or overflows)
CONFIDENCES = (0.5, 0.9, 0.99)
LINEAR_BASES = ("axes", "pca")
REGION_COLUMN = "region"  # the analysis's regions (analysis/region_labels.npy), offered beside the metadata


class ExplorerState:
    """Everything the web app needs from a run, computed once at startup.

    Attributes
    ----------
    centre, cov, std : ndarray
        Mean, covariance and per-component spread of the fitted (training) z-points.
    pca_axes : ndarray (N, N)
        Column k is the k-th principal direction; `pca_variance` its variance.
    mahalanobis : latentatlas.stats.Mahalanobis
        Fitted on the training z-points (all rows for an external-only store).
    display_rows, display_z, display_pca : ndarray
        The seeded display subsample: store rows, latent vectors, principal coordinates.
    """

    def __init__(self, run: Run | str | os.PathLike, max_points: int = MAX_DISPLAY_POINTS, seed: int = 0):
        self.run = run if isinstance(run, Run) else Run(run)
        self.model = self.run.load_model()
        store = self._store = self.run.zpoints()  # memory-mapped: rows are read on demand
        self.n_rows, self.latent_dim = (int(s) for s in store.shape)
        if self.latent_dim != self.run.latent_dim:
            raise LatentAtlasError(
                f"z-points of {self.run.path} have dimension {self.latent_dim}, the model {self.run.latent_dim}: "
                f"run `latentatlas encode {self.run.path}` again"
            )
        meta = self.metadata = self.run.metadata()
        self.subsets = meta["subset"].astype(str).to_numpy()
        self.image_ids = meta["image_id"].astype(str).to_numpy() if "image_id" in meta else None
        train_rows = np.flatnonzero(self.subsets == "train")
        # External-only stores (encode --data) have no training rows: the statistics use all rows then.
        self.z_fit = np.asarray(store[train_rows] if len(train_rows) >= 2 else store, dtype=np.float32)
        if len(self.z_fit) < 2:
            raise LatentAtlasError(f"run {self.run.path} has fewer than 2 z-points: nothing to explore")

        bulk = moments(self.z_fit)
        self.centre, self.cov, self.std = bulk.mean, bulk.cov, bulk.std
        self.mahalanobis = Mahalanobis().fit(self.z_fit, mean=bulk.mean, covariance=bulk.cov)
        pca = PCA().fit(covariance=bulk.cov)
        self.pca_variance = pca.eigenvalues_
        self.pca_axes = pca.components_.T  # column k: k-th principal direction
        rng = np.random.default_rng(seed)
        rows = np.arange(self.n_rows)
        if self.n_rows > max_points:
            rows = np.sort(rng.choice(self.n_rows, max_points, replace=False))
        self.display_rows = rows.astype(np.int32)
        # float32 halves the memory of up to 50k x N display points; they are only drawn, never computed with.
        self.display_z = np.asarray(store[rows], dtype=np.float32)
        self.display_pca = ((self.display_z - self.centre) @ self.pca_axes).astype(np.float32)
        # Browsers may cache point clouds and images; a new token per start keeps another run's answers out.
        self.token = uuid.uuid4().hex[:12]
        self.sampler_names = list(SAMPLERS)
        self._samplers: dict[str, Any] = {}
        self._sampler_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._images: np.ndarray | None = None
        self._images_failed = False
        self._face_detector: Any = None
        self.decoder = DecodeBatcher(self._decode_now)
        self._umap: np.ndarray | None = None
        self.columns = colour_columns(meta)
        self.regions, self.regions_note = region_labels(self.run, self.n_rows)
        self.region_column = REGION_COLUMN if REGION_COLUMN not in self.columns else f"analysis {REGION_COLUMN}"
        if self.regions is not None:  # first in the list: the series' question is one region or several
            labels = [f"region {k}" for k in range(int(self.regions.max()) + 1)]
            region = {"name": self.region_column, "kind": "category", "labels": labels}
            self.columns = {self.region_column: region, **self.columns}

    # --------------------------------------------------------------- geometry
    def check_plane(self, basis: str, plane: tuple[int, int]) -> tuple[int, int]:
        try:
            return checks.plane(plane, 2 if basis == "umap" else self.latent_dim)
        except LatentAtlasError as exc:
            kind = {"pca": "principal axes", "umap": "UMAP map (axes 0 and 1)"}.get(basis, "latent axes")
            raise LatentAtlasError(f"{kind}: {exc}") from None

    @staticmethod
    def check_linear(basis: str, what: str) -> None:
        if basis not in LINEAR_BASES:
            raise LatentAtlasError(f"{what} need a linear basis (axes or pca); the UMAP map has no inverse")

    def umap(self) -> np.ndarray:
        """(m, 2) UMAP coordinates of the display points, computed on first use (it takes a while)."""
        if self._umap is None:
            with self._lock:
                if self._umap is None:
                    self._umap = umap_embedding(self.display_z)
        return self._umap

    def nearest_display_point(self, coords: tuple[float, float]) -> int:
        """Store row of the display point nearest to `coords` on the UMAP map."""
        return int(self.display_rows[nearest(self.umap(), coords)])

    def check_row(self, row: int) -> int:
        if not 0 <= row < self.n_rows:
            raise LatentAtlasError(f"z-point index {row} is out of range 0..{self.n_rows - 1}")
        return int(row)

    def base_vector(self, base: str | int) -> np.ndarray:
        if base == "centre":
            return self.centre.copy()
        return np.asarray(self._store[self.check_row(int(base))], dtype=np.float64)

    def to_plane(self, vectors: np.ndarray, basis: str, plane: tuple[int, int]) -> np.ndarray:
        """Project full latent vectors (m, N) to (m, 2) coordinates of the plane."""
        self.check_linear(basis, "vectors other than the real z-points")
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if basis == "pca":
            return (vectors - self.centre) @ self.pca_axes[:, list(plane)]
        return vectors[:, list(plane)]

    def from_plane(self, basis: str, plane: tuple[int, int], coords: np.ndarray, base: str | int) -> np.ndarray:
        """Full latent vectors (m, N) for plane coordinates (m, 2), the rest of each vector from `base`."""
        self.check_linear(basis, "points between the real z-points")
        coords = np.atleast_2d(np.asarray(coords, dtype=np.float64))
        start = self.base_vector(base)
        if basis == "axes":
            vectors = np.repeat(start[None], len(coords), axis=0)
            vectors[:, list(plane)] = coords
            return vectors
        axes = self.pca_axes[:, list(plane)]  # (N, 2), orthonormal columns
        current = (start - self.centre) @ axes
        return start[None] + (coords - current) @ axes.T

    def plane_info(self, basis: str, plane: tuple[int, int]) -> dict:
        if basis == "umap":
            return self._umap_info()
        j1, j2 = plane
        if basis == "pca":
            mean2 = np.zeros(2)
            cov2 = np.diag(self.pca_variance[[j1, j2]])
        else:
            mean2 = self.centre[[j1, j2]]
            cov2 = self.cov[np.ix_([j1, j2], [j1, j2])]
        ellipses = [{"confidence": c, **confidence_ellipse(mean2, cov2, c)} for c in CONFIDENCES]
        points = self.display_pca[:, [j1, j2]] if basis == "pca" else self.display_z[:, [j1, j2]]
        origin = self.to_plane(np.zeros(self.latent_dim), basis, plane)[0]
        low, high = np.percentile(points.astype(np.float64), [0.2, 99.8], axis=0)
        low, high = np.minimum(low, origin), np.maximum(high, origin)  # the origin's border position must be visible
        pad = 0.06 * np.maximum(high - low, 1e-6)
        label = "PC" if basis == "pca" else "z"
        return {
            "basis": basis,
            "plane": [j1, j2],
            "labels": [f"{label}[{j1}]", f"{label}[{j2}]"],
            "centre": mean2.tolist(),
            "origin": origin.tolist(),
            "ellipses": ellipses,
            "bounds": [low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1]],
            "count": int(len(points)),
        }

    def _umap_info(self) -> dict:
        """The UMAP map has no ellipses and no origin; its "centre" is the real point nearest the centre."""
        points = self.umap()
        closest = int(np.argmin(self.mahalanobis.sq_distance(self.display_z)))
        low, high = np.percentile(points.astype(np.float64), [0.2, 99.8], axis=0)
        pad = 0.06 * np.maximum(high - low, 1e-6)
        return {
            "basis": "umap",
            "plane": [0, 1],
            "labels": ["UMAP[0]", "UMAP[1]"],
            "centre": points[closest].tolist(),
            "origin": None,
            "ellipses": [],
            "bounds": [low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1]],
            "count": int(len(points)),
        }

    def plane_points(self, basis: str, plane: tuple[int, int]) -> bytes:
        if basis == "umap":
            return np.ascontiguousarray(self.umap(), dtype="<f4").tobytes()
        source = self.display_pca if basis == "pca" else self.display_z
        return np.ascontiguousarray(source[:, list(plane)], dtype="<f4").tobytes()

    # --------------------------------------------------------------- colouring by attributes
    def column_values(self, name: str) -> np.ndarray:
        """float32 per display point: the column's value (a category's code), NaN where missing."""
        column = self.columns.get(name)
        if column is None:
            close = difflib.get_close_matches(name, list(self.columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise LatentAtlasError(f"no attribute or factor column {name!r} in the z-point metadata{hint}")
        if name == self.region_column and self.regions is not None:
            return self.regions[self.display_rows].astype(np.float32)  # the code of "region k" is k
        values = self.metadata[name].iloc[self.display_rows]
        if column["kind"] == "category":
            codes = {label: k for k, label in enumerate(column["labels"])}
            return np.array([codes.get(category_label(v), np.nan) for v in values], dtype=np.float32)
        return values.to_numpy(dtype=np.float32, na_value=np.nan)

    # --------------------------------------------------------------- decoding and scoring
    def _decode_now(self, vectors: np.ndarray) -> np.ndarray:
        return decode_latents(self.model, np.asarray(vectors, dtype=np.float32))

    def decode(self, vectors: np.ndarray) -> np.ndarray:
        """Images of latent vectors (m, N); concurrent requests share forward passes (`DecodeBatcher`)."""
        return self.decoder.decode(vectors)

    def faces(self, images: np.ndarray) -> list[bool]:
        if self._face_detector is None:
            with self._lock:
                if self._face_detector is None:
                    self._face_detector = FaceDetector()
        return [bool(f) for f in self._face_detector.detect(images)]

    def scores(self, vectors: np.ndarray) -> dict[str, list[float]]:
        """Mahalanobis percentiles and distances of latent vectors (m, N)."""
        vectors = np.atleast_2d(vectors)
        return {
            "percentiles": [float(p) for p in self.mahalanobis.percentile(vectors)],
            "distances": [math.sqrt(max(float(d), 0.0)) for d in self.mahalanobis.sq_distance(vectors)],
        }

    def describe(self, vectors: np.ndarray, detect_face: bool, images: bool = True) -> dict:
        """Decoded images (data URIs), Mahalanobis distances / percentiles and face flags for vectors."""
        vectors = np.atleast_2d(vectors)
        result: dict[str, Any] = dict(self.scores(vectors))
        if images:
            decoded = self.decode(vectors)
            result["images"] = [data_uri(image) for image in decoded]
            result["faces"] = self.faces(decoded) if detect_face else None
        return result

    def sampler(self, name: str) -> Any:
        if name not in self.sampler_names:
            raise LatentAtlasError(f"unknown sampler {name!r}; choose from {', '.join(self.sampler_names)}")
        fitted = self._samplers.get(name)
        if fitted is not None:
            return fitted
        with self._lock:
            lock = self._sampler_locks.setdefault(name, threading.Lock())
        # Fit each sampler once, even when requests arrive together, under its own lock: a slow first fit
        # (a flow: seconds) must not hold up the draws of the samplers already fitted, nor the images.
        with lock:
            if name not in self._samplers:
                self._samplers[name] = make_sampler(name).fit(self.z_fit)
            return self._samplers[name]

    # --------------------------------------------------------------- real images
    def real_image(self, row: int) -> tuple[np.ndarray, str]:
        """The source image of z-point `row`, or the decode of its z-point when the source is unavailable."""
        row = self.check_row(row)
        images = self._source_images()
        if images is not None:
            return np.asarray(images[row]), "real"
        return self.decode(np.array(self._store[row : row + 1]))[0], "decoded"

    def _source_images(self) -> np.ndarray | None:
        if self._images is None and not self._images_failed:
            with self._lock:
                if self._images is None and not self._images_failed:
                    try:
                        # zpoints.json names the source the rows came from (the run's own or `encode --data`).
                        config = DataConfig.from_dict(self.run.zpoints_info()["source"])
                        images = load_images(config, progress=False).images
                        size = self.run.model_config.image_size
                        if len(images) == self.n_rows and images.shape[1:] == (size, size, 3):
                            self._images = images
                        else:
                            self._images_failed = True
                    except (LatentAtlasError, KeyError, TypeError, OSError):
                        self._images_failed = True
        return self._images

    def point(self, row: int) -> dict:
        row = self.check_row(row)
        vector = np.asarray(self._store[row], dtype=np.float64)
        scores = self.scores(vector[None])
        return {
            "index": row,
            "subset": str(self.subsets[row]),
            "image_id": None if self.image_ids is None else str(self.image_ids[row]),
            "percentile": scores["percentiles"][0],
            "distance": scores["distances"][0],
        }

    def info(self) -> dict:
        top_axes = np.argsort(self.std)[::-1]
        total = float(self.pca_variance.sum()) or 1.0
        return {
            "run": self.run.path.name,
            "token": self.token,
            "latent_dim": self.latent_dim,
            "image_size": self.run.model_config.image_size,
            "n_points": self.n_rows,
            "n_display": int(len(self.display_rows)),
            "n_fit": int(len(self.z_fit)),
            "samplers": self.sampler_names,
            "limits": {"max_samples": MAX_SAMPLES, "max_steps": MAX_STEPS, "coordinate": COORD_LIMIT},
            "default_plane": [int(top_axes[0]), int(top_axes[1])],
            "top_axes": [int(j) for j in top_axes[:16]],
            "std": [float(s) for s in self.std],
            "centre_norm": float(np.linalg.norm(self.centre)),
            "pca_explained": [float(v / total) for v in self.pca_variance[:16]],
            "confidences": list(CONFIDENCES),
            "columns": list(self.columns.values()),
            "regions_note": self.regions_note,
        }


Explorer = ExplorerState  # the name earlier releases exported
