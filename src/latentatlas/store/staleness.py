"""Whether an artifact still describes a run: the one staleness rule of the report and the explorer.

An artifact records what it was computed from (`Run.provenance()`: the weights and their id, the z-point
store's content id); `stale_reason` compares that with the run now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentatlas.errors import LatentAtlasError
from latentatlas.store.run import Run


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Provenance:
    """What an artifact was computed from: the run's "best" or "last" weights and their id then (None where
    not recorded), the z-point store's content id then (None for artifacts older than the id), and its JSON
    file, whose modification time tells which store an artifact without the id saw."""

    which: str | None
    weights_id: str | None
    source: Path | None = None
    store_id: str | None = None


def provenance(data: dict, source: Path | None = None) -> Provenance:
    which, weights_id, store_id = (_text(data.get(key)) for key in ("weights", "weights_id", "store_id"))
    if which in ("best", "last") and weights_id is not None:
        return Provenance(which, weights_id, source, store_id)
    return Provenance(None, None, source, store_id)


def current_weights(run: Run, which: str = "best") -> str | None:
    """The id of the run's `which` ("best" / "last") weights now; None when it cannot be told."""
    try:
        return run.weights_id(which)
    except (LatentAtlasError, OSError):
        return None


def stale_reason(run: Run, recorded: Provenance) -> str | None:
    """Why an artifact no longer describes the run's z-points, or None: the one rule of the report and the
    explorer. It is stale when computed from other weights than the run's now, or when the z-point store was
    rewritten after it (`encode`, e.g. of another --data: the artifact then describes points that are gone).

    The store is told by its content id (`store_id` in zpoints.json and in every artifact's provenance); for
    an artifact or store older than the id, by zpoints.json's modification time (copy such a run with `cp -a`)."""
    if recorded.which is not None and recorded.weights_id is not None:
        now = current_weights(run, recorded.which)
        if now is not None and now != recorded.weights_id:
            return (
                f"computed from {recorded.which} weights {recorded.weights_id}, the run's {recorded.which} "
                f"weights are now {now}"
            )
    store = run.zpoints_file("zpoints.json")
    try:
        now_id = _text(json.loads(store.read_text(encoding="utf-8")).get("store_id"))
    except (OSError, ValueError, AttributeError):
        now_id = None
    try:
        if recorded.store_id is not None and now_id is not None:
            rewritten = recorded.store_id != now_id
        else:
            rewritten = recorded.source is not None and store.stat().st_mtime_ns > recorded.source.stat().st_mtime_ns
    except OSError:  # no store, or no artifact file: nothing to compare
        return None
    if not rewritten:
        return None
    try:
        count = _count(json.loads(store.read_text(encoding="utf-8")).get("n"))
    except (OSError, ValueError, AttributeError):
        count = None
    now_holds = f" (it holds {count} z-points now)" if count is not None else ""
    return f"computed from an earlier z-point store: `latentatlas encode` rewrote the store since{now_holds}"
