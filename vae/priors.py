"""Priors p(z) over the latent space: the standard Gaussian and two learned ones.

Each prior is a small module whose ``forward()`` returns a torch ``Distribution`` with event shape
[L], so ``log_prob(z)`` takes codes [..., L] and returns nats [...], and ``sample((n,))`` returns
[n, L]. Each also gives the KL term of the ELBO, KL(q(z|x) || p(z)), through its ``kl`` method: in
closed form for the standard Gaussian, estimated from the ELBO's own draws of z for the others. A
:class:`vae.VAE` holds its prior as a submodule, so the prior's parameters train, move between
devices and are saved with the model.

* :class:`StandardNormal`: N(0, I), the prior of the classic VAE.
* :class:`MixturePrior`: a mixture of K Gaussians with learned weights, means and variances.
* :class:`VampPrior`: the "variational mixture of posteriors" (Tomczak and Welling, 2018): the
  average of the encoder's q(z|u_k) over K learned pseudo-inputs u_k.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from vae.boundary import checked, shaped_like, tensor
from vae.validation import check_positive_int

PRIORS = ("standard", "mixture", "vamp")


def diagonal_gaussian(mean: Tensor, logvar: Tensor) -> Distribution:
    """N(mean, diag(exp(logvar))) with event shape [L]: the form of every q(z|x) in the book."""
    return Independent(Normal(mean, (0.5 * logvar).exp(), validate_args=False), 1)


def gaussian_mixture(logits: Tensor, mean: Tensor, logvar: Tensor) -> Distribution:
    """Σ_k softmax(logits)_k N(mean_k, diag(exp(logvar_k))): ``logits`` [K], ``mean`` and ``logvar`` [K, L]."""
    weights = Categorical(logits=logits, validate_args=False)
    return MixtureSameFamily(weights, diagonal_gaussian(mean, logvar), validate_args=False)


@checked(mean=tensor, logvar=shaped_like("mean"))
def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form, nats, shape [...].

    Sums ½(−log σ² + σ² + μ² − 1) over the last (latent) dimension, with σ² − 1 computed as
    ``expm1(log σ²)``: exact near σ = 1, where the terms nearly cancel, and never below 0 after rounding.
    """
    return 0.5 * (torch.expm1(logvar) - logvar + mean.pow(2)).sum(-1)


def monte_carlo_kl(q: Distribution, p: Distribution, z: Tensor) -> Tensor:
    """KL(q || p) estimated at draws ``z`` [B, S, L] of q (event shape [L], batch shape [B, 1]): [B] nats.

    The average over the S draws of log q(z) − log p(z): unbiased, whatever p is, with a standard
    error that shrinks as 1/sqrt(S).
    """
    return (q.log_prob(z) - p.log_prob(z)).mean(1)


class Prior(nn.Module):
    """p(z): ``forward()`` gives the distribution; ``kl`` the ELBO's KL term, by Monte Carlo."""

    def forward(self) -> Distribution:
        raise NotImplementedError

    def kl(self, mean: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)), [B] nats, for q = N(mean, diag(exp(logvar))) [B, L] and its draws ``z``.

        ``z`` is [B, L] (one draw per example) or [B, S, L]; this estimate uses those same draws.
        """
        draws = z if z.dim() == 3 else z.unsqueeze(1)  # [B, S, L]
        return monte_carlo_kl(diagonal_gaussian(mean.unsqueeze(1), logvar.unsqueeze(1)), self(), draws)


class StandardNormal(Prior):
    """p(z) = N(0, I) in ``latent_dim`` dimensions; nothing to learn, and a closed-form KL."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        # Not saved with the model (persistent=False): it is rebuilt from latent_dim.
        self.register_buffer("zeros", torch.zeros(latent_dim), persistent=False)

    def forward(self) -> Distribution:
        return diagonal_gaussian(self.zeros, self.zeros)

    def kl(self, mean: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        """The exact KL (:func:`gaussian_kl`); the draws ``z`` are not needed."""
        return gaussian_kl(mean, logvar)


class MixturePrior(Prior):
    """p(z) = Σ_k π_k N(μ_k, diag σ_k²) with K = ``n_components`` learned components.

    The weights start equal, the means at random points of N(0, I) and the variances at 0.1, so
    that the components start apart and can each follow a cluster of codes. With one component at
    mean 0 and variance 1 it is N(0, I).
    """

    def __init__(self, n_components: int, latent_dim: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.mean = nn.Parameter(torch.randn(n_components, latent_dim))
        self.logvar = nn.Parameter(torch.full((n_components, latent_dim), math.log(0.1)))

    def forward(self) -> Distribution:
        return gaussian_mixture(self.logits, self.mean, self.logvar)


class VampPrior(Prior):
    """p(z) = (1/K) Σ_k q(z | u_k): the encoder's posteriors at K = ``n_components`` pseudo-inputs.

    The pseudo-inputs u_k [K, D] are learned with the rest of the model; they live where the
    encoder's inputs do after scaling (grey levels divided by ``n_levels - 1``), and start at
    random values in [0, 1]. The prior is tied to the encoder: ``encode`` is the model's map from
    scaled inputs to ``(mean, logvar)``.
    """

    def __init__(self, n_components: int, input_dim: int, encode: Callable[[Tensor], tuple[Tensor, Tensor]]) -> None:
        super().__init__()
        self.pseudo_inputs = nn.Parameter(torch.rand(n_components, input_dim))
        self.encode = encode

    def forward(self) -> Distribution:
        mean, logvar = self.encode(self.pseudo_inputs)
        return gaussian_mixture(torch.zeros(len(mean), device=mean.device), mean, logvar)


def make_prior(
    name: str, n_components: int, latent_dim: int, input_dim: int, encode: Callable[[Tensor], tuple[Tensor, Tensor]]
) -> Prior:
    """The prior that ``VAE(..., prior=name, n_components=...)`` holds, its settings checked."""
    if name not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {name!r}")
    check_positive_int("n_components", n_components)
    if name == "standard":
        if n_components != 1:
            raise ValueError(f"the standard prior has one component; n_components must be 1, got {n_components}")
        return StandardNormal(latent_dim)
    if name == "mixture":
        return MixturePrior(n_components, latent_dim)
    return VampPrior(n_components, input_dim, encode)
