"""Throughput of every evaluation instrument, in images (or points) per second, and what a full
evaluation row at n images costs.

    python benchmarks/instruments.py [--images 100] [--size 64] [--n 1000] [--threads 2] [--dlib-steps]

Images are synthetic 64 px faces (`latentatlas.data.synthetic_faces`); each instrument runs once on a few
images to load its model, then is timed on `--images` images (dlib's on one worker process per core from
64 images on, as in `evaluate`). The estimate per row multiplies the
per-image rates by n and adds the per-row score costs (k-NN with intervals, FID with its bootstrap and
FID∞, FD-face), measured on random features of the right shapes.

`--descriptor`: instead, dlib's face descriptor (the ResNet on the aligned chip) through dlib and through
ONNX Runtime (`evaluation.dlib_resnet`) in one run: the descriptor step alone in this process, then the whole
embedding (upscaling, landmarks, chip, descriptor) as `evaluate` runs it, on one worker process per core, and
the largest difference between the two routes' descriptors; the routes take turns `--repeats` times (best
and median printed). `--source` takes a folder of images (e.g. /work/shared/data/celeba-10k) instead of the
synthetic faces.

`--dlib-steps`: instead, where a dlib image's time goes, in this process (one core): the upscaling, the
5-point landmarks, the aligned chip and the ResNet descriptor of an embedding, per image and with the list
(batch) forms of `compute_face_descriptor` and of the CNN detector, and the detector at each calibration side.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np


def _rate(name: str, work: Callable[[np.ndarray], object], images: np.ndarray) -> float:
    work(images[:2])  # load the model, warm up
    started = time.perf_counter()
    work(images)
    seconds = time.perf_counter() - started
    rate = len(images) / seconds
    print(f"{name:<32} {rate:>9.1f} images/s  ({seconds:.1f} s for {len(images)})", flush=True)
    return rate


def _seconds(name: str, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"{name:<32} {seconds:>9.2f} s per row", flush=True)
    return seconds


def dlib_steps(images: np.ndarray) -> None:
    """Per-step images/s of the dlib embedding and detector, one process, each step timed on its own."""
    from latentatlas.evaluation import faces
    from latentatlas.evaluation.faces import CALIBRATION_SIDES, DLIB_SIDE

    dlib = faces._dlib()  # untyped compiled module
    detector, landmarks, network = faces._dlib_models()
    frame = dlib.rectangle(0, 0, DLIB_SIDE - 1, DLIB_SIDE - 1)
    big = [faces._upscaled(image, DLIB_SIDE) for image in images]
    shapes = [landmarks(image, frame) for image in big]
    chips = [dlib.get_face_chip(image, shape, 150, 0.25) for image, shape in zip(big, shapes)]
    print(f"dlib steps on {len(images)} images, this process only (one core)")
    _rate(f"upscale to {DLIB_SIDE}", lambda batch: [faces._upscaled(image, DLIB_SIDE) for image in batch], images)
    _rate("5-point landmarks", lambda _: [landmarks(image, frame) for image in big], images)
    _rate("aligned 150 px chip", lambda _: [dlib.get_face_chip(i, s, 150, 0.25) for i, s in zip(big, shapes)], images)
    _rate(
        "descriptor, image + landmarks",
        lambda _: [network.compute_face_descriptor(i, s) for i, s in zip(big, shapes)],
        images,
    )
    _rate("descriptor of the chip", lambda _: [network.compute_face_descriptor(chip) for chip in chips], images)
    for size in (16, 64):
        _rate(
            f"descriptor, lists of {size} chips",
            lambda _, size=size: [
                network.compute_face_descriptor(chips[i : i + size]) for i in range(0, len(chips), size)
            ],
            images,
        )
    for side in CALIBRATION_SIDES:
        small = [faces._upscaled(image, side) for image in images]
        _rate(f"CNN detector, side {side}", lambda _, small=small: [detector(image, 0) for image in small], images)
    small = [faces._upscaled(image, CALIBRATION_SIDES[0]) for image in images]
    for size in (16, 64):
        _rate(
            f"CNN detector side {CALIBRATION_SIDES[0]}, lists of {size}",
            lambda _, size=size: [
                detector(small[i : i + size], 0, batch_size=size) for i in range(0, len(small), size)
            ],
            images,
        )


def _chips_block(images: np.ndarray, side: int) -> np.ndarray:
    """Aligned 150 px chips of `images` (a worker's task in the chips-in-workers alternative)."""
    from latentatlas.evaluation import faces
    from latentatlas.evaluation.dlib_resnet import CHIP_PADDING, CHIP_SIDE

    dlib = faces._dlib()
    landmarks = faces._dlib_models()[1]
    frame = dlib.rectangle(0, 0, side - 1, side - 1)
    chips = np.empty((len(images), CHIP_SIDE, CHIP_SIDE, 3), np.uint8)
    for i, image in enumerate(images):
        big = faces._upscaled(image, side)
        chips[i] = dlib.get_face_chip(big, landmarks(big, frame), CHIP_SIDE, CHIP_PADDING)
    return chips


def descriptor_routes(images: np.ndarray, repeats: int) -> None:
    """images/s of the descriptor through dlib and through ONNX Runtime, alone and within the embedding; the
    routes take turns `repeats` times (a shared machine's load comes in bursts), best and median printed."""
    from functools import partial
    from pathlib import Path

    from latentatlas.evaluation import faces
    from latentatlas.evaluation.dlib_resnet import describe_chips
    from latentatlas.evaluation.faces import DLIB_SIDE
    from latentatlas.evaluation.workers import worker_pool
    from latentatlas.io import usable_cores

    network = faces._dlib_models()[2]
    onnx = faces._descriptor_model()
    if not onnx:
        raise SystemExit("the ONNX route is not available (see the line above)")
    model = Path(onnx)
    n = len(images)
    chips = _chips_block(images, DLIB_SIDE)
    for threads in (1, 2):
        describe_chips(model, chips[:2], threads)  # load the sessions
    workers = usable_cores()
    pool = worker_pool(workers)
    blocks = [images[rows] for rows in np.array_split(np.arange(n), max(workers, n // 64))]
    routes = {
        "dlib": partial(faces._embed_block, side=DLIB_SIDE, onnx=""),
        "onnx": partial(faces._embed_block, side=DLIB_SIDE, onnx=onnx),
    }
    chips_work = partial(_chips_block, side=DLIB_SIDE)
    for work in (*routes.values(), chips_work):  # start the workers, load the models and sessions
        list(pool.map(work, [images[:2]] * workers))
    results: dict[str, np.ndarray] = {}

    def embed(route: str) -> None:
        results[route] = np.concatenate(list(pool.map(routes[route], blocks)))

    def chips_then_main() -> None:
        parts = pool.map(chips_work, blocks)
        results["main"] = np.concatenate([describe_chips(model, part, workers) for part in parts])

    groups = {
        f"descriptor of the aligned chip, this process (ONNX Runtime: batches of 32), {n} images": {
            "dlib compute_face_descriptor": lambda: [network.compute_face_descriptor(chip) for chip in chips],
            "ONNX Runtime, 1 thread": lambda: describe_chips(model, chips, 1),
            "ONNX Runtime, 2 threads": lambda: describe_chips(model, chips, 2),
        },
        f"whole embedding (upscale, landmarks, chip, descriptor), {workers} worker processes": {
            "through dlib": lambda: embed("dlib"),
            "through ONNX Runtime, 1 thread per worker": lambda: embed("onnx"),
            f"chips in workers, ONNX Runtime in main ({workers} thr.)": chips_then_main,
        },
    }
    for title, steps in groups.items():
        rates: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(repeats):
            for name, work in steps.items():
                started = time.perf_counter()
                work()
                rates[name].append(n / (time.perf_counter() - started))
        print(f"\n{title}; images/s, best and median of {repeats} turns (load {os.getloadavg()[0]:.1f} after)")
        for name, values in rates.items():
            print(f"{name:<50} {max(values):>8.1f} {float(np.median(values)):>8.1f}", flush=True)
    largest = np.abs(results["onnx"] - results["dlib"]).max()
    print(f"\nlargest |ONNX Runtime - dlib| over {n} x 128 descriptor entries: {largest:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=1000, help="row size for the per-row estimate")
    parser.add_argument("--dim", type=int, default=256, help="latent dimension for the k-NN timing")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--side", type=int, default=128, help="CNN detector side (evaluate calibrates it: 128 on 64 px CelebA crops)"
    )
    parser.add_argument("--dlib-steps", action="store_true", help="time the steps of the dlib instruments instead")
    parser.add_argument(
        "--descriptor", action="store_true", help="time the face descriptor through dlib and ONNX Runtime instead"
    )
    parser.add_argument("--repeats", type=int, default=3, help="--descriptor: turns each route takes")
    parser.add_argument("--source", help="a folder of images (e.g. CelebA) instead of the synthetic faces")
    args = parser.parse_args()

    import torch

    from latentatlas.data import synthetic_faces
    from latentatlas.evaluation.faces import CnnFaceDetector, FaceDetector, FaceEmbedder
    from latentatlas.evaluation.inception import fid, inception_features
    from latentatlas.evaluation.instruments.latent_knn import knn_interval_scores
    from latentatlas.evaluation.intervals import extrapolated_fid, paired_interval
    from latentatlas.evaluation.knn import knn_items

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads"
    if args.source:
        from latentatlas.config import DataConfig
        from latentatlas.data.cache import load_images

        config = DataConfig(source=args.source, image_size=args.size, limit=args.images)
        config.check()
        images = np.ascontiguousarray(load_images(config, progress=False).images)
    else:
        images, _ = synthetic_faces(args.images, image_size=args.size, seed=0)
    what = args.source or "synthetic"
    print(f"instruments on {len(images)} {what} {args.size}px images ({device}, load {os.getloadavg()[0]:.1f})")
    if args.descriptor:
        descriptor_routes(images, args.repeats)
        return
    if args.dlib_steps:
        dlib_steps(images)
        return
    rates = {
        "haar": _rate("Haar face detector", FaceDetector().detect, images),
        "cnn": _rate(f"dlib CNN detector, side {args.side}", CnnFaceDetector(side=args.side).detect, images),
        "embedding": _rate("dlib face embedding", FaceEmbedder().embed, images),
        "inception": _rate("InceptionV3 features", inception_features, images),
    }
    rng = np.random.default_rng(0)
    n = args.n
    latent = rng.standard_normal((n, args.dim)), rng.standard_normal((n, args.dim))
    features = rng.standard_normal((n, 2048)), rng.standard_normal((n, 2048)) + 0.1
    faces = rng.standard_normal((n, 128)) * 0.1, rng.standard_normal((n, 128)) * 0.1
    row = {
        "knn": _seconds("latent k-NN + intervals", lambda: knn_interval_scores(knn_items(*latent), "", 0)),
        "fid": _seconds(
            "FID + bootstrap (20) + FID∞",
            lambda: (paired_interval(fid, *features, resamples=20), extrapolated_fid(fid, *features)),
        ),
        "fd_face": _seconds("FD-face + bootstrap (50)", lambda: paired_interval(fid, *faces, resamples=50)),
    }
    per_row = sum(n / rate for rate in rates.values()) + sum(row.values())
    print(f"\nestimated full-instrument row at n = {n}: {per_row:.0f} s (images decoded separately)")


if __name__ == "__main__":
    main()
