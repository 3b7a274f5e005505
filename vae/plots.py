"""Figures for the book. Each function draws and returns its Figure; none calls ``plt.show()``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from torch import Tensor

from vae.checks import check_positive_int
from vae.models import VAE, Autoencoder


def _numpy(t: Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def image_grid(
    images: Tensor | np.ndarray,
    image_shape: tuple[int, int],
    ncols: int,
    ax: plt.Axes | None = None,
    vmax: float | None = None,
) -> plt.Axes:
    """Tile images [N, H*W] into rows of ``ncols`` and show them in grey on ``ax``."""
    images = _numpy(images).reshape(-1, *image_shape)
    n, (h, w) = len(images), image_shape
    nrows = -(-n // ncols)
    canvas = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    if ax is None:
        _, ax = plt.subplots(figsize=(ncols * 0.6, nrows * 0.6 * h / w))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else np.nanmax(canvas))
    ax.set_axis_off()
    return ax


def vmax(model: VAE | Autoencoder) -> float:
    """The brightest value the model's images can take: 1, or the top grey level."""
    return model.lik.n_levels - 1 if model.lik.name == "categorical" else 1.0


@torch.no_grad()
def codes(model: VAE | Autoencoder, x: Tensor) -> Tensor:
    """Where each input lands in latent space: the VAE's posterior mean or the AE's code, [N, L]."""
    out = model.encode(x)
    return out[0] if isinstance(model, VAE) else out


def latent_scatter(model: VAE | Autoencoder, x: Tensor, labels: Tensor, ax: plt.Axes | None = None) -> Figure:
    """Scatter the codes of ``x`` coloured by label; latents above 2-D are projected by PCA."""
    z = _numpy(codes(model, x))
    title = "latent space"
    if z.shape[1] > 2:
        pca = PCA(2).fit(z)
        z = pca.transform(z)
        title = f"latent space, first 2 principal components ({pca.explained_variance_ratio_.sum():.0%} of variance)"
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    points = ax.scatter(z[:, 0], z[:, 1], c=_numpy(labels), cmap="tab10", s=8, vmin=-0.5, vmax=9.5)
    ax.figure.colorbar(points, ax=ax, ticks=range(10), label="label")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    return ax.figure


@torch.no_grad()
def reconstructions(model: VAE | Autoencoder, x: Tensor, image_shape: tuple[int, int], n: int = 10) -> Figure:
    """The first ``n`` inputs (top row) above their reconstructions from the code or posterior mean."""
    check_positive_int("n", n)
    x = x[:n]
    recon = model.decode(codes(model, x))
    fig, axes = plt.subplots(2, 1, figsize=(n * 0.6, 1.6))
    image_grid(x, image_shape, n, axes[0], vmax(model))
    image_grid(recon, image_shape, n, axes[1], vmax(model))
    axes[0].set_title("inputs (top) and reconstructions (bottom)", fontsize=9)
    return fig


@torch.no_grad()
def manifold(
    model: VAE | Autoencoder,
    image_shape: tuple[int, int],
    n: int = 15,
    span: tuple[float, float] = (0.03, 0.97),
    limits: tuple[float, float] | None = None,
) -> Figure:
    """Decode an n-by-n grid over a 2-D latent space.

    By default the grid sits at the normal quantiles ``span`` in each
    coordinate, so equal steps cover equal prior mass. ``limits`` sets plain
    evenly spaced coordinates instead (useful for an autoencoder, whose codes
    have no prior).
    """
    if model.latent_dim != 2:
        raise ValueError(f"manifold needs a 2-D latent space, the model has {model.latent_dim}")
    check_positive_int("n", n)
    if limits is None:
        grid = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(*span, n))
    else:
        grid = torch.linspace(*limits, n)
    z1, z2 = torch.meshgrid(grid, grid.flip(0), indexing="xy")
    z = torch.stack([z1.flatten(), z2.flatten()], dim=1).to(model.device)
    fig, ax = plt.subplots(figsize=(5, 5))
    image_grid(model.decode(z), image_shape, n, ax, vmax(model))
    ax.set_title(f"decoded grid, $z$ from {grid[0]:.2f} to {grid[-1]:.2f}", fontsize=9)
    return fig


@torch.no_grad()
def prior_samples(model: VAE, image_shape: tuple[int, int], n: int = 40, ncols: int = 10) -> Figure:
    """Mean images of p(x|z) for ``n`` draws z ~ p(z)."""
    fig, ax = plt.subplots(figsize=(ncols * 0.6, -(-n // ncols) * 0.6))
    image_grid(model.sample(n), image_shape, ncols, ax, vmax(model))
    ax.set_title("samples from the prior", fontsize=9)
    return fig


@torch.no_grad()
def interpolation(
    model: VAE | Autoencoder, x_a: Tensor, x_b: Tensor, image_shape: tuple[int, int], steps: int = 10
) -> Figure:
    """Decode evenly spaced points on the straight line between the codes of ``x_a`` and ``x_b`` [D]."""
    check_positive_int("steps", steps)
    z = codes(model, torch.stack([x_a, x_b]))
    t = torch.linspace(0, 1, steps, device=z.device).unsqueeze(1)
    path = (1 - t) * z[0] + t * z[1]
    fig, ax = plt.subplots(figsize=(steps * 0.6, 0.9))
    image_grid(model.decode(path), image_shape, steps, ax, vmax(model))
    ax.set_title("interpolation in latent space", fontsize=9)
    return fig


def training_curves(history: dict[str, list[float]]) -> Figure:
    """ELBO, reconstruction log-likelihood and KL per epoch, train and (if present) validation."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, key, title in zip(axes, ("elbo", "rec", "kl"), ("ELBO", "reconstruction log-likelihood", "KL")):
        for split in ("train", "valid"):
            if f"{split}_{key}" in history:
                values = history[f"{split}_{key}"]
                ax.plot(range(1, len(values) + 1), values, label=split)
        ax.set(title=title, xlabel="epoch", ylabel="nats per example")
        ax.legend()
    fig.tight_layout()
    return fig
