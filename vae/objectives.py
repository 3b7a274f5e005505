"""The quantities a VAE is trained and judged by, all in nats per example.

Every function returns one number per example (shape [B]) unless it says otherwise; average over
the batch yourself. Larger is better for log-likelihoods, the ELBO and the IWAE bound; the KL is
>= 0. Each function is an entry point of the boundary (:mod:`vae.boundary`): called from outside,
it checks its arguments and moves them to the model's device; the bodies hold the maths.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from vae.boundary import checked, codes, data, labels, model_is, nonnegative, positive, positive_int, posterior
from vae.models import VAE, Autoencoder
from vae.priors import gaussian_kl, monte_carlo_kl
from vae.validation import check_positive_int

__all__ = ["ELBO", "elbo", "gaussian_kl", "gaussian_kl_mc", "importance_weighted", "iwae_bound",
           "log_likelihood_estimate", "monte_carlo_kl", "reconstruction", "reconstruction_log_likelihood",
           "refine_posterior", "bits_per_dim"]


class ELBO(NamedTuple):
    """The ELBO and its two terms, each [B] in nats: elbo = rec − beta · kl."""

    elbo: Tensor
    rec: Tensor
    kl: Tensor


@checked(model=model_is(VAE), x=data, z=codes, y=labels)
def reconstruction_log_likelihood(model: VAE, x: Tensor, z: Tensor, y: Tensor | None = None) -> Tensor:
    """log p(x|z) summed over pixels, in nats: [B] for codes ``z`` [B, L], [B, S] for ``z`` [B, S, L]."""
    if z.dim() == 3:  # S codes per input: score each input under each of its codes
        x = x.unsqueeze(1)
        y = None if y is None else y.unsqueeze(1)
    return model.likelihood(z, y).log_prob(x)


@checked(model=model_is(VAE), x=data, beta=nonnegative, n_samples=positive_int, posterior=posterior, y=labels)
def elbo(
    model: VAE,
    x: Tensor,
    beta: float = 1.0,
    n_samples: int = 1,
    posterior: tuple[Tensor, ...] | None = None,
    y: Tensor | None = None,
) -> ELBO:
    """E_q[log p(x|z)] − beta · KL(q(z|x) || p(z)) per example, in nats.

    The expectation is estimated with ``n_samples`` reparameterised draws of z; the KL is the
    model's (:meth:`VAE.kl`): the prior's, exact for N(0, I), else estimated from the same draws.
    With ``beta = 1`` this is a lower bound on log p(x) (on log p(x|y) for a conditional model,
    labels ``y`` [B]). q is the encoder's, unless ``posterior`` gives its parameters as ``encode``
    does: ``(mean, logvar)`` [B, L] (e.g. from :func:`refine_posterior`; a FlowVAE adds a context).
    """
    posterior = model.encode(x, y) if posterior is None else posterior
    z = model.reparameterize(*posterior, n_samples)
    rec = reconstruction_log_likelihood(model, x, z, y)
    if n_samples > 1:
        rec = rec.mean(1)
    kl = model.kl(*posterior, z)
    return ELBO(rec - beta * kl, rec, kl)


@checked(model=model_is(Autoencoder), x=data, y=labels)
def reconstruction(model: Autoencoder, x: Tensor, beta: float = 1.0, n_samples: int = 1, y: None = None) -> ELBO:
    """What an autoencoder is trained on: log p(x | z = encode(x)) per example, [B] nats.

    Returned as an :class:`ELBO` whose KL is 0, so that ``fit`` and ``evaluate`` treat both models
    alike (``beta`` and ``n_samples`` change nothing here). It is not a bound on anything.
    """
    rec = model.likelihood(model.encode(x)).log_prob(x)
    return ELBO(rec, rec, torch.zeros_like(rec))


def log_weights(model: VAE, x: Tensor, n_samples: int, y: Tensor | None) -> tuple[Tensor, Tensor]:
    """For k = ``n_samples`` draws z_i ~ q(z|x): log p(x|z_i) and log w_i = log p(x, z_i) − log q(z_i|x), [k, B]."""
    q = model.posterior(x, y)
    z = q.rsample((n_samples,))  # [k, B, L]
    rec = model.likelihood(z, y).log_prob(x)
    return rec, rec + model.prior().log_prob(z) - q.log_prob(z)


@checked(model=model_is(VAE), x=data, n_samples=positive_int, y=labels)
def iwae_bound(model: VAE, x: Tensor, n_samples: int = 50, y: Tensor | None = None) -> Tensor:
    """The importance-weighted bound log (1/k) Σ_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x), k = ``n_samples``: [B].

    Burda et al. (2016): equals the ELBO in expectation for k = 1, never decreases with k in
    expectation, and tends to log p(x) as k grows. p(z) is the model's prior, learned or not.
    """
    _, log_w = log_weights(model, x, n_samples, y)
    return torch.logsumexp(log_w, dim=0) - math.log(n_samples)


@checked(model=model_is(VAE), x=data, beta=nonnegative, n_samples=positive_int, y=labels)
def importance_weighted(
    model: VAE, x: Tensor, beta: float = 1.0, n_samples: int = 1, y: Tensor | None = None
) -> ELBO:
    """The IWAE bound as a training objective (Burda et al., 2016): ``fit(..., objective="iwae")``, [B] nats each.

    ``elbo`` is :func:`iwae_bound` with k = ``n_samples`` (the same value for the same draws),
    ``rec`` the average of log p(x|z_i) over the k draws and ``kl`` = rec − elbo, what the bound
    charges beyond it, so that elbo = rec − kl as for the ELBO (for k = 1, kl is log q(z|x) − log p(z)
    at the draw). Its gradient weights each draw by its normalised importance weight. ``beta`` is
    not used: the bound has no KL term to weight, so ``fit`` refuses ``beta`` ≠ 1 and ``warmup``.
    """
    rec, log_w = log_weights(model, x, n_samples, y)
    bound = torch.logsumexp(log_w, dim=0) - math.log(n_samples)
    rec = rec.mean(0)
    return ELBO(bound, rec, rec - bound)


@torch.inference_mode()
@checked(model=model_is(VAE), x=data, n_samples=positive_int, batch_size=positive_int, y=labels)
def log_likelihood_estimate(
    model: VAE, x: Tensor, n_samples: int = 1000, batch_size: int = 64, y: Tensor | None = None
) -> Tensor:
    """log p(x) per example, [N]: the IWAE bound with many draws, ``batch_size`` inputs at a time.

    Memory stays at about n_samples · batch_size decoder outputs. Still a (tight) lower bound in
    expectation; of log p(x|y) for a conditional model.
    """
    return torch.cat([iwae_bound(model, xb, n_samples, yb) for xb, yb in batches(x, y, batch_size)])


@checked(model=model_is(VAE), x=data, steps=positive_int, lr=positive, n_samples=positive_int, y=labels)
def refine_posterior(
    model: VAE, x: Tensor, steps: int = 100, lr: float = 1e-2, n_samples: int = 8, y: Tensor | None = None
) -> tuple[Tensor, ...]:
    """Close the amortisation gap: fit q(z|x) to each example by gradient ascent on its own ELBO.

    Starts from the encoder's parameters of q and takes ``steps`` Adam steps (learning rate
    ``lr``, ``n_samples`` draws of z per step) on each example's ELBO with the decoder held fixed
    and in eval mode. The ELBO of the result is still a lower bound on log p(x) for the same
    decoder, and usually a tighter one than the encoder's (Cremer et al., 2018). The model's
    weights and their gradients are left untouched. Returns the parameters as ``encode`` does:
    ``mean``, ``logvar``, each [B, L] (for a FlowVAE also the context [B, H] of its flow's steps).
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        posterior = [p.requires_grad_() for p in model.encode(x, y)]  # mean, logvar (, context)
    optimizer = torch.optim.Adam(posterior, lr=lr)
    for _ in range(steps):
        # Each example's ELBO depends on its own row only, so one sum serves them all.
        loss = -elbo(model, x, 1.0, n_samples, posterior, y).elbo.sum()
        grads = torch.autograd.grad(loss, posterior, allow_unused=True)  # a flow of length 0 ignores its context
        for p, grad in zip(posterior, grads):
            p.grad = grad
        optimizer.step()
    model.train(was_training)
    return tuple(p.detach() for p in posterior)


def batches(x: Tensor, y: Tensor | None, batch_size: int) -> list[tuple[Tensor, Tensor | None]]:
    """``x`` [N, D] and its labels ``y`` [N] (or None) in matching batches of ``batch_size``."""
    xs = x.split(batch_size)
    return list(zip(xs, [None] * len(xs) if y is None else y.split(batch_size)))


def gaussian_kl_mc(mean: Tensor, logvar: Tensor, n_samples: int = 1000) -> Tensor:
    """Monte Carlo estimate of :func:`gaussian_kl`: the average of log q(z) − log p(z) over z ~ q.

    Unbiased; its standard error shrinks as 1/sqrt(n_samples). Shape [...].
    """
    check_positive_int("n_samples", n_samples)
    std = (0.5 * logvar).exp()
    q = torch.distributions.Normal(mean, std)
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(std))
    z = q.rsample((n_samples,))
    return (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)


def bits_per_dim(nats: Tensor | float, n_dims: int) -> Tensor | float:
    """Convert nats per example to bits per dimension: nats / (n_dims · ln 2).

    Pass a negative log-likelihood (or −ELBO) to get the usual positive figure.
    """
    check_positive_int("n_dims", n_dims)
    return nats / (n_dims * math.log(2))
