"""A normalizing flow on the z-points (zuko's MAF or neural spline flow): the top of the density ladder."""

from __future__ import annotations

import torch
from torch import nn

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.neural import NeuralSampler
from latentatlas.samplers.options import option, temperature_option

FLOW_KINDS = ("maf", "nsf")


def _check_kind(value: str, name: str) -> None:
    if value not in FLOW_KINDS:
        raise LatentAtlasError(f"flow {name} must be one of {', '.join(FLOW_KINDS)}, got {value!r}")


class Flow(NeuralSampler):
    """A normalizing flow on the whitened z-points (zuko's neural spline flow, or its masked
    autoregressive flow with `kind="maf"`), trained by maximum likelihood with early stopping on the
    validation log-likelihood (pythae's MAF sampler; the top of the density ladder).

    Sampling pushes seeded standard normal noise, times `temperature` T, through the inverse flow (N
    autoregressive passes per transform). The defaults are small (3 transforms of 2 x 64 hidden units, at
    most 100 epochs): on two moons embedded in 16 dimensions (3,000 points) the spline flow beats a Gaussian's held-out
    likelihood after ~20 s of CPU, where the affine MAF, unable to model a bimodal conditional, does not.

    Attributes
    ----------
    module_ : zuko.flows.Flow
        The trained flow (saved as weights.safetensors).
    mean_, components_, scales_, history_, best_epoch_, validation_log_likelihood_
        See `NeuralSampler`.
    """

    name = "flow"

    # and NeuralSampler's training options (epochs, patience, batch_size, lr, ...)
    kind: str = option("nsf", check=_check_kind)
    transforms: int = option(3, check=checks.positive_int)
    hidden: int = option(64, check=checks.positive_int)
    temperature: float = temperature_option()  # the base noise times T (fitting and the density ignore it)

    def _build(self, dim: int) -> nn.Module:
        import zuko

        flow_class = zuko.flows.MAF if self.kind == "maf" else zuko.flows.NSF
        hidden = (int(self.hidden), int(self.hidden))
        return flow_class(features=dim, transforms=int(self.transforms), hidden_features=hidden)

    def _loss(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return -module().log_prob(x)

    def _decode_noise(self, noise: torch.Tensor) -> torch.Tensor:
        return self.module_().transform.inv(noise * self.temperature)  # exact at T = 1
