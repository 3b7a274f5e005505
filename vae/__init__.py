"""vae: the small library behind the book *Variational Autoencoders, Step by Step*.

The core, written to be read, in the order a chapter meets it: ``networks`` (MLPs),
``likelihoods`` (p(x|z)), ``priors`` (p(z), with the KL to each), ``flows`` (planar, radial and
inverse autoregressive flows for q(z|x)), ``models`` (Autoencoder, VAE, ConditionalVAE, FlowVAE:
encode → reparameterize → decode), ``objectives`` (ELBO, IWAE bound, refined posteriors,
bits/dim), ``options`` and ``training`` (the training loop and ``fit``, on the ELBO or the IWAE bound).

Around it: ``boundary`` and ``validation`` (inputs are checked and moved to the model's device
once, at the public entry points), ``saving`` (save, load), ``interface`` (the classroom
assignments' VAE), ``data`` (digits, toys, MNIST), ``latent`` (codes, grids, interpolations),
``plots`` (every figure), ``explorer``, ``animation`` and ``export`` (the interactive pieces; ``export``
puts a trained decoder on the website, for book/_static/latent-explorer.js), ``style`` (sizes
and colour-blind-safe colours: ``use_book_style``); for single chapters: ``em`` (EM for a Gaussian
mixture), ``tractable`` (a model with an exact log p(x)), ``symbolic`` (the Gaussian KL derived with
sympy), ``estimators`` (pathwise vs score-function gradients), ``diagnostics`` (active units, holes),
``loss_doctor`` (what a hand-written loss computes, in plain words); ``book`` (``glue``: numbers the
prose quotes). The assignments' grading tools are in the top-level ``classroom`` package.

Devices: a model lives on one device: the CPU where it is built, or where ``fit`` puts it (CUDA
when available, unless ``device=`` says otherwise). Every public function takes tensors on any
device and moves them to the model's device at the boundary; tensor results stay there, so call
``.cpu()`` before numpy. Summaries (``evaluate``, ``marginal_kl``, ``active_units``) come back as
Python numbers and every figure brings its data to the CPU itself.
"""

from vae.book import glue
from vae.boundary import pick_device
from vae.data import load_digits, load_mnist
from vae.loss_doctor import LossError, diagnose_loss
from vae.models import VAE, Autoencoder, ConditionalVAE, FlowVAE
from vae.objectives import (
    bits_per_dim,
    elbo,
    gaussian_kl,
    gaussian_kl_mc,
    iwae_bound,
    log_likelihood_estimate,
    refine_posterior,
)
from vae.saving import load, save
from vae.style import use_book_style
from vae.training import evaluate, fit

__all__ = [
    "VAE",
    "Autoencoder",
    "ConditionalVAE",
    "FlowVAE",
    "LossError",
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
