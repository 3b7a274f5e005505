"""vae: the small library behind the book *Variational Autoencoders, Step by Step*.

Modules: ``models`` (Autoencoder, VAE, conditional on a label with ``n_classes``), ``priors`` (the
standard, mixture and VampPrior p(z)), ``objectives`` (KL, ELBO, IWAE, refined posteriors, bits/dim),
``training`` (fit, save, load), ``data`` (digits, toys, MNIST), ``plots`` (every figure and the
latent-space explorer), ``style`` (the figures' sizes and colour-blind-safe colours:
``use_book_style``); for single chapters: ``em`` (EM for a Gaussian mixture), ``tractable`` (a
model with an exact log p(x)), ``symbolic`` (the Gaussian KL derived with sympy), ``estimators``
(pathwise vs score-function gradients), ``diagnostics`` (active units, holes); ``doctor`` (what a
hand-written loss computes, in plain words); ``book`` (``glue``: numbers the prose quotes). The
assignments' grading tools are instructor tooling beside this library, in the top-level
``classroom`` package.

Devices: a model lives on one device: the CPU where it is built, or where ``fit`` puts it (CUDA
when available, unless ``device=`` says otherwise). Every public function takes tensors on any
device and moves them to the model's device in one place (``model.check`` for data,
``model.on_device`` for codes); tensor results stay there, so call ``.cpu()`` before numpy.
Summaries (``evaluate``, ``marginal_kl``, ``active_units``) come back as Python numbers and every
figure brings its data to the CPU itself. A CUDA GPU is used when present and never required.
"""

from vae.book import glue
from vae.data import load_digits, load_mnist
from vae.doctor import diagnose_loss
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
from vae.style import use_book_style
from vae.training import evaluate, fit, load, pick_device, save

__all__ = [
    "VAE",
    "Autoencoder",
    "bits_per_dim",
    "diagnose_loss",
    "elbo",
    "evaluate",
    "fit",
    "gaussian_kl",
    "gaussian_kl_mc",
    "glue",
    "iwae_bound",
    "load",
    "load_digits",
    "load_mnist",
    "log_likelihood_estimate",
    "pick_device",
    "refine_posterior",
    "save",
    "use_book_style",
]
