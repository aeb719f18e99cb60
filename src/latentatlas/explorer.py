"""The interactive explorer: a local web app (FastAPI) over one run folder.

`create_app(run)` precomputes everything a click needs (the display subset of z-points, the centre,
the covariance, its principal axes and a Mahalanobis fit on the training z-points), so that decoding
one latent vector is a single small forward pass. The front end is plain JavaScript in `static/`.

JSON API (every request is validated; a bad one gets a 4xx answer {"detail": "<one line>"}):

GET  /api/info                           run, dimensions, samplers, limits, default plane, axis spreads
GET  /api/plane?basis=axes|pca&x=J1&y=J2  centre, origin, confidence ellipses and view bounds in that plane
GET  /api/points?basis=..&x=..&y=..       float32 (m, 2) little-endian: the display z-points projected
GET  /api/rows                            int32 (m,): the z-point store row of each display point
GET  /api/image/{row}                     PNG of real image `row` (or the decode of its z-point when the
                                          image source is unavailable; header X-Image-Kind says which)
GET  /api/point/{row}                     subset, image id, Mahalanobis distance / percentile of a real z-point
POST /api/decode                          {"vector": [...]} or {"basis", "plane", "coords", "base"}
                                          -> image (PNG data URI), Mahalanobis percentile, face flag
POST /api/path                            {"basis", "plane", "start", "end", "base", "steps", "method"}
                                          -> a strip of decoded images along a lerp / slerp path
POST /api/sample                          {"sampler", "n", "seed", "basis", "plane", "images"}
                                          -> projected points (+ images) drawn from a fitted sampler

A point of a plane is a full latent vector: the plane's two coordinates are set, every other
coordinate is taken from the base (the centre, or real z-point number `base`). In the "pca" basis
the plane is spanned by two principal axes and coordinates are measured from the centre.
"""

from __future__ import annotations

import base64
import io
import math
import os
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from latentatlas.errors import LatentAtlasError
from latentatlas.store import Run

STATIC_DIR = Path(__file__).with_name("static")
MAX_DISPLAY_POINTS = 50_000
MAX_SAMPLES = 64  # images per sample request: each one is a decode and a PNG
MAX_STEPS = 32
MAX_BODY_BYTES = 1 << 20
COORD_LIMIT = 1e6  # beyond this the decoder only produces saturated noise (or overflows)
CONFIDENCES = (0.5, 0.9, 0.99)
Basis = Literal["axes", "pca"]
Coordinate = Annotated[float, Field(ge=-COORD_LIMIT, le=COORD_LIMIT, allow_inf_nan=False)]
Base = Literal["centre"] | Annotated[int, Field(ge=0)]


# ----------------------------------------------------------------------------- request models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaneRequest(_Strict):
    basis: Basis = "axes"
    plane: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
    base: Base = "centre"


class DecodeRequest(_Strict):
    vector: list[Coordinate] | None = None
    basis: Basis = "axes"
    plane: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] | None = None
    coords: tuple[Coordinate, Coordinate] | None = None
    base: Base = "centre"
    detect_face: bool = True

    @model_validator(mode="after")
    def _one_kind_of_point(self) -> DecodeRequest:
        if (self.vector is None) == (self.coords is None):
            raise ValueError('give either "vector" or "plane" + "coords"')
        if self.coords is not None and self.plane is None:
            raise ValueError('"coords" needs a "plane"')
        return self


class PathRequest(PlaneRequest):
    start: tuple[Coordinate, Coordinate]
    end: tuple[Coordinate, Coordinate]
    steps: Annotated[int, Field(ge=2, le=MAX_STEPS)] = 8
    method: Literal["linear", "slerp"] = "linear"
    detect_face: bool = True


class SampleRequest(_Strict):
    sampler: str = Field(min_length=1, max_length=64)
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 16
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    basis: Basis = "axes"
    plane: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
    images: bool = True
    detect_face: bool = True


# ----------------------------------------------------------------------------- precomputed state


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 (H, W, 3) image as PNG; light compression keeps encoding well under a millisecond."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


class Explorer:
    """Everything the web app needs from a run, computed once at startup."""

    def __init__(self, run: Run | str | os.PathLike, max_points: int = MAX_DISPLAY_POINTS, seed: int = 0):
        from latentatlas.analysis import BulkStatistics, Mahalanobis
        from latentatlas.samplers import SAMPLERS

        self.run = run if isinstance(run, Run) else Run(run)
        self.model = self.run.load_model()
        store = self._store = self.run.zpoints()  # memory-mapped: rows are read on demand
        self.n_rows, self.latent_dim = (int(s) for s in store.shape)
        if self.latent_dim != self.run.latent_dim:
            raise LatentAtlasError(
                f"z-points of {self.run.path} have dimension {self.latent_dim}, the model {self.run.latent_dim}: "
                f"run `latentatlas encode {self.run.path}` again"
            )
        meta = self.run.metadata()
        self.subsets = meta["subset"].astype(str).to_numpy()
        self.image_ids = meta["image_id"].astype(str).to_numpy() if "image_id" in meta else None
        train_rows = np.flatnonzero(self.subsets == "train")
        # External-only stores (encode --data) have no training rows: the statistics use all rows then.
        self.z_fit = np.asarray(store[train_rows] if len(train_rows) >= 2 else store, dtype=np.float32)
        if len(self.z_fit) < 2:
            raise LatentAtlasError(f"run {self.run.path} has fewer than 2 z-points: nothing to explore")

        bulk = BulkStatistics(bins=2).fit(self.z_fit)  # only mean and covariance are needed here
        self.centre = np.asarray(bulk.mean_, dtype=np.float64)
        self.cov = np.asarray(bulk.cov_, dtype=np.float64)
        self.std = np.sqrt(np.clip(np.diag(self.cov), 0, None))
        self.mahalanobis = Mahalanobis().fit(self.z_fit, mean=bulk.mean_, covariance=bulk.cov_)
        eigenvalues, eigenvectors = np.linalg.eigh(self.cov)
        order = np.argsort(eigenvalues)[::-1]
        self.pca_variance = np.clip(eigenvalues[order], 0, None)
        self.pca_axes = eigenvectors[:, order]  # column k: k-th principal direction
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
        self._lock = threading.Lock()
        self._images: np.ndarray | None = None
        self._images_failed = False
        self._face_detector: Any = None

    # --------------------------------------------------------------- geometry
    def check_plane(self, basis: str, plane: tuple[int, int]) -> tuple[int, int]:
        j1, j2 = int(plane[0]), int(plane[1])
        if j1 == j2:
            raise LatentAtlasError(f"the two axes of a plane must differ, got ({j1}, {j2})")
        if not (0 <= j1 < self.latent_dim and 0 <= j2 < self.latent_dim):
            kind = "principal axis" if basis == "pca" else "latent axis"
            raise LatentAtlasError(f"{kind} index out of range: ({j1}, {j2}); valid are 0..{self.latent_dim - 1}")
        return j1, j2

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
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if basis == "pca":
            return (vectors - self.centre) @ self.pca_axes[:, list(plane)]
        return vectors[:, list(plane)]

    def from_plane(self, basis: str, plane: tuple[int, int], coords: np.ndarray, base: str | int) -> np.ndarray:
        """Full latent vectors (m, N) for plane coordinates (m, 2), the rest of each vector from `base`."""
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
        from latentatlas.analysis import confidence_ellipse

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

    def plane_points(self, basis: str, plane: tuple[int, int]) -> bytes:
        source = self.display_pca if basis == "pca" else self.display_z
        return np.ascontiguousarray(source[:, list(plane)], dtype="<f4").tobytes()

    # --------------------------------------------------------------- decoding and scoring
    def decode(self, vectors: np.ndarray) -> np.ndarray:
        from latentatlas.store import decode_latents

        return decode_latents(self.model, np.asarray(vectors, dtype=np.float32))

    def faces(self, images: np.ndarray) -> list[bool]:
        if self._face_detector is None:
            from latentatlas.evaluation import FaceDetector

            with self._lock:
                if self._face_detector is None:
                    self._face_detector = FaceDetector()
        return [bool(f) for f in self._face_detector.detect(images)]

    def describe(self, vectors: np.ndarray, detect_face: bool, images: bool = True) -> dict:
        """Decoded images (data URIs), Mahalanobis distances / percentiles and face flags for vectors."""
        vectors = np.atleast_2d(vectors)
        result: dict[str, Any] = {
            "percentiles": [float(p) for p in self.mahalanobis.percentile(vectors)],
            "distances": [math.sqrt(max(float(d), 0.0)) for d in self.mahalanobis.sq_distance(vectors)],
        }
        if images:
            decoded = self.decode(vectors)
            result["images"] = [data_uri(image) for image in decoded]
            result["faces"] = self.faces(decoded) if detect_face else None
        return result

    def sampler(self, name: str) -> Any:
        from latentatlas.samplers import make_sampler

        if name not in self.sampler_names:
            raise LatentAtlasError(f"unknown sampler {name!r}; choose from {', '.join(self.sampler_names)}")
        with self._lock:  # fit each sampler once, even when requests arrive together
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
            from latentatlas.data import DataConfig, load_images

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
        return {
            "index": row,
            "subset": str(self.subsets[row]),
            "image_id": None if self.image_ids is None else str(self.image_ids[row]),
            "percentile": float(self.mahalanobis.percentile(vector[None])[0]),
            "distance": math.sqrt(max(float(self.mahalanobis.sq_distance(vector[None])[0]), 0.0)),
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
        }


# ----------------------------------------------------------------------------- the app


def _bad(message: str, status: int = 400) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    if len(parts) > 3:  # one bad vector can produce hundreds of identical complaints
        parts = parts[:3] + [f"and {len(parts) - 3} more errors"]
    return "; ".join(parts) or "invalid request"


def create_app(run: Run | str | os.PathLike, max_points: int = MAX_DISPLAY_POINTS) -> FastAPI:
    """The explorer's FastAPI app for one run folder (which needs a model and z-points)."""
    explorer = Explorer(run, max_points=max_points)
    app = FastAPI(title=f"latentatlas explorer: {explorer.run.path.name}", docs_url=None, redoc_url=None)
    app.state.explorer = explorer

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(LatentAtlasError)
    async def _user_error(request: Request, exc: LatentAtlasError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        return await call_next(request)

    # Static assets come only from the package's own folder; StaticFiles refuses paths that leave it.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/info")
    def info() -> dict:
        return explorer.info()

    @app.get("/api/plane")
    def plane(basis: Basis = "axes", x: int = Query(ge=0), y: int = Query(ge=0)) -> dict:
        return explorer.plane_info(basis, explorer.check_plane(basis, (x, y)))

    @app.get("/api/points")
    def points(basis: Basis = "axes", x: int = Query(ge=0), y: int = Query(ge=0)) -> Response:
        data = explorer.plane_points(basis, explorer.check_plane(basis, (x, y)))
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/rows")
    def rows() -> Response:
        data = np.ascontiguousarray(explorer.display_rows, dtype="<i4").tobytes()
        return Response(data, media_type="application/octet-stream")

    @app.get("/api/image/{row}")
    def image(row: int) -> Response:
        picture, kind = explorer.real_image(row)
        headers = {"X-Image-Kind": kind, "Cache-Control": "max-age=3600"}
        return Response(png_bytes(picture), media_type="image/png", headers=headers)

    @app.get("/api/point/{row}")
    def point(row: int) -> dict:
        return explorer.point(row)

    @app.post("/api/decode")
    def decode(request: DecodeRequest) -> dict:
        if request.vector is not None:
            if len(request.vector) != explorer.latent_dim:
                raise _bad(f"vector has {len(request.vector)} components, the latent space has {explorer.latent_dim}")
            vector = np.asarray(request.vector, dtype=np.float64)[None]
        else:
            plane = explorer.check_plane(request.basis, request.plane)
            vector = explorer.from_plane(request.basis, plane, np.asarray(request.coords), request.base)
        described = explorer.describe(vector, request.detect_face)
        return {
            "image": described["images"][0],
            "percentile": described["percentiles"][0],
            "distance": described["distances"][0],
            "face": None if described["faces"] is None else described["faces"][0],
        }

    @app.post("/api/path")
    def path(request: PathRequest) -> dict:
        from latentatlas.paths import between

        plane = explorer.check_plane(request.basis, request.plane)
        ends = explorer.from_plane(request.basis, plane, np.asarray([request.start, request.end]), request.base)
        vectors = between(ends[0], ends[1], request.steps, method="slerp" if request.method == "slerp" else "linear")
        described = explorer.describe(vectors, request.detect_face)
        return {
            "method": request.method,
            "points": explorer.to_plane(vectors, request.basis, plane).tolist(),
            **described,
        }

    @app.post("/api/sample")
    def sample(request: SampleRequest) -> dict:
        plane = explorer.check_plane(request.basis, request.plane)
        vectors = explorer.sampler(request.sampler).sample(request.n, seed=request.seed)
        described = explorer.describe(vectors, request.detect_face, images=request.images)
        points = explorer.to_plane(vectors, request.basis, plane).tolist()
        return {"sampler": request.sampler, "n": request.n, "seed": request.seed, "points": points, **described}

    return app


def serve(run: Run | str | os.PathLike, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True) -> None:
    """Run the explorer until interrupted (Ctrl-C)."""
    import uvicorn

    if not 0 < port < 65536:
        raise LatentAtlasError(f"port must be in 1..65535, got {port}")
    import socket

    app = create_app(run)
    try:  # uvicorn exits the process on a busy port; find out first and say so in one line
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise LatentAtlasError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    print(f"latentatlas explorer for {app.state.explorer.run.path} at {url} (Ctrl-C stops it)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        import sys

        print(
            f"latentatlas: warning: bound to {host}: other machines on the network can use this explorer",
            file=sys.stderr,
        )
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["Explorer", "create_app", "serve", "MAX_SAMPLES", "MAX_STEPS", "MAX_DISPLAY_POINTS"]
