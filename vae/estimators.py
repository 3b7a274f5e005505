"""Two ways to estimate the gradient of an expectation, E_{z ~ N(mean, std²)}[f(z)].

* The **pathwise** (reparameterised) estimator writes z = mean + std · eps with
  eps ~ N(0, I) and differentiates f through that map: ∇ f(mean + std · eps).
* The **score-function** (REINFORCE) estimator never differentiates f:
  f(z) · ∇ log q(z), plus an optional constant ``baseline`` subtracted from f.

Both are unbiased; they differ in variance. Each function returns one
gradient estimate per sample (shape [S, L]), so the mean and variance over the
S samples can be compared directly. Gradients are taken with respect to
``mean`` and ``log_std`` (the log standard deviation), both [L]; they are computed
on ``mean``'s device (``f`` must accept z there) and returned there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import Normal

from vae.validation import check_positive_int

Objective = Callable[[Tensor], Tensor]  # z [S, L] -> f(z) [S], row by row


class Gradients(NamedTuple):
    """Per-sample gradient estimates: ``mean`` and ``log_std``, each [S, L]."""

    mean: Tensor
    log_std: Tensor


def _per_sample_parameters(mean: Tensor, log_std: Tensor, n_samples: int) -> tuple[Tensor, Tensor]:
    """S independent copies of the parameters, so that autograd keeps each sample's gradient apart."""
    check_positive_int("n_samples", n_samples)
    if mean.dim() != 1 or mean.shape != log_std.shape:
        raise ValueError(
            f"mean and log_std must be vectors of the same length, got {list(mean.shape)} and {list(log_std.shape)}"
        )
    copies = [p.detach().to(mean.device).expand(n_samples, -1).clone().requires_grad_() for p in (mean, log_std)]
    return copies[0], copies[1]


def _noise(like: Tensor, seed: int | None) -> Tensor:
    """Standard normal noise shaped like ``like``, drawn on the CPU (so a seed means the same draws on any device)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(like.shape, dtype=like.dtype, generator=generator).to(like.device)


def pathwise(f: Objective, mean: Tensor, log_std: Tensor, n_samples: int, seed: int | None = None) -> Gradients:
    """Reparameterised estimates ∇_{mean, log_std} f(mean + exp(log_std) · eps), one per eps, [S, L] each."""
    means, log_stds = _per_sample_parameters(mean, log_std, n_samples)
    eps = _noise(means, seed)
    values = f(means + log_stds.exp() * eps)
    return Gradients(*torch.autograd.grad(values.sum(), (means, log_stds)))


def score_function(
    f: Objective, mean: Tensor, log_std: Tensor, n_samples: int, seed: int | None = None, baseline: float = 0.0
) -> Gradients:
    """REINFORCE estimates (f(z) − baseline) · ∇_{mean, log_std} log N(z; mean, exp(log_std)²), [S, L] each.

    ``f`` is only evaluated, never differentiated, so it may be a black box.
    With the same ``seed`` the samples z are those :func:`pathwise` uses.
    """
    means, log_stds = _per_sample_parameters(mean, log_std, n_samples)
    eps = _noise(means, seed)
    with torch.no_grad():
        zs = means + log_stds.exp() * eps
        weights = f(zs) - baseline
    log_q = Normal(means, log_stds.exp()).log_prob(zs).sum(-1)
    return Gradients(*torch.autograd.grad((weights * log_q).sum(), (means, log_stds)))
