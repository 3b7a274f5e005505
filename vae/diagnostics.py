"""Looking inside a trained VAE: which latent dimensions it uses, and where its codes lie.

Shapes: ``N`` examples, ``L`` latent dimensions, ``M`` query points. ``mean`` and
``logvar`` are the encoder's outputs for N inputs, each [N, L]. KLs are in nats
per example. Tensors may sit on any device: query points are moved to where
``mean`` (or ``codes``) lives, and results come back there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal

from vae.validation import check_positive, check_positive_int
from vae.priors import diagonal_gaussian
from vae.priors import gaussian_kl


def _check_pair(mean: Tensor, logvar: Tensor) -> None:
    if mean.dim() != 2 or mean.shape != logvar.shape:
        raise ValueError(
            f"mean and logvar must both be [N, L], got {list(mean.shape)} and {list(logvar.shape)}"
        )


def kl_per_dimension(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z_j|x) || N(0, 1)) for each latent dimension j, averaged over the N inputs: [L] nats.

    The entries add up to the average of :func:`vae.objectives.gaussian_kl`:
    the KL of a diagonal Gaussian is a sum over dimensions.
    """
    _check_pair(mean, logvar)
    return gaussian_kl(mean.unsqueeze(-1), logvar.to(mean.device).unsqueeze(-1)).mean(0)


def activity(mean: Tensor) -> Tensor:
    """How much each latent dimension's posterior mean varies across inputs: Var_x E_q[z_j], [L].

    A dimension whose mean hardly moves from input to input carries no
    information about x (Burda et al., 2016, call it inactive).
    """
    if mean.dim() != 2 or len(mean) < 2:
        raise ValueError(f"mean must be [N, L] with N >= 2, got {list(mean.shape)}")
    return mean.var(0)


def active_units(mean: Tensor, threshold: float = 0.01) -> int:
    """The number of latent dimensions whose :func:`activity` exceeds ``threshold`` (0.01 by convention)."""
    check_positive("threshold", threshold)
    return int((activity(mean) > threshold).sum())


def aggregate_log_density(mean: Tensor, logvar: Tensor, z: Tensor, batch_size: int = 256) -> Tensor:
    """log q(z) of the aggregate posterior q(z) = (1/N) Σ_n q(z | x_n), at query points ``z`` [M, L]: [M].

    The mixture of all N encoder Gaussians: where the data's codes actually lie,
    to compare with the prior p(z).
    """
    _check_pair(mean, logvar)
    if z.dim() != 2 or z.shape[1] != mean.shape[1]:
        raise ValueError(f"z must be [M, {mean.shape[1]}], got {list(z.shape)}")
    check_positive_int("batch_size", batch_size)
    z = z.to(mean.device)
    components = diagonal_gaussian(mean, logvar)
    parts = [torch.logsumexp(components.log_prob(zb.unsqueeze(1)), dim=1) for zb in z.split(batch_size)]
    return torch.cat(parts) - math.log(len(mean))


def marginal_kl(
    mean: Tensor, logvar: Tensor, n_samples: int = 10_000, seed: int = 0, prior: Distribution | None = None
) -> float:
    """Monte Carlo estimate of KL(q(z) || p(z)) between the aggregate posterior and the prior, nats.

    Draws ``n_samples`` codes from q(z) (pick an input at random, then sample its
    q(z|x)) and averages log q(z) − log p(z). The average per-example KL splits
    into this term plus the mutual information between x and z under q
    (Hoffman and Johnson, 2016), so the mutual information is the difference.
    The prior is N(0, I) unless ``prior`` gives another, e.g. a model's learned ``model.prior()``.
    """
    _check_pair(mean, logvar)
    check_positive_int("n_samples", n_samples)
    logvar = logvar.to(mean.device)
    generator = torch.Generator().manual_seed(seed)  # on the CPU, so a seed gives the same codes on any device
    pick = torch.randint(len(mean), (n_samples,), generator=generator).to(mean.device)
    eps = torch.randn(n_samples, mean.shape[1], generator=generator, dtype=mean.dtype).to(mean.device)
    z = mean[pick] + (0.5 * logvar[pick]).exp() * eps
    log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1) if prior is None else prior.log_prob(z)
    return (aggregate_log_density(mean, logvar, z) - log_prior).mean().item()


def in_holes(points: Tensor, codes: Tensor, factor: float = 3.0) -> Tensor:
    """Which of the ``points`` [M, L] lie in a hole among the training ``codes`` [N, L]: bool [M].

    A point is in a hole when its nearest code is more than ``factor`` times the
    typical spacing of the codes (the median distance from a code to its
    nearest neighbour): the decoder never saw a code near it. Scale-free, so
    models with differently sized code spaces can be compared.
    """
    check_positive("factor", factor)
    if codes.dim() != 2 or len(codes) < 2 or points.dim() != 2 or points.shape[1] != codes.shape[1]:
        raise ValueError(f"need points [M, L] and codes [N, L] with N >= 2; got {list(points.shape)}, {list(codes.shape)}")
    points = points.to(codes.device)
    spacing = torch.cdist(codes, codes).fill_diagonal_(math.inf).min(1).values.median()
    return torch.cdist(points, codes).min(1).values > factor * spacing
