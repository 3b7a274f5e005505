"""The numbers behind the latent-space figures: codes, grids of codes, paths between codes, the
axes of a Gaussian's ellipse and the densities q(z) and p(z) on a grid. No drawing happens here
(:mod:`vae.plots` draws); every function returns tensors or arrays.

Shapes: ``N`` inputs of ``D`` pixels, ``L`` latent dimensions. A model is a
:class:`vae.models.VAE` (``encode`` gives the posterior's mean and log-variance) or an
:class:`vae.models.Autoencoder` (``encode`` gives the code). Inputs and codes may sit on any device:
they are moved to the model's device, and model outputs stay there (call ``.cpu()`` before numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from vae.diagnostics import aggregate_log_density
from vae.validation import check_grid_size, check_positive

if TYPE_CHECKING:
    from vae.models import VAE, Autoencoder


def to_numpy(t: Tensor | np.ndarray | object) -> np.ndarray:
    """A tensor on any device (detached and brought to the CPU), or anything array-like, as a numpy array."""
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def to_model_device(model: torch.nn.Module, t: Tensor) -> Tensor:
    """``t`` on the device that holds the parameters of ``model`` (unchanged if already there)."""
    return t.to(next(model.parameters()).device)


@torch.no_grad()
def codes(model: VAE | Autoencoder, x: Tensor) -> Tensor:
    """Where each input of ``x`` [N, D] lands in latent space: [N, L] on the model's device.

    For a VAE the mean of its posterior q(z|x); for an autoencoder its code.
    """
    out = model.encode(to_model_device(model, x))
    return out[0] if isinstance(out, tuple) else out


def grid_over_codes(z: Tensor, n: int = 15, coverage: float = 0.98, margin: float = 0.0) -> Tensor:
    """An n-by-n grid of 2-D points [n*n, 2] over the box holding ``coverage`` of the codes ``z`` [N, 2].

    The box runs, on each axis separately, from the (1 - coverage)/2 to the (1 + coverage)/2 quantile
    of the codes; ``margin`` (in code units) widens it by that much on every side, to look beyond
    the codes. Points go row by row, from the top row (largest z_2) down, each row from left
    (smallest z_1) to right: the order :func:`vae.plots.image_grid` tiles images in. On the CPU.
    """
    check_grid_size("n", n)
    if z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"codes must be [N, 2], got {list(z.shape)}")
    if not 0 < check_positive("coverage", coverage) <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    if margin != 0:
        margin = check_positive("margin", margin)
    z = z.detach().cpu()
    tail = (1 - coverage) / 2
    lo, hi = torch.quantile(z, tail, dim=0) - margin, torch.quantile(z, 1 - tail, dim=0) + margin
    if not (hi > lo).all():
        raise ValueError("the codes do not vary along some axis, so the box that holds them is flat: "
                         "give a margin > 0 to draw a grid around them")
    z1, z2 = torch.meshgrid(torch.linspace(lo[0], hi[0], n), torch.linspace(hi[1], lo[1], n), indexing="xy")
    return torch.stack([z1.flatten(), z2.flatten()], dim=1)


@torch.no_grad()
def interpolate(model: VAE | Autoencoder, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
    """Decoded images [steps, D] at ``steps`` evenly spaced codes on the straight line from the code
    of ``x_a`` [D] (first image) to the code of ``x_b`` [D] (last image), on the model's device.

    Codes as :func:`codes` gives them: the posterior mean for a VAE.
    """
    check_grid_size("steps", steps)
    if not (isinstance(x_a, Tensor) and isinstance(x_b, Tensor)) or x_a.dim() != 1 or x_a.shape != x_b.shape:
        raise ValueError("x_a and x_b must be two single inputs, tensors of shape [D]")
    z = codes(model, torch.stack([x_a, x_b]))
    t = torch.linspace(0, 1, steps, device=z.device).unsqueeze(1)
    return model.decode((1 - t) * z[0] + t * z[1])


def ellipse(mean: object, cov: object, n_std: float = 2.0) -> tuple[float, float, float]:
    """The ``n_std``-standard-deviation ellipse of the 2-D Gaussian N(``mean``, ``cov``): its full
    width and height (in the units of ``mean``) and its angle (degrees, anticlockwise from the z_1 axis).

    ``mean`` [2] and ``cov`` [2, 2] are arrays or tensors. The axes lie along the eigenvectors of
    ``cov``; the width is along the one with the larger eigenvalue, and each full axis is
    2 * ``n_std`` * sqrt(eigenvalue) long.
    """
    check_positive("n_std", n_std)
    cov = to_numpy(cov).astype(np.float64)
    if cov.shape != (2, 2) or to_numpy(mean).shape != (2,):
        raise ValueError(f"need a mean [2] and a covariance [2, 2], got {list(np.shape(mean))} and {list(cov.shape)}")
    values, vectors = np.linalg.eigh(cov)  # eigenvalues in ascending order
    if values[0] <= 0:
        raise ValueError(f"covariance must be positive definite, got eigenvalues {values.tolist()}")
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    return 2 * n_std * float(np.sqrt(values[1])), 2 * n_std * float(np.sqrt(values[0])), float(angle)


@torch.no_grad()
def density_grid(model: VAE, x: Tensor, limit: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The aggregate posterior q(z) of the inputs ``x`` [N, D] and the model's prior p(z), for a VAE
    with a 2-D code, evaluated on an n-by-n grid of evenly spaced points over [-limit, limit]^2.

    Returns two numpy arrays [n, n] of densities (per unit area of code space, not log): q first,
    then p. Row i holds the i-th value of z_2 from -limit up and column j the j-th value of z_1, so
    ``imshow(..., origin="lower", extent=(-limit, limit, -limit, limit))`` draws them the right way up.
    """
    check_positive("limit", limit)
    check_grid_size("n", n)
    mean, logvar = model.encode(to_model_device(model, x))
    g = torch.linspace(-limit, limit, n)
    z = torch.cartesian_prod(g, g).to(mean.device)  # the first coordinate varies slowest
    q, p = aggregate_log_density(mean, logvar, z).exp(), model.prior().log_prob(z).exp()
    return to_numpy(q).reshape(n, n).T, to_numpy(p).reshape(n, n).T
