"""Inception features and face embeddings of image sets, cached in RUN/cache/features/ by a key of what they
were computed from (rows, seed, network, and the weights for decoded images), so repeated evaluations skip
the slow part. Face embeddings are built block by block, each finished block saved (`<name>.partial.npy`):
an evaluation stopped during the face-copy reference (9,000 images on celeba-10k) resumes where it was."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.faces import FaceEmbedder
from latentatlas.evaluation.inception import inception_backend, inception_features, inception_path
from latentatlas.io import load_npy, read_json, save_npy, write_json
from latentatlas.progress import Progress

EMBEDDING_BLOCK = 1024  # face embeddings saved after every block this size (about a minute on 2 cores)


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()[:16]


def cached_features(folder: Path | None, name: str, key: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Features of a real image set, reused from folder/<name>.npy when its key matches (no folder: no cache)."""
    if folder is None:
        return compute()
    array_path, key_path = folder / f"{name}.npy", folder / f"{name}.json"
    if array_path.is_file() and key_path.is_file():
        try:
            if read_json(key_path) == key:
                features = np.asarray(load_npy(array_path, mmap=False), dtype=np.float64)
                if len(features) == key["n"]:
                    return features
        except LatentAtlasError:
            pass  # a damaged cache is recomputed
    features = compute()
    save_npy(array_path, features)
    write_json(key_path, key)
    return features


class FeatureCache:
    """Inception features and face embeddings of real image sets, cached under RUN/cache/features/."""

    def __init__(self, folder: Path | None, seed: int, device: torch.device | str | None, progress: bool):
        self.folder, self.seed, self.device, self.progress = folder, seed, device, progress

    def _announce(self, what: str, n: int, kind: str = "real") -> None:
        # The slow first evaluation of a run: say what it is doing and where it keeps it.
        if self.progress:
            cached = f", cached in {self.folder}" if self.folder is not None else ""
            print(f"latentatlas: computing {what} of {n} {kind} images{cached}", file=sys.stderr, flush=True)

    def feature_key(self, rows: np.ndarray, decoder: str | None = None) -> dict[str, Any]:
        # the backend too: ONNX Runtime's features differ from TorchScript's in the far digits (~1e-5)
        key = {
            "n": len(rows),
            "seed": self.seed,
            "rows": _digest(rows),
            "weights": inception_path().stat().st_size,
            "backend": inception_backend(self.device),
        }
        if decoder is not None:
            key["decoder"] = decoder
        return key

    def embedding_key(self, rows: np.ndarray, decoder: str | None = None) -> dict[str, Any]:
        key = {"n": len(rows), "seed": self.seed, "rows": _digest(rows), "embedder": FaceEmbedder().settings()}
        if decoder is not None:
            key["decoder"] = decoder
        return key

    def holds(self, name: str, key: dict[str, Any]) -> bool:
        """Whether folder/<name> holds features of `key` (read without loading them; for the plan)."""
        if self.folder is None or not (self.folder / f"{name}.npy").is_file():
            return False
        try:
            return read_json(self.folder / f"{name}.json") == key
        except LatentAtlasError:
            return False

    def features(self, name: str, rows: np.ndarray, images: np.ndarray, decoder: str | None = None) -> np.ndarray:
        """`decoder`: the weights id when `images` are the decoder's images of the rows' z-points."""
        key = self.feature_key(rows, decoder)

        def compute() -> np.ndarray:
            self._announce("Inception features", len(rows), "real" if decoder is None else "decoded")
            return inception_features(images, device=self.device, progress=self.progress)

        return cached_features(self.folder, name, key, compute)

    def embeddings(
        self, name: str, rows: np.ndarray, images: np.ndarray | Callable[[], np.ndarray], decoder: str | None = None
    ) -> np.ndarray:
        """`images` may be a function that makes them (decoding is skipped when the cache holds the embeddings);
        `decoder`: the weights id when they are the decoder's images of the rows' z-points (the key then changes
        with the weights: a retrained model never reuses them)."""
        key = self.embedding_key(rows, decoder)

        def compute() -> np.ndarray:
            self._announce("dlib face embeddings", len(rows), "real" if decoder is None else "decoded")
            return self._embed_in_blocks(name, key, images() if callable(images) else images)

        return cached_features(self.folder, name, key, compute)

    def _embed_in_blocks(self, name: str, key: dict[str, Any], images: np.ndarray) -> np.ndarray:
        """Embeddings of `images`, block by block, each block saved so a stopped evaluation resumes; one bar."""
        partial = self._partial(name, key)
        done = [] if partial is None else [partial]
        count = 0 if partial is None else len(partial)
        label = "dlib face embeddings" + (f" ({name})" if self.folder is not None else "")
        with Progress(len(images), label, "images", enabled=self.progress) as bar:
            if count:
                bar.update(count, "resumed")
            for start in range(count, len(images), EMBEDDING_BLOCK):
                done.append(FaceEmbedder().embed(images[start : start + EMBEDDING_BLOCK], bar=bar))
                if self.folder is not None and start + EMBEDDING_BLOCK < len(images):
                    save_npy(self.folder / f"{name}.partial.npy", np.concatenate(done))
                    write_json(self.folder / f"{name}.partial.json", key)
        if self.folder is not None:
            for suffix in (".partial.npy", ".partial.json"):
                (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
        return np.concatenate(done) if done else np.empty((0, 128))

    def _partial(self, name: str, key: dict[str, Any]) -> np.ndarray | None:
        """The embeddings of the first blocks of `key`'s images saved by an evaluation that stopped, if any."""
        if self.folder is None or not (self.folder / f"{name}.partial.npy").is_file():
            return None
        try:
            if read_json(self.folder / f"{name}.partial.json") != key:
                return None
            partial = np.asarray(load_npy(self.folder / f"{name}.partial.npy", mmap=False), dtype=np.float64)
        except LatentAtlasError:
            return None  # damaged: start again
        return partial if partial.ndim == 2 and len(partial) < key["n"] else None
