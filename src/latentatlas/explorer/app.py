"""The explorer's web layer: FastAPI routes over one `ExplorerState`, plus the HTTP hardening.

JSON API (every request is validated; a bad one gets a 4xx answer {"detail": "<one line>"}):

GET  /api/info                           run, dimensions, samplers, limits, default plane, axis spreads
GET  /api/plane?basis=axes|pca&x=J1&y=J2  centre, origin, confidence ellipses and view bounds in that plane
GET  /api/points?basis=..&x=..&y=..       float32 (m, 2) little-endian: the display z-points projected
GET  /api/rows                            int32 (m,): the z-point store row of each display point
GET  /api/image/{row}                     PNG of real image `row` (or the decode of its z-point when the
                                          image source is unavailable; header X-Image-Kind says which)
GET  /api/point/{row}                     subset, image id, Mahalanobis distance / percentile of a real z-point
GET  /api/columns                         the metadata columns points can be coloured by (attributes, factors)
GET  /api/column/{name}                   float32 (m,) little-endian: that column's value per display point
POST /api/decode                          {"vector": [...]} or {"basis", "plane", "coords", "base"}
                                          -> image (PNG data URI), Mahalanobis percentile, face flag
POST /api/path                            {"basis", "plane", "start", "end", "base", "steps", "method"}
                                          -> a strip of decoded images along a lerp / slerp path
POST /api/sample                          {"sampler", "n", "seed", "basis", "plane", "images"}
                                          -> projected points (+ images) drawn from a fitted sampler

Hardening (`security.py`): only the Host names the server is bound to are answered (DNS rebinding),
every answer carries nosniff / frame / content-security headers, and request bodies are capped while
they stream in, whatever Content-Length says.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from starlette.middleware.trustedhost import TrustedHostMiddleware

from latentatlas.errors import LatentAtlasError
from latentatlas.explorer.security import BodySizeLimit, SecurityHeaders
from latentatlas.explorer.state import COORD_LIMIT, MAX_DISPLAY_POINTS, MAX_SAMPLES, MAX_STEPS, ExplorerState
from latentatlas.io import png_bytes
from latentatlas.paths import between
from latentatlas.store import Run

STATIC_DIR = Path(__file__).with_name("static")
MAX_BODY_BYTES = 1 << 20
LOCAL_HOSTS = ("127.0.0.1", "localhost")
Basis = Literal["axes", "pca", "umap"]  # "umap": the nonlinear map; a click decodes the nearest real point
# Strict fields: JSON true is not the number 1 and "5" is not 5 (a client sending them has a bug to hear about).
# Strict per field, not per model: a strict model would also refuse JSON lists for the tuple fields.
Coordinate = Annotated[float, Field(strict=True, ge=-COORD_LIMIT, le=COORD_LIMIT, allow_inf_nan=False)]
Index = Annotated[int, Field(strict=True, ge=0)]
Base = Literal["centre"] | Index
Plane = tuple[Index, Index]


# ----------------------------------------------------------------------------- request models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaneRequest(_Strict):
    basis: Basis = "axes"
    plane: Plane
    base: Base = "centre"


class DecodeRequest(_Strict):
    vector: list[Coordinate] | None = None
    basis: Basis = "axes"
    plane: Plane | None = None
    coords: tuple[Coordinate, Coordinate] | None = None
    base: Base = "centre"
    detect_face: StrictBool = True

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
    steps: Annotated[int, Field(strict=True, ge=2, le=MAX_STEPS)] = 8
    method: Literal["linear", "slerp"] = "linear"
    detect_face: StrictBool = True


class SampleRequest(_Strict):
    sampler: str = Field(strict=True, min_length=1, max_length=64)
    n: Annotated[int, Field(strict=True, ge=1, le=MAX_SAMPLES)] = 16
    seed: Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)] = 0
    basis: Basis = "axes"
    plane: Plane
    images: StrictBool = True
    detect_face: StrictBool = True


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


def allowed_hosts(host: str) -> list[str]:
    """The Host names a server bound to `host` answers: the loopback names and the bound name itself.

    Bound to every interface (0.0.0.0 / ::), the machine's own names are added; any other name
    (a DNS-rebinding page's domain) is refused.
    """
    names: list[str] = list(LOCAL_HOSTS)
    if host in ("0.0.0.0", "::"):
        names += [socket.gethostname(), socket.getfqdn()]
    elif host not in names:
        names.append(host)
    return list(dict.fromkeys(names))


def create_app(
    run: Run | str | os.PathLike,
    max_points: int = MAX_DISPLAY_POINTS,
    hosts: Sequence[str] = LOCAL_HOSTS,
) -> FastAPI:
    """The explorer's FastAPI app for one run folder (which needs a model and z-points).

    `hosts` are the Host header names it answers (see `allowed_hosts`); any other gets 400.
    """
    explorer = ExplorerState(run, max_points=max_points)
    app = FastAPI(
        title=f"latentatlas explorer: {explorer.run.path.name}", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.explorer = explorer
    # The last added is outermost: every answer (a refusal too) gets the security headers, and a
    # foreign Host is refused before a body is read.
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(LatentAtlasError)
    async def _user_error(request: Request, exc: LatentAtlasError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

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

    @app.get("/api/columns")
    def columns() -> dict:
        return {"columns": list(explorer.columns.values())}

    @app.get("/api/column/{name}")
    def column(name: str) -> Response:
        data = np.ascontiguousarray(explorer.column_values(name), dtype="<f4").tobytes()
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/decode")
    def decode(request: DecodeRequest) -> dict:
        row = None
        if request.vector is not None:
            if len(request.vector) != explorer.latent_dim:
                raise _bad(f"vector has {len(request.vector)} components, the latent space has {explorer.latent_dim}")
            vector = np.asarray(request.vector, dtype=np.float64)[None]
        else:
            assert request.plane is not None and request.coords is not None  # checked by the request model
            plane = explorer.check_plane(request.basis, request.plane)
            if request.basis == "umap":  # the map has no inverse: decode the real z-point nearest the click
                row = explorer.nearest_display_point(request.coords)
                vector = explorer.base_vector(row)[None]
            else:
                vector = explorer.from_plane(request.basis, plane, np.asarray(request.coords), request.base)
        described = explorer.describe(vector, request.detect_face)
        return {
            "row": row,
            "image": described["images"][0],
            "percentile": described["percentiles"][0],
            "distance": described["distances"][0],
            "face": None if described["faces"] is None else described["faces"][0],
        }

    @app.post("/api/path")
    def path(request: PathRequest) -> dict:
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
    if not 0 < port < 65536:
        raise LatentAtlasError(f"port must be in 1..65535, got {port}")
    app = create_app(run, hosts=allowed_hosts(host))
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
        print(
            f"latentatlas: warning: bound to {host}: other machines on the network can use this explorer",
            file=sys.stderr,
        )
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
