"""Round-trip latency of the explorer: real HTTP requests to uvicorn serving the default model.

Builds a throwaway run folder with the default architecture (64x64 images, latent 256, channels
32,64,128,256; untrained weights: decoding costs the same) and z-points of synthetic faces encoded
by it, serves it on 127.0.0.1 in a background thread and times clicks (POST /api/decode on a plane
point, with and without the face detector), a path strip and a point-cloud download.

    python benchmarks/explorer_latency.py [--requests 50] [--threads 2] [--points 2000]

The target: a click answers in under 100 ms on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


def build_run(folder: Path, n_points: int) -> Path:
    import torch

    from latentatlas.data import DataConfig
    from latentatlas.io import save_npy, write_json
    from latentatlas.model import Autoencoder, ModelConfig, save_model
    from latentatlas.store import Run, encode_run
    from latentatlas.train import TrainConfig, make_split

    run_dir = folder / "run"
    model_config = ModelConfig()
    data = DataConfig(source="synthetic-faces", image_size=model_config.image_size, synthetic_count=n_points)
    train = TrainConfig()
    write_json(
        run_dir / "config.json", {"model": model_config.to_dict(), "train": train.to_dict(), "data": data.to_dict()}
    )
    torch.manual_seed(0)
    save_model(Autoencoder(model_config).eval(), run_dir / "model.safetensors")
    save_npy(run_dir / "split.npy", make_split(n_points, train.val_fraction, train.seed))
    encode_run(Run(run_dir), progress=False)
    return run_dir


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def start_server(app):
    """Serve `app` on a free 127.0.0.1 port in a daemon thread; returns (server, thread, port)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="timed requests per kind (default 50)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2: the target machine)")
    parser.add_argument("--points", type=int, default=2000, help="synthetic faces encoded into the run (default 2000)")
    args = parser.parse_args()

    import httpx
    import numpy as np
    import torch

    from latentatlas.explorer import create_app

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="latentatlas-bench-") as tmp:
        os.environ.setdefault("LATENTATLAS_CACHE", str(Path(tmp) / "cache"))
        started = time.perf_counter()
        run_dir = build_run(Path(tmp), args.points)
        built = time.perf_counter() - started
        started = time.perf_counter()
        app = create_app(run_dir)
        startup = time.perf_counter() - started
        explorer = app.state.explorer
        server, thread, port = start_server(app)

        plane = [int(j) for j in explorer.info()["default_plane"]]
        centre = explorer.centre[plane]
        spread = explorer.std[plane]
        rng = np.random.default_rng(0)

        def click(detect_face: bool) -> dict:
            coords = (centre + spread * rng.normal(size=2)).tolist()
            return {"basis": "axes", "plane": plane, "coords": coords, "detect_face": detect_face}

        kinds = {
            "click: decode + Mahalanobis + face detector": ("post", "/api/decode", lambda: click(True)),
            "click: decode + Mahalanobis, no face detector": ("post", "/api/decode", lambda: click(False)),
            "path strip, 8 images, slerp": (
                "post",
                "/api/path",
                lambda: {
                    "plane": plane,
                    "start": (centre - 2 * spread).tolist(),
                    "end": (centre + 2 * spread).tolist(),
                    "steps": 8,
                    "method": "slerp",
                },
            ),
            f"point cloud download ({len(explorer.display_rows)} points)": (
                "get",
                "/api/points",
                lambda: {"basis": "pca", "x": 0, "y": 1},
            ),
        }
        print(
            "explorer latency, default model (64x64, latent 256, channels 32,64,128,256), "
            f"torch threads {args.threads}, "
            f"{os.cpu_count()} CPUs visible; run built in {built:.1f} s, app startup {startup:.1f} s"
        )
        print(f"{'request':50s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s}")
        results = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for name, (method, url, body) in kinds.items():
                timings = []
                for i in range(args.requests + 5):
                    t0 = time.perf_counter()
                    response = client.post(url, json=body()) if method == "post" else client.get(url, params=body())
                    elapsed = (time.perf_counter() - t0) * 1000
                    if response.status_code != 200:
                        print(f"{name}: HTTP {response.status_code} {response.text[:200]}", file=sys.stderr)
                        return 1
                    if i >= 5:  # the first requests warm up caches, the detector and the allocator
                        timings.append(elapsed)
                results[name] = timings
                print(
                    f"{name:50s} {statistics.median(timings):10.1f} {percentile(timings, 95):8.1f} {max(timings):8.1f}"
                )
        server.should_exit = True
        thread.join(timeout=10)
    click_median = statistics.median(results["click: decode + Mahalanobis + face detector"])
    verdict = "meets" if click_median < 100 else "MISSES"
    print(f"a click answers in {click_median:.1f} ms (median): {verdict} the 100 ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
