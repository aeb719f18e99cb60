"""The analysis's region of every z-point (analysis/region_labels.npy), for the commands that label points by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.io import load_npy, read_json
from latentatlas.store import Run
from latentatlas.store.staleness import provenance, stale_reason


def region_labels(run: Run, n_rows: int) -> tuple[np.ndarray | None, str | None]:
    """The region of every z-point from `latentatlas analyze`, or None and why.

    The labels are used only when the analysis was computed from the z-points the store holds now
    (`store.staleness.stale_reason`, the rule the report marks stale artifacts by) and match its rows.
    """
    command = f"latentatlas analyze {run.path}"
    path = run.path / "analysis" / "analysis.json"
    if not path.is_file():
        return None, f"no regions: the run has no analysis; run `{command}`"
    try:
        analysis = read_json(path)
        name = analysis.get("arrays", {}).get("region_labels")
        if not isinstance(name, str) or Path(name).name != name:
            skipped = analysis.get("regions", {}).get("skipped")
            why = f"the analysis skipped them ({skipped})" if isinstance(skipped, str) else f"run `{command}` again"
            return None, f"no regions: {why}"
        labels = np.asarray(load_npy(run.path / "analysis" / name, mmap=False))
    except (LatentAtlasError, OSError, AttributeError, ValueError) as exc:
        return None, f"no regions: the analysis could not be read ({exc}); run `{command}` again"
    stale = stale_reason(run, provenance(analysis if isinstance(analysis, dict) else {}, path))
    if stale is not None:
        return None, f"no regions: the analysis is stale ({stale}); run `{command}` again"
    if labels.shape != (n_rows,) or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        return None, f"no regions: region_labels.npy does not match the {n_rows} z-points; run `{command}` again"
    return labels.astype(np.int64), None


__all__ = ["region_labels"]
