"""Training checkpoints: one folder per epoch, committed by a single rename, so a kill at any moment leaves
either the previous checkpoint or the new one, never a mix.

Layout of a run folder written by `train`::

    config.json                 the run's model / train / data sections
    split.npy                   int8 per image: 0 train, 1 validation
    checkpoints/epoch-0007/     the last epoch: model.safetensors, optimizer.safetensors, history.csv,
                                train_state.json (epochs done, losses, best epoch, weights id)
    checkpoints/epoch-0005/     the best epoch by validation loss (when it is not the last one)
    train_state.json, history.csv, model.safetensors
                                copies of the last checkpoint's files for readers of the folder; written
                                after the commit, so a kill may leave them one epoch behind: the next
                                `train` (a resume included) re-publishes them (`publish_latest`)

A checkpoint folder is written by `io.atomic_folder` (under a temporary name, renamed into place): only
complete folders carry the name `epoch-NNNN`. Older epochs (except the best) are deleted after the commit.
"""

from __future__ import annotations

import csv
import filecmp
import hashlib
import io
import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from latentatlas.errors import LatentAtlasError
from latentatlas.io import artifact_kind, atomic_folder, atomic_path, read_json, write_json, write_text
from latentatlas.model import Autoencoder, save_model

CHECKPOINTS = "checkpoints"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "train_state.json"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds", "images_per_s", "lr")
WEIGHTS = ("best", "last")
ARTIFACT_KIND = "checkpoint"  # the marker `io.atomic_folder` leaves in every checkpoint folder
_EPOCH_FOLDER = re.compile(r"^epoch-(\d{4,})$")


def _written(step: str) -> None:
    """Called after every write of a checkpoint; tests replace it to simulate a kill at that point."""


# --------------------------------------------------------------------------- history.csv


def history_text(rows: list[dict]) -> str:
    """history.csv's content: a header of HISTORY_COLUMNS, one row per epoch, an empty cell for NaN."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _format_value(row.get(c, float("nan"))) for c in HISTORY_COLUMNS})
    return buffer.getvalue()


def _format_value(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if not math.isfinite(value) else repr(float(value))


def read_history(path: str | os.PathLike) -> list[dict]:
    """Rows of history.csv as dicts (empty cells -> nan); [] when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            required = HISTORY_COLUMNS[:5]  # runs written before the lr column still read
            if reader.fieldnames is None or not set(required) <= set(reader.fieldnames):
                raise ValueError(f"expected the columns {', '.join(HISTORY_COLUMNS)}")
            rows = []
            for record in reader:
                row = {c: float(record[c]) if record.get(c) else float("nan") for c in HISTORY_COLUMNS}
                row["epoch"] = int(row["epoch"])
                rows.append(row)
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise LatentAtlasError(f"corrupt training history {path}: {exc}") from None
    return rows


# --------------------------------------------------------------------------- the optimizer


def save_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> None:
    """Adam state as safetensors: tensors flattened to "state.<param>.<name>", the rest as JSON metadata."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, entries in state["state"].items():
        for name, value in entries.items():
            key = f"state.{param_id}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    metadata = {"param_groups": json.dumps(state["param_groups"]), "scalars": json.dumps(scalars)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> None:
    """Restore the state written by `save_optimizer`; a damaged or mismatched file is a LatentAtlasError."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
        # JSON turned tuples (Adam's betas) into lists; give them back their type.
        param_groups = [
            {k: (v if k == "params" or not isinstance(v, list) else tuple(v)) for k, v in group.items()}
            for group in json.loads(metadata["param_groups"])
        ]
        scalars = json.loads(metadata.get("scalars", "{}"))
        state: dict[int, dict] = {}
        for key, value in {**tensors, **scalars}.items():
            _, param_id, name = key.split(".", 2)
            state.setdefault(int(param_id), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (OSError, KeyError, ValueError, TypeError, AttributeError, SafetensorError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LatentAtlasError(f"corrupt optimizer checkpoint {path}: {first_line}") from None


# --------------------------------------------------------------------------- checkpoint folders


def weights_id(path: str | os.PathLike) -> str:
    """A short content id of a weights file: the first 12 hex digits of the sha256 of its tensors (names,
    dtypes, shapes and bytes, in name order). Not of the file: safetensors writes its metadata in an
    arbitrary order, so the same weights saved twice can differ byte for byte."""
    digest = hashlib.sha256()
    with safe_open(str(path), framework="numpy") as f:
        for name in sorted(f.keys()):
            tensor = f.get_tensor(name)
            digest.update(f"{name}:{tensor.dtype}:{tensor.shape};".encode())
            digest.update(tensor.tobytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Checkpoint:
    """One committed checkpoint folder and its train_state.json."""

    folder: Path
    state: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state["epochs_done"])

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def optimizer_path(self) -> Path:
        return self.folder / OPTIMIZER_FILE

    @property
    def history_path(self) -> Path:
        return self.folder / HISTORY_FILE


def _epoch_folders(run_dir: Path) -> dict[int, Path]:
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return {}
    found = {}
    for entry in folder.iterdir():
        match = _EPOCH_FOLDER.match(entry.name)
        if match and entry.is_dir():
            found[int(match.group(1))] = entry
    return found


def _read_checkpoint(folder: Path) -> Checkpoint:
    state = read_json(folder / STATE_FILE)
    if not isinstance(state, dict) or not isinstance(state.get("epochs_done"), int):
        raise LatentAtlasError(f"corrupt training state {folder / STATE_FILE}: no integer epochs_done")
    return Checkpoint(folder, state)


def latest_checkpoint(run_dir: str | os.PathLike) -> Checkpoint | None:
    """The last committed checkpoint of the run, or None when no epoch was ever committed."""
    folders = _epoch_folders(Path(run_dir))
    return _read_checkpoint(folders[max(folders)]) if folders else None


def find_checkpoint(run_dir: str | os.PathLike, which: str = "best") -> Checkpoint:
    """The `best` (lowest validation loss) or `last` checkpoint; LatentAtlasError when there is none."""
    if which not in WEIGHTS:
        raise LatentAtlasError(f"weights must be one of {', '.join(WEIGHTS)}, got {which!r}")
    run_dir = Path(run_dir)
    last = latest_checkpoint(run_dir)
    if last is None:
        raise LatentAtlasError(
            f"run {run_dir} has no trained model (no checkpoint): run `latentatlas train --data SOURCE --out {run_dir}`"
        )
    best_epoch = last.state.get("best_epoch")
    if which == "last" or not isinstance(best_epoch, int) or best_epoch == last.epoch:
        return last
    folder = _epoch_folders(run_dir).get(best_epoch)
    if folder is None:
        raise LatentAtlasError(f"the best checkpoint (epoch {best_epoch}) of {run_dir} is missing; use --weights last")
    return _read_checkpoint(folder)


def clean_stale_temporaries(run_dir: str | os.PathLike) -> None:
    """Remove checkpoint folders left half-written by a killed process (only complete ones are named epoch-N)."""
    folder = Path(run_dir) / CHECKPOINTS
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _publish(source: Path, target: Path) -> None:
    """Replace `target` by a copy of `source` atomically (a hard link when the file system allows)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def _same_file(a: Path, b: Path) -> bool:
    """Whether `b` holds exactly `a`'s bytes (cheap when `_publish` hard-linked them)."""
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def publish_latest(run_dir: str | os.PathLike) -> list[str]:
    """Make the top-level copies those of the last checkpoint where they differ (a kill after the commit, or
    between two copies, leaves them behind); returns the names re-published. The state file goes last, so
    a reader that trusts it never sees a newer state beside older weights."""
    run_dir = Path(run_dir)
    last = latest_checkpoint(run_dir)
    if last is None:
        return []
    stale = [
        name for name in (HISTORY_FILE, MODEL_FILE, STATE_FILE) if not _same_file(last.folder / name, run_dir / name)
    ]
    for name in stale:
        _publish(last.folder / name, run_dir / name)
    return stale


def write_checkpoint(
    run_dir: Path,
    net: Autoencoder,
    optimizer: torch.optim.Optimizer,
    history: list[dict],
    state: dict[str, Any],
    keep: Callable[[int], bool] = lambda epoch: False,
) -> Checkpoint:
    """Write epoch `state["epochs_done"]` as one folder renamed into place, then prune older epochs (those
    `keep` does not ask for) and publish the top-level copies."""
    epoch = int(state["epochs_done"])
    final = run_dir / CHECKPOINTS / f"epoch-{epoch:04d}"
    if final.exists() and artifact_kind(final) != ARTIFACT_KIND:
        shutil.rmtree(final)  # left by a rolled-back run (resumed from an earlier epoch) written before the markers
    with atomic_folder(final, kind=ARTIFACT_KIND) as tmp:
        save_model(net, tmp / MODEL_FILE)
        _written("model")
        save_optimizer(optimizer, tmp / OPTIMIZER_FILE)
        _written("optimizer")
        write_text(tmp / HISTORY_FILE, history_text(history))
        _written("history")
        write_json(tmp / STATE_FILE, {**state, "weights_id": weights_id(tmp / MODEL_FILE)})
        _written("state")
    _written("commit")  # the folder is in place (an existing one of this epoch swapped out atomically)
    for other, path in _epoch_folders(run_dir).items():
        if other != epoch and not keep(other):
            shutil.rmtree(path, ignore_errors=True)
    _written("prune")
    for name in (STATE_FILE, HISTORY_FILE, MODEL_FILE):
        _publish(final / name, run_dir / name)
        _written(f"publish {name}")
    return _read_checkpoint(final)


__all__ = [
    "Checkpoint",
    "HISTORY_COLUMNS",
    "WEIGHTS",
    "clean_stale_temporaries",
    "find_checkpoint",
    "history_text",
    "publish_latest",
    "latest_checkpoint",
    "load_optimizer",
    "read_history",
    "save_optimizer",
    "weights_id",
    "write_checkpoint",
]
