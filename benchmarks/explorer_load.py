"""The explorer under concurrent clients: p50 / p99 latency and requests/s at 1, 4 and 16 clients.

Serves a throwaway run with the default architecture (see explorer_latency.py) on 127.0.0.1 and lets
C client threads click as fast as they can (POST /api/decode on a random plane point, face detector on),
each level bounded by a request count and a time limit. `--compare` runs every level a second time with
each request decoding on its own (no shared forward passes), the behaviour before `DecodeBatcher`.

    python benchmarks/explorer_load.py [--clients 1,4,16] [--requests 160] [--seconds 60] [--compare]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from explorer_latency import build_run, percentile, start_server


class DecodeAlone:
    """Each request runs its own forward pass (for --compare)."""

    def __init__(self, explorer):
        self.explorer = explorer

    def decode(self, vectors):
        return self.explorer._decode_now(vectors)


def load(port: int, body, clients: int, requests: int, seconds: float) -> tuple[list[float], float, int]:
    """Latencies (ms) of up to `requests` clicks from `clients` threads within `seconds`; wall time; errors."""
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    remaining = [requests]

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as session:
            while time.perf_counter() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                t0 = time.perf_counter()
                response = session.post("/api/decode", json=body())
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors[0] += response.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started, errors[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=160, help="clicks per level (default 160)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per level (default 60)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--points", type=int, default=1000, help="synthetic faces encoded into the run")
    parser.add_argument("--compare", action="store_true", help="also run each level without shared decoding")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    import numpy as np
    import torch

    from latentatlas.explorer import create_app

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="latentatlas-bench-") as tmp:
        os.environ.setdefault("LATENTATLAS_CACHE", str(Path(tmp) / "cache"))
        app = create_app(build_run(Path(tmp), args.points))
        explorer = app.state.explorer
        server, thread, port = start_server(app)
        plane = [int(j) for j in explorer.info()["default_plane"]]
        rng = np.random.default_rng(0)

        def click() -> dict:
            coords = (explorer.centre[plane] + explorer.std[plane] * rng.normal(size=2)).tolist()
            return {"basis": "axes", "plane": plane, "coords": coords, "detect_face": True}

        load(port, click, 2, 10, args.seconds)  # warm-up: detector, allocator, threads
        print(
            f"explorer under load: default model (64x64, latent 256), torch threads {args.threads}, "
            f"{os.cpu_count()} CPUs visible, POST /api/decode with the face detector, "
            f"at most {args.requests} requests or {args.seconds:g} s per level"
        )
        columns = ("clients", "requests", "p50 ms", "p99 ms", "req/s", "errors")
        print(f"{'decoding':10s} " + " ".join(f"{c:>8s}" for c in columns))
        modes = [("batched", explorer.decoder)] + ([("alone", DecodeAlone(explorer))] if args.compare else [])
        for mode, decoder in modes:
            explorer.decoder = decoder
            for clients in levels:
                latencies, wall, errors = load(port, click, clients, args.requests, args.seconds)
                print(
                    f"{mode:10s} {clients:8d} {len(latencies):8d} {percentile(latencies, 50):8.1f} "
                    f"{percentile(latencies, 99):8.1f} {len(latencies) / wall:8.1f} {errors:8d}"
                )
        server.should_exit = True
        thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
