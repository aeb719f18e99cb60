"""Attributes and directions: what a direction in the latent space means (issue 13, item 1).

For every binary attribute of the source (CelebA's 40 attributes, stored as -1/1; 0 marks an image
without an attribute row) or generating factor (the synthetic faces' floats, split at the training
rows' median: "has it" means "above the median") this module compares the sub-bulk with the attribute
against the one without it:

- the mean shift d = mean(with) - mean(without), its Euclidean length and its length in Mahalanobis
  units of the whole bulk (sqrt(d' P d), P the bulk's precision matrix from `stats`);
- the share of variance it explains: along its own direction (between-class over total variance of the
  projections, eta squared) and of the whole bulk (p (1 - p) |d|^2 over the trace of the covariance);
- a linear probe: logistic regression on standardised z, fitted on the training rows, its AUC on the
  held-out rows says how linearly the attribute is encoded.

The attribute direction is the difference of class means (it needs no fit and is what a walk through
the centre should follow); the probe's normal (mapped back to z units) is kept beside it, and the
cosine between the two is reported: they differ where the bulk is anisotropic (the probe's normal is
close to P d, the discriminant direction).

Conditional generation (`latentatlas.analysis.conditions`) closes the loop with these probes.

Nothing here reads a run folder: `latentatlas.pipelines.attributes` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding, Verdict
from latentatlas.stats import moments, precision_matrix, single_thread_blas

if TYPE_CHECKING:
    from latentatlas.analysis.conditions import ConditionalCheck

# Columns of zpoints.parquet that describe the image, not its content.
RESERVED_COLUMNS = ("index", "image_id", "path", "subset", "partition")
DIRECTION = "difference of class means (mean with the attribute - mean without it)"


# ----------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class AttributeLabels:
    """Binary labels per z-point, one column per attribute: 1 has it, 0 has not, -1 unknown.

    Attributes
    ----------
    names : tuple of str
    values : ndarray of int8, shape (n, k)
    kinds : tuple of str
        "binary" (stored as -1/1 or 0/1) or "median-split" (a float factor above its median).
    thresholds : tuple of float or None
        The median of a split factor, None for binary attributes.
    skipped : dict
        Columns that are not attributes, with the reason.
    """

    names: tuple[str, ...]
    values: np.ndarray
    kinds: tuple[str, ...]
    thresholds: tuple[float | None, ...]
    skipped: dict[str, str]

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, mask: np.ndarray) -> AttributeLabels:
        """The labels of the selected rows (boolean mask or indices)."""
        return AttributeLabels(self.names, self.values[mask], self.kinds, self.thresholds, self.skipped)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.index(name)]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise LatentAtlasError(unknown_name(name, self.names))
        return self.names.index(name)


def unknown_name(name: str, names: Sequence[str]) -> str:
    """'unknown attribute X; did you mean Y?' with the nearest names by difflib (case-insensitive)."""
    by_lower = {n.lower(): n for n in names}
    nearest = [by_lower[m] for m in checks.nearest_names(name.lower(), by_lower, n=3, cutoff=0.5)]
    hint = f"did you mean {' or '.join(repr(n) for n in nearest)}?" if nearest else f"choose from {', '.join(names)}"
    return f"unknown attribute {name!r}; {hint}"


def attribute_labels(
    meta: pd.DataFrame, reference: np.ndarray | None = None, binarise: str = "median"
) -> AttributeLabels:
    """Binary labels from z-point metadata (zpoints.parquet) for every attribute-like column.

    Columns holding only -1/0/1 are binary (-1 or 0 = without, 1 = with; with -1 present, 0 = unknown as
    in CelebA rows without attributes); other numeric columns are split at the median of the
    `reference` rows (default all rows; pass the training rows so held-out rows do not move the split)
    when `binarise="median"`, and skipped when `binarise="skip"`.
    """
    if binarise not in ("median", "skip"):
        raise LatentAtlasError(f"binarise must be 'median' or 'skip', got {binarise!r}")
    reference = np.ones(len(meta), bool) if reference is None else np.asarray(reference, bool)
    if reference.shape != (len(meta),):
        raise LatentAtlasError(f"reference mask has {reference.shape} entries for {len(meta)} rows")
    names, columns, kinds, thresholds, skipped = [], [], [], [], {}
    for name in meta.columns:
        if name in RESERVED_COLUMNS:
            continue
        column = meta[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            skipped[str(name)] = "not numeric" if not pd.api.types.is_bool_dtype(column) else "boolean, not 0/1"
            continue
        values = column.to_numpy(dtype=np.float64)
        present = set(np.unique(values[np.isfinite(values)]).tolist())
        labels = np.full(len(values), -1, np.int8)
        without = -1.0 if -1.0 in present else 0.0
        if present <= {-1.0, 0.0, 1.0} and {without, 1.0} <= present:
            labels[values == 1] = 1  # with -1 present, 0 marks an image without attribute values: unknown
            labels[values == without] = 0
            kind, threshold = "binary", None
        elif len(present) <= 2:
            reason = "two values other than -1/1 or 0/1" if not present <= {-1.0, 0.0, 1.0} else "one class only"
            skipped[str(name)] = "constant" if len(present) < 2 else reason
            continue
        elif binarise == "skip":
            skipped[str(name)] = "not binary (binarise='skip')"
            continue
        else:
            threshold = float(np.nanmedian(values[reference]))
            finite = np.isfinite(values)
            labels[finite] = (values[finite] > threshold).astype(np.int8)
            kind = "median-split"
        names.append(str(name))
        columns.append(labels)
        kinds.append(kind)
        thresholds.append(threshold)
    stacked = np.stack(columns, axis=1) if columns else np.zeros((len(meta), 0), np.int8)
    return AttributeLabels(tuple(names), stacked, tuple(kinds), tuple(thresholds), skipped)


# ----------------------------------------------------------------------------- per-attribute effects


@dataclass(frozen=True)
class AttributeEffect:
    """One attribute's sub-bulks and probe. Shift and variance shares on the training rows, AUC held out."""

    name: str
    kind: str
    threshold: float | None
    n_with: int
    n_without: int
    prevalence: float
    shift_norm: float
    shift_mahalanobis: float
    variance_share_direction: float
    variance_share_total: float
    auc: float
    n_held_out: int
    cosine_probe_direction: float

    def to_dict(self) -> dict:
        return asdict(self)


def _probe(c: float, max_iter: int, class_weight: str | None, random_state: int) -> Pipeline:
    logistic = LogisticRegression(C=c, max_iter=max_iter, class_weight=class_weight, random_state=random_state)
    return make_pipeline(StandardScaler(), logistic)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


class AttributeAnalysis:
    """Sub-bulk shifts, attribute directions and linear probes for every attribute.

    Parameters
    ----------
    C, max_iter : logistic-regression regularisation and iteration limit.
    class_weight : "balanced" (default) or None. Balanced weights put the probe's 0.5 threshold where both
        classes are recalled alike, so "classified as having it" stays meaningful for rare attributes
        (Eyeglasses: 6 % of CelebA); the AUC hardly depends on it.
    min_class_rows : an attribute needs this many training rows with and without it (else it is skipped).
    random_state : seeds the probes' solver.

    Attributes
    ----------
    effects_ : list of AttributeEffect, sorted by held-out AUC (highest first).
    skipped_ : dict, attribute name -> why it got no probe.
    directions_ : dict, attribute name -> mean shift d (N,), in z units.
    probe_normals_ : dict, attribute name -> the probe's normal in z units (N,).
    probes_ : dict, attribute name -> fitted scikit-learn pipeline (scaler + logistic regression).
    mean_, covariance_, precision_ : the training bulk's centre, covariance and (pseudo-)precision.
    n_samples_, n_held_out_, n_features_ : int
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        max_iter: int = 1000,
        class_weight: str | None = "balanced",
        min_class_rows: int = 5,
        random_state: int = 0,
    ):
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.min_class_rows = min_class_rows
        self.random_state = random_state

    def fit(
        self, z: np.ndarray, labels: AttributeLabels, z_held_out: np.ndarray, labels_held_out: AttributeLabels
    ) -> AttributeAnalysis:
        c = checks.positive_number(self.C, "C")
        max_iter = checks.positive_int(self.max_iter, "max_iter")
        min_rows = checks.positive_int(self.min_class_rows, "min_class_rows")
        random_state = checks.seed(self.random_state, "random_state")
        if self.class_weight not in ("balanced", None):
            raise LatentAtlasError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")
        z = np.asarray(checks.points(z, min_rows=2), dtype=np.float64)
        z_held_out = np.asarray(checks.points(z_held_out, 1, z.shape[1], "held-out z-points"), dtype=np.float64)
        for rows, lab, what in ((z, labels, "training"), (z_held_out, labels_held_out, "held-out")):
            if len(lab) != len(rows):
                raise LatentAtlasError(f"{len(lab)} {what} label rows for {len(rows)} {what} z-points")
        if labels.names != labels_held_out.names:
            raise LatentAtlasError("training and held-out labels name different attributes")
        if not labels.names:
            raise LatentAtlasError("no attributes to analyse: the labels have no binary or splittable column")
        bulk = moments(z)
        self.mean_, self.covariance_ = bulk.mean, bulk.cov
        self.precision_, _ = precision_matrix(bulk.cov)
        self.n_samples_, self.n_held_out_, self.n_features_ = len(z), len(z_held_out), z.shape[1]
        total_variance = float(np.trace(bulk.cov))
        self.effects_, self.skipped_ = [], {}
        self.directions_, self.probe_normals_, self.probes_ = {}, {}, {}
        for j, name in enumerate(labels.names):
            y, y_held = labels.values[:, j], labels_held_out.values[:, j]
            n_with, n_without = int((y == 1).sum()), int((y == 0).sum())
            held = y_held >= 0
            if min(n_with, n_without) < min_rows:
                self.skipped_[name] = f"{n_with} training rows with it, {n_without} without (need {min_rows} each)"
                continue
            if len(np.unique(y_held[held])) < 2:
                self.skipped_[name] = "the held-out rows hold only one class: no AUC"
                continue
            known = y >= 0
            d = z[y == 1].mean(axis=0) - z[y == 0].mean(axis=0)
            with single_thread_blas():
                probe = _probe(c, max_iter, self.class_weight, random_state).fit(z[known], y[known])
            scaler: StandardScaler = probe.named_steps["standardscaler"]
            logistic: LogisticRegression = probe.named_steps["logisticregression"]
            normal = logistic.coef_[0] / scaler.scale_
            auc = float(roc_auc_score(y_held[held], probe.decision_function(z_held_out[held])))
            prevalence = n_with / (n_with + n_without)
            self.directions_[name], self.probe_normals_[name], self.probes_[name] = d, normal, probe
            self.effects_.append(
                AttributeEffect(
                    name=name,
                    kind=labels.kinds[j],
                    threshold=labels.thresholds[j],
                    n_with=n_with,
                    n_without=n_without,
                    prevalence=prevalence,
                    shift_norm=float(np.linalg.norm(d)),
                    shift_mahalanobis=float(np.sqrt(max(d @ self.precision_ @ d, 0.0))),
                    variance_share_direction=_eta_squared(z[known], y[known], d),
                    variance_share_total=prevalence * (1 - prevalence) * float(d @ d) / total_variance
                    if total_variance > 0
                    else 0.0,
                    auc=auc,
                    n_held_out=int(held.sum()),
                    cosine_probe_direction=_cosine(d, normal),
                )
            )
        self.effects_.sort(key=lambda e: (-e.auc, e.name))
        return self

    def _fitted(self, name: str) -> None:
        if not hasattr(self, "effects_"):
            raise LatentAtlasError("AttributeAnalysis is not fitted yet: call fit() first")
        if name not in self.probes_:
            if name in self.skipped_:
                raise LatentAtlasError(f"attribute {name!r} has no probe: {self.skipped_[name]}")
            raise LatentAtlasError(unknown_name(name, [e.name for e in self.effects_]))

    def effect(self, name: str) -> AttributeEffect:
        self._fitted(name)
        return next(e for e in self.effects_ if e.name == name)

    def unit_direction(self, name: str) -> np.ndarray:
        """The attribute direction scaled to length 1 in the bulk's Mahalanobis units."""
        self._fitted(name)
        d = self.directions_[name]
        length = float(np.sqrt(max(d @ self.precision_ @ d, 0.0)))
        if length == 0:
            raise LatentAtlasError(f"attribute {name!r} shifts the bulk by zero: no direction to walk")
        return d / length

    def walk(self, name: str, steps: Sequence[float] | np.ndarray) -> np.ndarray:
        """Points centre + t * d for each t (Mahalanobis units) along the attribute direction, (len(steps), N)."""
        ts = np.asarray([checks.finite_number(t, "step") for t in steps], dtype=np.float64)
        return self.mean_ + ts[:, None] * self.unit_direction(name)[None, :]

    def predict(self, z: np.ndarray, name: str) -> np.ndarray:
        """The probe's class (1 has the attribute, 0 not) for each z-point."""
        self._fitted(name)
        z = np.asarray(checks.points(z, 1, self.n_features_), dtype=np.float64)
        return self.probes_[name].predict(z).astype(np.int8)

    def to_dict(self) -> dict:
        return {
            "n_train": self.n_samples_,
            "n_held_out": self.n_held_out_,
            "latent_dim": self.n_features_,
            "direction": DIRECTION,
            "probe": {
                "model": "logistic regression on standardised z (scikit-learn)",
                "C": self.C,
                "max_iter": self.max_iter,
                "class_weight": self.class_weight,
                "random_state": self.random_state,
                "metric": "AUC on the held-out rows",
            },
            "attributes": [e.to_dict() for e in self.effects_],
            "skipped": dict(self.skipped_),
        }


def _eta_squared(z: np.ndarray, y: np.ndarray, d: np.ndarray) -> float:
    """Between-class share of the variance of the projections onto d (eta squared)."""
    projection = z @ (d / max(float(np.linalg.norm(d)), 1e-300))
    total = float(((projection - projection.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    between = sum(
        (y == k).sum() * (projection[y == k].mean() - projection.mean()) ** 2 for k in (0, 1) if (y == k).any()
    )
    return float(between) / total


# ----------------------------------------------------------------------------- findings

HEADLINE_ATTRIBUTES = ("Male", "Smiling", "Eyeglasses")  # issue 13's expectation on CelebA
LINEAR_AUC = 0.9
LOOP_SHARE = 0.9


def _verdict(passed: int, total: int) -> Verdict:
    if total == 0:
        return "undecided"
    return "agrees" if passed == total else "disagrees" if passed == 0 else "mixed"


def attribute_findings(analysis: AttributeAnalysis, conditional: Sequence[ConditionalCheck] = ()) -> list[Finding]:
    """Linear encoding of the headline attributes (or of all, for a source without them) and the closed loop."""
    effects = {e.name: e for e in analysis.effects_}
    headline = [name for name in HEADLINE_ATTRIBUTES if name in effects]
    chosen = headline if len(headline) == len(HEADLINE_ATTRIBUTES) else list(effects)
    subject = " and ".join([", ".join(chosen[:-1]), chosen[-1]] if len(chosen) > 1 else chosen)
    claim = f"{subject if chosen == headline else 'The source attributes'} are linearly encoded in z"
    passed = [name for name in chosen if effects[name].auc >= LINEAR_AUC]
    aucs = ", ".join(f"{name} {effects[name].auc:.3f}" for name in chosen[:8]) + (" ..." if len(chosen) > 8 else "")
    reach = sum(e.auc >= LINEAR_AUC for e in analysis.effects_)
    findings = [
        Finding(
            key="attributes-linear",
            source="the expectation",
            claim=f"{claim} (held-out probe AUC >= {LINEAR_AUC})",
            verdict=_verdict(len(passed), len(chosen)),
            evidence=f"logistic-regression probe AUC on {analysis.n_held_out_} held-out z-points: {aucs}; "
            f"{reach} of {len(analysis.effects_)} attributes reach {LINEAR_AUC}",
        )
    ]
    if conditional:
        shares = "; ".join(f"{c.condition}: {c.share:.2f} of {c.n_samples}" for c in conditional)
        findings.append(
            Finding(
                key="attributes-conditional",
                source="the expectation",
                claim=f"Samples fitted on a condition keep it: decoded and re-encoded, the probes find it in "
                f">= {LOOP_SHARE:.0%} of them",
                verdict=_verdict(sum(c.share >= LOOP_SHARE for c in conditional), len(conditional)),
                evidence=f"probe-positive share after decode and re-encode ({conditional[0].sampler} sampler): "
                f"{shares}",
            )
        )
    return findings
