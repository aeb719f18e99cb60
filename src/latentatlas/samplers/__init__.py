"""Latent-vector samplers: statistical constructions of z-points for the decoder, and their registry.

Every sampler follows the scikit-learn convention (see `base.Sampler`): keyword-only `__init__` that
only stores parameters, `fit(z)` returns `self`, learned attributes end in `_`, `sample(n, seed)`
returns float32 (n, N). A fitted sampler is saved as `sampler.json` plus one `.npy` per learned array
(never pickle) and reloaded with `load_sampler`; a reloaded sampler draws exactly the same vectors.

| name | construction |
| --- | --- |
| uniform-box | independent components uniform in a common [-b, b] (parts II, IV, V: misses the region) |
| component-box | independent uniform components, each in its own value interval (parts V, VII) |
| diagonal-gaussian | independent per-component Gaussians (part II's per-component fits) |
| gaussian | one multivariate normal with the full covariance (part VIII) |
| robust-gaussian | the same with a Minimum Covariance Determinant core (the later posts) |
| ellipsoid | PCA-whitened sampling inside one N-dimensional confidence ellipsoid, mapped back |
| planar-ellipses | part X exactly: the principal frame split into independent 2-D confidence ellipses |
| gmm | a full-covariance Gaussian mixture fitted ex post (Ghosh et al. 2020, pythae) |
| gmm-bic | the same, its number of components chosen by BIC or held-out likelihood (sweep kept) |
| regions | one full-space Gaussian per detected region (the fragmentation analysis), weighted by share |
| resample | real z-points with a small Gaussian jitter (a KDE-style baseline) |
| flow | a normalizing flow (zuko MAF or NSF), early-stopped on validation likelihood |
| two-stage | a two-stage VAE on z (Dai & Wipf 2019) |
| diffusion | a residual-MLP flow-matching prior on the whitened z, EMA weights, Heun ODE sampling |

`ellipsoid` and `planar-ellipses` share the affine transform (centre, rotate onto the principal axes)
but not the truncation: the ellipsoid cuts one joint N-dimensional Gaussian at a chi2_N bound, part X
solves N/2 independent 2-D problems, each plane inside its own measured confidence ellipse.

The density ladder (`log_likelihood(z)`, mean nats per dimension, on held-out z-points): diagonal-gaussian,
gaussian, robust-gaussian, gmm, gmm-bic, regions, flow, two-stage (an importance-sampled bound). The other
samplers define no density and raise LatentAtlasError when asked for one.

Usage: ``make_sampler("gaussian").fit(z).sample(64, seed=0)``. The samplers that train a network (flow,
two-stage) take ``fit(z, progress=callback)``: an `EpochReport` after every epoch, for progress only.

Adding a sampler is one module and one line here. The module holds a `Sampler` subclass with its `name`,
the capability attributes that hold for it (`full_covariance`, `independent_components`, `neural`;
`defines_density` follows from implementing `_log_density`), its parameters as typed fields
``x: float = option(default, help=..., parse=..., check=...)`` (an option with a help text becomes the
command-line flag ``--x``), `_fit`, `_sample` and the learned attributes it saves (`_learned_arrays`,
`_learned_scalars`, documented in its "Attributes" section). Then import it below, add it to `SAMPLERS`
and give it a row in the table above. Validation, `get_params`, saving, loading, the CLI flags and every
reader of a capability follow from these declarations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.io import load_npy, read_json
from latentatlas.samplers.base import FORMAT, FORMAT_VERSION, EpochCallback, EpochReport, Sampler
from latentatlas.samplers.box import ComponentBox, UniformBox
from latentatlas.samplers.diffusion import Diffusion
from latentatlas.samplers.flow import Flow
from latentatlas.samplers.gaussian import DiagonalGaussian, Ellipsoid, Gaussian, RobustGaussian
from latentatlas.samplers.mixture import GaussianMixtureSampler, GaussianMixtureSweep
from latentatlas.samplers.planar import PlanarEllipses
from latentatlas.samplers.regions import RegionSampler
from latentatlas.samplers.resample import Resample
from latentatlas.samplers.two_stage import TwoStage

__all__ = [
    "SAMPLERS",
    "ComponentBox",
    "DiagonalGaussian",
    "Diffusion",
    "Ellipsoid",
    "EpochCallback",
    "EpochReport",
    "Flow",
    "Gaussian",
    "GaussianMixtureSampler",
    "GaussianMixtureSweep",
    "PlanarEllipses",
    "RegionSampler",
    "Resample",
    "RobustGaussian",
    "Sampler",
    "TwoStage",
    "UniformBox",
    "load_sampler",
    "make_sampler",
    "sampler_names",
    "sampler_options",
]

# The registry, in the order of the series (the order of the CLI's list, the evaluation's rows, the report).
SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (
        UniformBox,
        ComponentBox,
        DiagonalGaussian,
        Gaussian,
        RobustGaussian,
        Ellipsoid,
        PlanarEllipses,
        GaussianMixtureSampler,
        GaussianMixtureSweep,
        RegionSampler,
        Resample,
        Flow,
        TwoStage,
        Diffusion,
    )
}


def sampler_names(neural: bool = True) -> list[str]:
    """The registered sampler names in the order of the series; `neural=False` leaves out those that
    train a network (flow, two-stage), for callers that fit samplers interactively."""
    return [name for name, cls in SAMPLERS.items() if neural or not cls.neural]


def _sampler_class(name: str) -> type[Sampler]:
    if name not in SAMPLERS:
        raise LatentAtlasError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def sampler_options(name: str) -> list[str]:
    """The parameter names `make_sampler(name, ...)` accepts."""
    return _sampler_class(name).param_names()


def make_sampler(name: str, **options: Any) -> Sampler:
    """Build (unfitted) sampler `name` with `options`; unknown names and bad options raise LatentAtlasError."""
    cls = _sampler_class(name)
    accepted = sampler_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) if accepted else "none"
        raise LatentAtlasError(f"sampler {name!r} has no option {', '.join(unknown)} (options: {allowed})")
    sampler = cls(**options)
    sampler.validate_params()
    return sampler


def load_sampler(folder: str | os.PathLike) -> Sampler:
    """Rebuild a fitted sampler saved with `sampler.save(folder)`."""
    folder = Path(folder)
    manifest_path = folder / "sampler.json"
    if not manifest_path.is_file():
        raise LatentAtlasError(f"{folder} is not a saved sampler folder (no sampler.json)")
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LatentAtlasError(f"{manifest_path} is not a latentatlas sampler file")
    if manifest.get("version") != FORMAT_VERSION:
        raise LatentAtlasError(f"{manifest_path} has unsupported version {manifest.get('version')!r}")
    try:
        name, params, fitted, arrays = (manifest[k] for k in ("sampler", "params", "fitted", "arrays"))
    except KeyError as exc:
        raise LatentAtlasError(f"{manifest_path} lacks the field {exc.args[0]!r}") from None
    extra = manifest.get("extra", {})
    if not all(isinstance(part, dict) for part in (params, fitted, arrays, extra)):
        raise LatentAtlasError(f"{manifest_path} is damaged: params, fitted, arrays and extra must be objects")
    sampler = make_sampler(name, **params)
    expected = set(type(sampler)._learned_arrays)
    if set(arrays) != expected:
        raise LatentAtlasError(f"{manifest_path} lists arrays {sorted(arrays)}, expected {sorted(expected)}")
    for file in [*arrays.values(), *extra.values()]:
        if not isinstance(file, str) or Path(file).name != file:
            raise LatentAtlasError(f"{manifest_path}: file {file!r} must lie in the sampler folder")
    scalars = ("n_features_", "n_samples_fit_", *type(sampler)._learned_scalars)
    missing = [attr for attr in scalars if attr not in fitted]
    if missing:
        raise LatentAtlasError(f"{manifest_path} lacks the fitted value(s) {', '.join(missing)}")
    for attr in scalars:
        setattr(sampler, attr, fitted[attr])
    for attr, file in arrays.items():
        setattr(sampler, attr, np.array(load_npy(folder / file, mmap=False)))
    sampler._load_extra(folder, extra)
    if not isinstance(getattr(sampler, "n_features_", None), int):
        raise LatentAtlasError(f"{manifest_path} lacks the fitted dimension n_features_")
    return sampler
