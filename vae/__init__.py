"""vae: the small library behind the book *Variational Autoencoders, Step by Step*.

Modules: ``models`` (Autoencoder, VAE), ``objectives`` (KL, ELBO, IWAE, refined posteriors, bits/dim),
``training`` (fit, save, load), ``data`` (digits, toys, MNIST), ``plots``; for single
chapters: ``em`` (EM for a Gaussian mixture), ``tractable`` (a model with an exact log p(x)),
``symbolic`` (the Gaussian KL derived with sympy), ``estimators`` (pathwise vs score-function
gradients), ``diagnostics`` (active units, holes), ``explore`` (latent-space figures and explorer),
``classroom`` (release and grade the assignments).
"""

from vae.data import load_digits, load_mnist
from vae.models import VAE, Autoencoder
from vae.objectives import (
    bits_per_dim,
    elbo,
    gaussian_kl,
    gaussian_kl_mc,
    iwae_bound,
    log_likelihood_estimate,
    refine_posterior,
)
from vae.training import evaluate, fit, load, pick_device, save

__all__ = [
    "VAE",
    "Autoencoder",
    "bits_per_dim",
    "elbo",
    "evaluate",
    "fit",
    "gaussian_kl",
    "gaussian_kl_mc",
    "iwae_bound",
    "load",
    "load_digits",
    "load_mnist",
    "log_likelihood_estimate",
    "pick_device",
    "refine_posterior",
    "save",
]
