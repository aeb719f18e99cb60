"""The explorer under concurrent clients: p50 / p99 latency and requests/s, overall and per request kind.

Serves a throwaway run with the default architecture (see explorer_latency.py) on 127.0.0.1 only and lets C
clients work as fast as they can, from a client process of their own (so the clients' Python does not
compete with the server's for its interpreter lock), each level bounded by a request count and a time limit.

`--mix mixed` (the default) is what a page full of users does: clicks that decode a plane point (with the face
detector), sampler draws (16 images), path strips (8 steps), plane geometry and real-image fetches, in fixed
shares; the table per kind says which kind dominates the time. `--mix decode` is clicks only; `--compare` runs
every level a second time with each request decoding on its own (no shared forward passes).

    python benchmarks/explorer_load.py [--clients 1,16] [--requests 640] [--seconds 40] [--mix mixed|decode]

The target: p99 < 250 ms at 16 clients on a quiet machine. The load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from explorer_latency import build_run, percentile, start_server

# request kind -> share of the requests (the mixed workload)
MIX = {"decode": 0.40, "image": 0.20, "plane": 0.15, "sample": 0.15, "path": 0.10}


class DecodeAlone:
    """Each request runs its own forward pass (for --compare)."""

    def __init__(self, explorer):
        self.explorer = explorer

    def decode(self, vectors):
        return self.explorer._decode_now(vectors)


def request_for(kind: str, rng: random.Random, setup: dict) -> tuple[str, str, dict | None]:
    """(method, url, JSON body) of one request of `kind`, drawn with `rng`."""
    plane, centre, std = setup["plane"], setup["centre"], setup["std"]

    def point() -> list[float]:
        return [c + s * rng.gauss(0, 1) for c, s in zip(centre, std)]

    if kind == "decode":
        return "POST", "/api/decode", {"basis": "axes", "plane": plane, "coords": point(), "detect_face": True}
    if kind == "image":
        return "GET", f"/api/image/{rng.randrange(setup['n_points'])}", None
    if kind == "plane":
        axes = rng.sample(setup["top_axes"], 2)
        return "GET", f"/api/plane?basis={rng.choice(['axes', 'pca'])}&x={axes[0]}&y={axes[1]}", None
    if kind == "sample":
        body = {"sampler": rng.choice(setup["samplers"]), "n": 16, "seed": rng.randrange(1000), "plane": plane}
        return "POST", "/api/sample", body
    body = {"basis": "axes", "plane": plane, "start": point(), "end": point(), "steps": 8}
    return "POST", "/api/path", body


def clients_process(port: int, setup: dict, mix: dict, clients: int, requests: int, seconds: float, out) -> None:
    """Runs in its own process: `clients` threads share `requests` requests until `seconds` pass; sends back
    (kind, latency ms, status) per request and the wall time."""
    import httpx

    results: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.perf_counter() + seconds
    kinds, weights = list(mix), list(mix.values())

    def client(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as session:
            while time.perf_counter() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                kind = rng.choices(kinds, weights)[0]
                method, url, body = request_for(kind, rng, setup)
                t0 = time.perf_counter()
                response = session.request(method, url, json=body)
                response.read()
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    results.append((kind, elapsed, response.status_code))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.send((results, time.perf_counter() - started))
    out.close()


def load(port, setup, mix, clients, requests, seconds) -> tuple[list[tuple[str, float, int]], float]:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the server's state
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=clients_process, args=(port, setup, mix, clients, requests, seconds, sender), daemon=True
    )
    process.start()
    results, wall = receiver.recv()
    process.join(timeout=10)
    return results, wall


def table(results: list[tuple[str, float, int]], wall: float, clients: int, label: str) -> None:
    total = sum(ms for _, ms, _ in results) or 1.0
    groups = {"all": results} | {k: [r for r in results if r[0] == k] for k in MIX if any(r[0] == k for r in results)}
    for kind, rows in groups.items():
        latencies = [ms for _, ms, _ in rows]
        errors = sum(status != 200 for _, _, status in rows)
        share = 100 * sum(latencies) / total
        print(
            f"{label:8s} {clients:7d} {kind:8s} {len(rows):8d} {percentile(latencies, 50):8.1f} "
            f"{percentile(latencies, 99):8.1f} {len(rows) / wall:8.1f} {share:7.1f} {errors:6d}"
        )
    if len(groups) > 2:
        heaviest = max((k for k in groups if k != "all"), key=lambda k: sum(ms for _, ms, _ in groups[k]))
        slowest = max((k for k in groups if k != "all"), key=lambda k: percentile([r[1] for r in groups[k]], 99))
        print(f"{'':8s} {clients:7d} dominant: {heaviest} (most of the time), {slowest} (highest p99)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16", help="concurrency levels (default 1,16)")
    parser.add_argument("--requests", type=int, default=640, help="requests per level (default 640)")
    parser.add_argument("--seconds", type=float, default=40.0, help="time limit per level (default 40)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--points", type=int, default=1000, help="synthetic faces encoded into the run")
    parser.add_argument("--mix", choices=("mixed", "decode"), default="mixed", help="the workload (default mixed)")
    parser.add_argument("--compare", action="store_true", help="also run each level without shared decoding")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    mix = MIX if args.mix == "mixed" else {"decode": 1.0}

    import torch

    from latentatlas.explorer import create_app

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="latentatlas-bench-") as tmp:
        os.environ.setdefault("LATENTATLAS_CACHE", str(Path(tmp) / "cache"))
        app = create_app(build_run(Path(tmp), args.points))
        explorer = app.state.explorer
        server, thread, port = start_server(app)
        info = explorer.info()
        setup = {
            "plane": [int(j) for j in info["default_plane"]],
            "centre": [float(explorer.centre[j]) for j in info["default_plane"]],
            "std": [float(explorer.std[j]) for j in info["default_plane"]],
            "top_axes": info["top_axes"],
            "samplers": ["gaussian", "diagonal-gaussian"],
            "n_points": explorer.n_rows,
        }
        load(port, setup, mix, 2, 4 * len(mix), args.seconds)  # warm-up: detector, source images, samplers
        print(
            f"explorer under load: default model (64x64, latent 256), torch threads {args.threads}, "
            f"{os.cpu_count()} CPUs visible, {args.mix} workload "
            f"({', '.join(f'{k} {v:.0%}' for k, v in mix.items())}), client in its own process, "
            f"at most {args.requests} requests or {args.seconds:g} s per level"
        )
        columns = ("clients", "kind", "requests", "p50 ms", "p99 ms", "req/s", "time %", "errors")
        print(f"{'decoding':8s} " + " ".join(f"{c:>8s}" if c != "kind" else f"{c:8s}" for c in columns))
        modes = [("batched", explorer.decoder)] + ([("alone", DecodeAlone(explorer))] if args.compare else [])
        for mode, decoder in modes:
            explorer.decoder = decoder
            for clients in levels:
                before = os.getloadavg()[0]
                results, wall = load(port, setup, mix, clients, args.requests, args.seconds)
                table(results, wall, clients, mode)
                print(f"{'':8s} {clients:7d} load average (1 min) {before:.2f} before, {os.getloadavg()[0]:.2f} after")
        server.should_exit = True
        thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
