"""Part X's generator: independent 2-D confidence ellipses in the coordinate planes of the principal frame."""

from __future__ import annotations

import numpy as np

from latentatlas.samplers.gaussian import Ellipsoid, principal_frame, truncated_normal_ball
from latentatlas.stats import as_view


def plane_groups(dim: int) -> list[list[int]]:
    """Principal axes paired into coordinate planes (0, 1), (2, 3), ...; an odd last axis stands alone."""
    return [list(range(start, min(start + 2, dim))) for start in range(0, dim, 2)]


class PlanarEllipses(Ellipsoid):
    """Part X of the series, exactly: an affine transform, then independent 2-D problems.

    1. Affine transform: centre the z-points at the origin and rotate them onto the principal axes of
       their covariance (y = (z - mean) @ components.T). In this frame every coordinate plane's
       confidence ellipse is centred at the origin with its axes along the coordinate axes.
    2. The principal axes are paired into coordinate planes (0, 1), (2, 3), ... (largest variances
       first; an odd last axis is a 1-D interval). In each plane the confidence ellipse is measured on
       the data: half-axes sqrt(lambda) times the radius that holds a `confidence` share of the real
       points' 2-D whitened radii (for Gaussian data sqrt(chi2_2.ppf(confidence))).
    3. Each plane is sampled on its own, independently of the others: a Gaussian restricted to its
       ellipse (uniform direction, squared whitened radius from chi2_2 truncated at the ellipse); the
       vectors are then transformed back (z = mean + y @ components).

    Unlike `ellipsoid`, which truncates one joint N-dimensional Gaussian at a single chi2_N bound, the
    planes here are truncated separately, so the joint sample is a product of 2-D problems: each plane's
    pair of components stays inside its own measured ellipse, while the joint Mahalanobis radius may
    exceed the ellipsoid's bound (up to the sum of the plane bounds).

    Attributes
    ----------
    mean_ : ndarray (N,)
    components_ : ndarray (N, N)
        Principal axes as rows, largest variance first.
    scales_ : ndarray (N,)
        sqrt of each axis' variance.
    plane_radius_ : ndarray (P,)
        The whitened radius of each plane's confidence ellipse (P = ceil(N / 2) planes).
    """

    name = "planar-ellipses"
    # Ellipsoid's subclass, but its planes tolerate a singular covariance (zero-variance axes stay at the
    # mean), so it does not need the N + 2 rows of a full-covariance fit.
    full_covariance = False
    _learned_arrays = ("mean_", "components_", "scales_", "plane_radius_")
    _learned_scalars = ()  # the `confidence` parameter and its check come from Ellipsoid

    def _fit(self, z: np.ndarray) -> None:
        self.mean_, self.components_, self.scales_ = principal_frame(z)
        groups = plane_groups(z.shape[1])
        safe = np.where(self.scales_ > 0, self.scales_, 1.0)
        radii_sq = []
        for chunk in as_view(z).chunks():
            whitened = ((chunk - self.mean_) @ self.components_.T) / safe
            radii_sq.append(np.stack([(whitened[:, g] ** 2).sum(axis=1) for g in groups], axis=1))
        # the measured confidence ellipse of each plane: the `confidence` quantile of its points' radii
        self.plane_radius_ = np.sqrt(np.quantile(np.concatenate(radii_sq), float(self.confidence), axis=0))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rotated = np.empty((n, self.n_features_))
        for group, radius in zip(plane_groups(self.n_features_), self.plane_radius_):
            rotated[:, group] = truncated_normal_ball(rng, n, len(group), float(radius)) * self.scales_[group]
        return self.mean_ + rotated @ self.components_
