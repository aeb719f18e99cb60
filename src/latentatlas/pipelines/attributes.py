"""`latentatlas attributes RUN`: attribute probes, directions, strips and conditional checks into RUN/attributes/.

The folder holds attributes.json (the table sorted by held-out AUC, the conditional checks, the strips and
the findings), attributes.csv (the table) and strip-<k>-<attribute>.png: the decoder's images along each
top attribute's direction through the bulk centre, t in Mahalanobis units of the bulk. It is written into
a temporary folder and swapped in only when everything succeeded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from latentatlas import checks, plots
from latentatlas.analysis.attributes import AttributeAnalysis
from latentatlas.analysis.conditions import conditional_findings, parse_condition
from latentatlas.analysis.labels import attribute_labels
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, write_json
from latentatlas.pipelines.conditional import condition_rows, conditional_check
from latentatlas.progress import epoch_progress
from latentatlas.samplers import make_sampler
from latentatlas.store import Run

SCHEMA = "latentatlas-attributes/1"


def _strip_file(rank: int, name: str) -> str:
    return f"strip-{rank}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"


def _subset_rows(run: Run, meta: pd.DataFrame, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(meta) != n_points:
        raise LatentAtlasError(f"run {run.path}: zpoints.parquet has {len(meta)} rows for {n_points} z-points")
    subset = meta["subset"].to_numpy()
    train, held_out = subset == "train", subset == "val"
    if not train.any() or not held_out.any():
        raise LatentAtlasError(
            f"run {run.path} needs training and held-out (val) z-points for the probes, has "
            f"{int(train.sum())} and {int(held_out.sum())}: train with --val-fraction > 0 and encode its own source"
        )
    return train, held_out


def attributes_run(
    run: Run | str | os.PathLike,
    where: Sequence[str] = (),
    n: int = 256,
    seed: int = 0,
    strips: int = 3,
    sampler: str = "gaussian",
    steps: int = 7,
    t_max: float = 3.0,
    binarise: str = "median",
    progress: bool = False,
) -> dict[str, Any]:
    """Probe every attribute of the run's z-points, walk the top `strips` directions, check each condition.

    `where` holds conditions like "Male=1,Eyeglasses=1"; for each, `sampler` is fitted on the training
    rows that satisfy it, `n` vectors are drawn (seed `seed`), decoded, re-encoded and classified by the
    probes (with `progress`, a sampler that trains reports its epochs on stderr). Returns the content of
    attributes.json plus "path" (the folder).
    """
    if not isinstance(run, Run):
        run = Run(run)
    where = [where] if isinstance(where, str) else list(where)  # one condition given as a plain string
    n = checks.positive_int(n, "n")
    seed = checks.seed(seed)
    strips = checks.positive_int(strips, "strips", minimum=0)
    steps = checks.positive_int(steps, "steps", minimum=2)
    t_max = checks.positive_number(t_max, "t_max")
    make_sampler(sampler)  # an unknown sampler fails before any work
    z, meta = run.zpoints(), run.metadata()
    train, held_out = _subset_rows(run, meta, len(z))
    labels = attribute_labels(meta, reference=train, binarise=binarise)
    if not labels.names:
        source = run.zpoints_info().get("source", {}).get("source", "?")
        raise LatentAtlasError(
            f"the z-points of {run.path} (source {source}) carry no attributes or generating factors: "
            "attributes need CelebA with list_attr_celeba.txt or synthetic-faces"
        )
    z_train, z_held = np.asarray(z[train], np.float64), np.asarray(z[held_out], np.float64)
    labels_train, labels_held = labels.rows(train), labels.rows(held_out)
    conditions = [parse_condition(text, labels.names) for text in where]
    for condition in conditions:  # too few rows fails before the probes are fitted
        condition_rows(condition, labels_train, sampler, z.shape[1])

    analysis = AttributeAnalysis(random_state=seed).fit(z_train, labels_train, z_held, labels_held)

    def roundtrip(vectors: np.ndarray) -> np.ndarray:
        return run.encode(run.decode(vectors))

    conditional = [
        conditional_check(
            analysis,
            condition,
            z_train,
            labels_train,
            roundtrip,
            sampler=sampler,
            n=n,
            seed=seed,
            z_held_out=z_held,
            labels_held_out=labels_held,
            progress=epoch_progress() if progress else None,
        )
        for condition in conditions
    ]
    ts = np.linspace(-t_max, t_max, steps)
    walked = [(rank, effect.name) for rank, effect in enumerate(analysis.effects_[:strips], start=1)]
    images = {name: run.decode(analysis.walk(name, ts).astype(np.float32)) for _, name in walked}
    size = run.model_config.image_size
    scale = max(1, 128 // size) if size < 64 else 1  # small faces stay recognisable
    result: dict[str, Any] = {"schema": SCHEMA, "run": str(run.path)}
    result.update(analysis.to_dict())
    result["binarise"] = binarise
    result["label_skipped"] = dict(labels.skipped)
    result["conditional"] = [c.to_dict() for c in conditional]
    result["strips"] = [
        {
            "attribute": name,
            "file": _strip_file(rank, name),
            "t": ts.tolist(),
            "caption": f"decoded along the {name} direction (difference of class means) through the bulk centre, "
            f"t = {-t_max:g} ... {t_max:g} Mahalanobis units; held-out probe AUC {analysis.effect(name).auc:.3f}",
        }
        for rank, name in walked
    ]
    result["findings"] = [f.to_dict() for f in analysis.findings() + conditional_findings(conditional)]
    result["options"] = {"n": n, "seed": seed, "strips": strips, "sampler": sampler, "steps": steps, "t_max": t_max}
    result.update(run.provenance())
    folder = run.path / "attributes"
    with run.lock(), atomic_folder(folder, kind="attributes") as out:
        for rank, name in walked:
            plots.save_image_grid(images[name], out / _strip_file(rank, name), ncols=steps, scale=scale)
        pd.DataFrame([e.to_dict() for e in analysis.effects_]).to_csv(out / "attributes.csv", index=False)
        write_json(out / "attributes.json", result)
    return {**result, "path": str(folder)}


def attributes_summary(result: dict[str, Any], top: int = 10) -> list[str]:
    """The lines the CLI prints: the top of the table, each conditional check, the findings."""
    rows = result["attributes"]
    lines = [f"attribute probes on {result['n_train']} training / {result['n_held_out']} held-out z-points:"]
    lines += [
        f"  {e['name']:<22} AUC {e['auc']:.3f}  shift {e['shift_mahalanobis']:.2f} Mahalanobis  "
        f"variance share {e['variance_share_direction']:.2f}  prevalence {e['prevalence']:.2f}"
        for e in rows[:top]
    ]
    if len(rows) > top:
        lines.append(f"  ... {len(rows) - top} more in attributes.csv")
    for c in result["conditional"]:
        reference = "" if c["reference_share"] is None else f" (real held-out rows: {c['reference_share']:.2f})"
        lines.append(
            f"{c['condition']}: {c['share']:.2f} of {c['n_samples']} {c['sampler']} samples fitted on "
            f"{c['n_rows']} rows re-encode probe-positive{reference}"
        )
    lines += [f"finding: {f['verdict']}: {f['claim']} ({f['evidence']})" for f in result["findings"]]
    lines.append(f"wrote {result['path']}/attributes.json, attributes.csv and {len(result['strips'])} strips")
    return lines
