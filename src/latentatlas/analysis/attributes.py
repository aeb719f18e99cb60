"""Attributes and directions: what a direction in the latent space means (issue 13, item 1).

For every binary attribute or generating factor of the source (`labels.attribute_labels`) this module
compares the sub-bulk with the attribute against the one without it:

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

Labels come from `latentatlas.analysis.labels`; the closed-loop conditional check
(`latentatlas.pipelines.conditional`) judges its samples with these probes.

Nothing here reads a run folder: `latentatlas.pipelines.attributes` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from latentatlas import checks
from latentatlas.analysis.labels import AttributeLabels, attribute_labels, unknown_name
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding, count_verdict
from latentatlas.stats import moments, precision_matrix, single_thread_blas

__all__ = ["AttributeAnalysis", "AttributeEffect", "AttributeLabels", "attribute_labels"]
HEADLINE_ATTRIBUTES = ("Male", "Smiling", "Eyeglasses")  # issue 13's expectation on CelebA
LINEAR_AUC = 0.9
DIRECTION = "difference of class means (mean with the attribute - mean without it)"


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

    def findings(self) -> list[Finding]:
        """Linear encoding of the headline attributes (or of all, for a source without them)."""
        effects = {e.name: e for e in self.effects_}
        headline = [name for name in HEADLINE_ATTRIBUTES if name in effects]
        chosen = headline if len(headline) == len(HEADLINE_ATTRIBUTES) else list(effects)
        subject = " and ".join([", ".join(chosen[:-1]), chosen[-1]] if len(chosen) > 1 else chosen)
        claim = f"{subject if chosen == headline else 'The source attributes'} are linearly encoded in z"
        passed = [name for name in chosen if effects[name].auc >= LINEAR_AUC]
        aucs = ", ".join(f"{name} {effects[name].auc:.3f}" for name in chosen[:8]) + (" ..." if len(chosen) > 8 else "")
        reach = sum(e.auc >= LINEAR_AUC for e in self.effects_)
        linear = Finding(
            key="attributes-linear",
            source="the expectation",
            claim=f"{claim} (held-out probe AUC >= {LINEAR_AUC})",
            verdict=count_verdict(len(passed), len(chosen)),
            evidence=f"logistic-regression probe AUC on {self.n_held_out_} held-out z-points: {aucs}; "
            f"{reach} of {len(self.effects_)} attributes reach {LINEAR_AUC}",
        )
        return [linear]


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
