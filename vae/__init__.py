"""vae: the small library behind the book *Variational Autoencoders, Step by Step*.

Modules: ``models`` (Autoencoder, VAE), ``objectives`` (KL, ELBO, IWAE, bits/dim),
``training`` (fit, save, load), ``data`` (digits, toys, MNIST), ``plots``.
"""

from vae.data import load_digits, load_mnist
from vae.models import VAE, Autoencoder
from vae.objectives import bits_per_dim, elbo, gaussian_kl, gaussian_kl_mc, iwae_bound, log_likelihood_estimate
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
    "save",
]
