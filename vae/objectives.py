"""The quantities a VAE is trained and judged by, all in nats per example.

Every function returns one number per example (shape [B]) unless it says
otherwise; average over the batch yourself. Inputs may sit on any device: the
model moves them to its own, and results are returned there. Larger is better for
log-likelihoods, the ELBO and the IWAE bound; the KL is >= 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from vae.checks import check_nonnegative, check_positive, check_positive_int
from vae.models import VAE, Autoencoder, check_model
from vae.priors import StandardNormal, diagonal_gaussian


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form, shape [...].

    Sums ½(−log σ² + σ² + μ² − 1) over the last (latent) dimension, with σ² − 1 computed as
    ``expm1(log σ²)``: exact near σ = 1, where the terms nearly cancel, and never below 0 after rounding.
    """
    if mean.shape != logvar.shape:
        raise ValueError(f"mean and logvar must have the same shape, got {list(mean.shape)} and {list(logvar.shape)}")
    return 0.5 * (torch.expm1(logvar) - logvar + mean.pow(2)).sum(-1)


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


Posterior = tuple[Tensor, Tensor] | None  # (mean, logvar) of a diagonal Gaussian q(z|x), each [B, L]


class ELBO(NamedTuple):
    """The ELBO and its two terms, each [B] in nats: elbo = rec − beta · kl."""

    elbo: Tensor
    rec: Tensor
    kl: Tensor


def reconstruction_log_likelihood(
    model: VAE | Autoencoder, x: Tensor, z: Tensor, y: Tensor | None = None
) -> Tensor:
    """log p(x|z) summed over pixels, in nats (log p(x|z, y) for a conditional model, labels ``y`` [B]).

    ``x`` is [B, D]; ``z`` is [B, L] (one code per input) or [B, S, L]
    (S codes per input), giving [B] or [B, S].
    """
    check_model(model)
    x = model.check(x)
    return _log_likelihood(model, x, model.on_device(z), model.one_hot(y, x.shape[:1]))


def _log_likelihood(model: VAE | Autoencoder, x: Tensor, z: Tensor, c: Tensor | None = None) -> Tensor:
    """:func:`reconstruction_log_likelihood` for a batch that ``model.check`` has already validated."""
    if z.dim() == 3:
        x = x.unsqueeze(1)
        c = None if c is None else c.unsqueeze(1)
    return model._likelihood(z, c).log_prob(x)


def elbo(
    model: VAE | Autoencoder,
    x: Tensor,
    beta: float = 1.0,
    n_samples: int = 1,
    posterior: Posterior = None,
    y: Tensor | None = None,
) -> ELBO:
    """E_q[log p(x|z)] − beta · KL(q(z|x) || p(z)) per example, in nats.

    The expectation is estimated with ``n_samples`` reparameterised draws of z.
    With the standard prior N(0, I) the KL is exact (:func:`gaussian_kl`); a
    learned prior (:mod:`vae.priors`) has no closed form, and the KL is then the
    Monte Carlo average of log q(z|x) − log p(z) over the same draws of z, an
    unbiased estimate. With ``beta = 1`` this is a lower bound on log p(x).
    q is the encoder's, unless ``posterior`` gives its ``(mean, logvar)``, each
    [B, L] (e.g. from :func:`refine_posterior`). A conditional model needs the
    labels ``y`` [B]; the result then bounds log p(x|y).
    For an :class:`Autoencoder` the KL term is 0 and the result is
    log p(x | z = encode(x)), not a bound on anything.
    """
    check_model(model)
    n_samples = check_positive_int("n_samples", n_samples)
    beta = check_nonnegative("beta", beta)
    x = model.check(x)
    c = model.one_hot(y, x.shape[:1])
    if posterior is not None:
        if isinstance(model, Autoencoder):
            raise TypeError("an Autoencoder has no posterior to replace; pass posterior only with a VAE")
        mean, logvar = (model.on_device(t, name) for t, name in zip(posterior, ("posterior mean", "posterior logvar")))
        expected = [len(x), model.latent_dim]
        if list(mean.shape) != expected or list(logvar.shape) != expected:
            raise ValueError(
                f"posterior must be (mean, logvar), each of shape {expected}, "
                f"got {list(mean.shape)} and {list(logvar.shape)}"
            )
        posterior = (mean, logvar)
    return _elbo(model, x, beta, n_samples, posterior, c)


def _elbo(
    model: VAE | Autoencoder,
    x: Tensor,
    beta: float = 1.0,
    n_samples: int = 1,
    posterior: Posterior = None,
    c: Tensor | None = None,
) -> ELBO:
    """:func:`elbo` with its arguments already validated and on the model's device: the training loop's path.

    ``c``: the labels of a conditional model, one-hot [B, C].
    """
    if isinstance(model, Autoencoder):
        rec = _log_likelihood(model, x, model._encode(x))
        return ELBO(rec, rec, torch.zeros_like(rec))
    mean, logvar = model._encode(x, c) if posterior is None else posterior
    z = model.reparameterize(mean, logvar, n_samples)
    rec = _log_likelihood(model, x, z, c)
    if n_samples > 1:
        rec = rec.mean(1)
    if isinstance(model.latent_prior, StandardNormal):
        kl = gaussian_kl(mean, logvar)
    else:
        kl = monte_carlo_kl(model, mean, logvar, z)
    return ELBO(rec - beta * kl, rec, kl)


def monte_carlo_kl(model: VAE, mean: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """KL(q(z|x) || p(z)) estimated at draws ``z`` of q: the average of log q(z|x) − log p(z), [B] nats.

    q is N(mean, diag(exp(logvar))), ``mean`` and ``logvar`` [B, L]; ``z`` is [B, L] (one draw)
    or [B, S, L]; p(z) is the model's prior. Unbiased, whatever the prior; its standard error
    shrinks as 1/sqrt(S). :func:`_elbo` uses it for the priors without a closed-form KL.
    """
    draws = z if z.dim() == 3 else z.unsqueeze(1)  # [B, S, L]
    q = diagonal_gaussian(mean.unsqueeze(1), logvar.unsqueeze(1))
    return (q.log_prob(draws) - model.prior().log_prob(draws)).mean(1)


def refine_posterior(
    model: VAE, x: Tensor, steps: int = 100, lr: float = 1e-2, n_samples: int = 8, y: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Close the amortisation gap: fit q(z|x) to each example by gradient ascent on its own ELBO.

    Starts from the encoder's ``(mean, logvar)`` and takes ``steps`` Adam steps
    (learning rate ``lr``, ``n_samples`` draws of z per step) on each example's
    ELBO with the decoder held fixed and in eval mode. The ELBO of the result
    is still a lower bound on log p(x) for the same decoder, and usually a
    tighter one than the encoder's (Cremer et al., 2018). The model's weights
    and their gradients are left untouched. A conditional model needs the labels ``y`` [B].
    Returns ``mean``, ``logvar``, each [B, L].
    """
    check_model(model, vae_only=True)
    check_positive_int("steps", steps)
    lr = check_positive("lr", lr)
    n_samples = check_positive_int("n_samples", n_samples)
    x = model.check(x)
    c = model.one_hot(y, x.shape[:1])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        mean, logvar = model._encode(x, c)
    mean.requires_grad_()
    logvar.requires_grad_()
    optimizer = torch.optim.Adam([mean, logvar], lr=lr)
    for _ in range(steps):
        # Each example's ELBO depends on its own row only, so one sum serves them all.
        loss = -_elbo(model, x, 1.0, n_samples, (mean, logvar), c).elbo.sum()
        mean.grad, logvar.grad = torch.autograd.grad(loss, (mean, logvar))
        optimizer.step()
    model.train(was_training)
    return mean.detach(), logvar.detach()


def iwae_bound(model: VAE, x: Tensor, n_samples: int = 50, y: Tensor | None = None) -> Tensor:
    """The importance-weighted bound log (1/k) Σ_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x), with k = ``n_samples``.

    Burda et al. (2016): equals the ELBO in expectation for k = 1, never
    decreases with k in expectation, and tends to log p(x) as k grows. [B].
    p(z) is the model's prior, learned or not. A conditional model needs the
    labels ``y`` [B], and the bound is then on log p(x|y).
    """
    check_model(model, vae_only=True)
    n_samples = check_positive_int("n_samples", n_samples)
    x = model.check(x)
    return _iwae_bound(model, x, n_samples, model.one_hot(y, x.shape[:1]))


def _iwae_bound(model: VAE, x: Tensor, n_samples: int, c: Tensor | None = None) -> Tensor:
    """:func:`iwae_bound` for a batch that ``model.check`` has already validated (labels one-hot, if any)."""
    mean, logvar = model._encode(x, c)
    q = diagonal_gaussian(mean, logvar)
    z = q.rsample((n_samples,))  # [k, B, L]
    log_w = model._likelihood(z, c).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)
    return torch.logsumexp(log_w, dim=0) - math.log(n_samples)


@torch.inference_mode()
def log_likelihood_estimate(
    model: VAE, x: Tensor, n_samples: int = 1000, batch_size: int = 64, y: Tensor | None = None
) -> Tensor:
    """Estimate log p(x) per example with the IWAE bound for a large number ``n_samples`` of draws.

    Processes ``batch_size`` inputs at a time so memory stays at about
    n_samples · batch_size decoder outputs. Still a (tight) lower bound in expectation. [N].
    A conditional model needs the labels ``y`` [N]: the estimate is then of log p(x|y).
    """
    check_model(model, vae_only=True)
    n_samples = check_positive_int("n_samples", n_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    x = model.check(x)
    batches = _batches(x, model.one_hot(y, x.shape[:1]), batch_size)
    return torch.cat([_iwae_bound(model, xb, n_samples, cb) for xb, cb in batches])


def _batches(x: Tensor, c: Tensor | None, batch_size: int) -> list[tuple[Tensor, Tensor | None]]:
    """``x`` [N, D] and its one-hot labels ``c`` [N, C] (None for an unconditional model) in matching
    batches of ``batch_size``: pairs ``(xb, cb)``."""
    xs = x.split(batch_size)
    return list(zip(xs, [None] * len(xs) if c is None else c.split(batch_size)))


def bits_per_dim(nats: Tensor | float, n_dims: int) -> Tensor | float:
    """Convert nats per example to bits per dimension: nats / (n_dims · ln 2).

    Pass a negative log-likelihood (or −ELBO) to get the usual positive figure.
    """
    check_positive_int("n_dims", n_dims)
    return nats / (n_dims * math.log(2))

