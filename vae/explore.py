"""Figures for looking around a latent space, and an interactive explorer.

Like :mod:`vae.plots`, every function draws and returns its Figure (or Axes,
or widget) and never calls ``plt.show()``. ``image_shape`` is (height, width).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Rectangle
from torch import Tensor

from vae.checks import check_positive, check_positive_int
from vae.diagnostics import aggregate_log_density
from vae.models import VAE, Autoencoder
from vae.plots import vmax, codes, image_grid


def grid_over_codes(z: Tensor, n: int = 15, coverage: float = 0.98) -> Tensor:
    """An n-by-n grid of 2-D points [n*n, 2] over the box holding ``coverage`` of the codes ``z`` [N, 2] on each axis.

    Rows run from top (largest z_2) to bottom, as :func:`vae.plots.image_grid` draws them.
    """
    check_positive_int("n", n)
    if z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"codes must be [N, 2], got {list(z.shape)}")
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    tail = (1 - coverage) / 2
    lo, hi = torch.quantile(z, tail, dim=0), torch.quantile(z, 1 - tail, dim=0)
    z1, z2 = torch.meshgrid(torch.linspace(lo[0], hi[0], n), torch.linspace(hi[1], lo[1], n), indexing="xy")
    return torch.stack([z1.flatten(), z2.flatten()], dim=1)


@torch.no_grad()
def decoded_grid(
    model: VAE | Autoencoder,
    grid: Tensor,
    image_shape: tuple[int, int],
    holes: Tensor | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Decode a square grid of codes [n*n, 2]; shade in red the cells where ``holes`` [n*n] (bool) is true."""
    n = int(round(len(grid) ** 0.5))
    if n * n != len(grid):
        raise ValueError(f"grid must hold a square number of points, got {len(grid)}")
    ax = image_grid(model.decode(grid.to(model.device)), image_shape, n, ax, vmax(model))
    if holes is not None:
        h, w = image_shape
        for i in torch.nonzero(holes).flatten().tolist():
            r, c = divmod(i, n)
            ax.add_patch(Rectangle((c * (w + 1) - 0.5, r * (h + 1) - 0.5), w, h, color="tab:red", alpha=0.3, lw=0))
    return ax


@torch.no_grad()
def posterior_ellipses(
    model: VAE, x: Tensor, labels: Tensor, n_sigma: float = 2.0, ax: plt.Axes | None = None
) -> Figure:
    """Each input's q(z|x) in a 2-D latent space: an ellipse of mean ± ``n_sigma`` standard deviations."""
    if model.latent_dim != 2:
        raise ValueError(f"posterior_ellipses needs a 2-D latent space, the model has {model.latent_dim}")
    check_positive("n_sigma", n_sigma)
    mean, logvar = (t.cpu().numpy() for t in model.encode(x))
    std = np.exp(0.5 * logvar)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    colours = plt.get_cmap("tab10")(labels.cpu().numpy() % 10)
    for m, s, c in zip(mean, std, colours):
        ax.add_patch(Ellipse(m, 2 * n_sigma * s[0], 2 * n_sigma * s[1], facecolor=c, edgecolor=c, alpha=0.15, lw=0.8))
    ax.scatter(mean[:, 0], mean[:, 1], c=colours, s=6)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", aspect="equal",
           title=f"posteriors $q(z\\mid x)$: mean $\\pm$ {n_sigma:g} std")
    return ax.figure


@torch.no_grad()
def aggregate_posterior(model: VAE, x: Tensor, limit: float = 3.5, n: int = 141) -> Figure:
    """The aggregate posterior q(z) = mean over x of q(z|x) next to the prior N(0, I), for a 2-D latent space.

    Both densities are drawn on the same colour scale; the prior's 1, 2 and 3
    standard-deviation circles are overlaid on each.
    """
    if model.latent_dim != 2:
        raise ValueError(f"aggregate_posterior needs a 2-D latent space, the model has {model.latent_dim}")
    mean, logvar = model.encode(x)
    g = torch.linspace(-limit, limit, n)
    z = torch.cartesian_prod(g, g).to(mean.device)  # first coordinate varies slowest
    q = aggregate_log_density(mean, logvar, z).exp().reshape(n, n).T.cpu().numpy()
    p = model.prior().log_prob(z).exp().reshape(n, n).T.cpu().numpy()
    vmax = max(q.max(), p.max())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for ax, density, title in zip(axes, (q, p), ("aggregate posterior $q(z)$", "prior $p(z) = N(0, I)$")):
        image = ax.imshow(density, origin="lower", extent=(-limit, limit, -limit, limit), cmap="viridis", vmin=0, vmax=vmax)
        for r in (1, 2, 3):
            ax.add_patch(plt.Circle((0, 0), r, fill=False, color="white", lw=0.8, ls="--"))
        ax.set(title=title, xlabel="$z_1$")
    axes[0].set_ylabel("$z_2$")
    fig.colorbar(image, ax=axes, label="density", shrink=0.9)
    return fig


@torch.no_grad()
def traversals(
    model: VAE,
    dims: list[int],
    image_shape: tuple[int, int],
    z0: Tensor | None = None,
    span: float = 2.5,
    steps: int = 9,
) -> Figure:
    """One row per latent dimension in ``dims``: decode z0 with that coordinate swept over [−span, span].

    ``z0`` [L] defaults to the prior mean, 0. The other coordinates stay at z0.
    """
    check_positive_int("steps", steps)
    check_positive("span", span)
    if not dims or any(not 0 <= d < model.latent_dim for d in dims):
        raise ValueError(f"dims must be a non-empty list of latent indices below {model.latent_dim}, got {dims}")
    z0 = torch.zeros(model.latent_dim) if z0 is None else z0.detach().cpu()
    values = torch.linspace(-span, span, steps)
    z = z0.repeat(len(dims), steps, 1)
    for row, d in enumerate(dims):
        z[row, :, d] = values
    fig, ax = plt.subplots(figsize=(steps * 0.6 + 1.2, len(dims) * 0.62 + 0.5))
    image_grid(model.decode(z.reshape(-1, model.latent_dim).to(model.device)), image_shape, steps, ax, vmax(model))
    h = image_shape[0]
    for row, d in enumerate(dims):
        ax.text(-1.5, row * (h + 1) + h / 2, f"$z_{{{d}}}$", ha="right", va="center")
    ax.set_title(f"traversals: one coordinate from {-span:g} to {span:g}, the others fixed", fontsize=9)
    return fig


@torch.no_grad()
def interpolate(model: VAE | Autoencoder, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
    """Decoded images [steps, D] at evenly spaced codes on the line from the code of ``x_a`` to that of ``x_b`` [D]."""
    check_positive_int("steps", steps)
    z = codes(model, torch.stack([x_a, x_b]))
    t = torch.linspace(0, 1, steps, device=z.device).unsqueeze(1)
    return model.decode((1 - t) * z[0] + t * z[1])


@torch.no_grad()
def image_rows(rows: dict[str, Tensor], image_shape: tuple[int, int], vmax: dict[str, float] | None = None) -> Figure:
    """Stack rows of images [n, H*W], one per named row, each labelled on the left.

    ``vmax`` gives each row's brightest value (default: that row's maximum).
    """
    if not rows:
        raise ValueError("rows must name at least one row of images")
    ncols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(ncols * 0.6 + 1.5, len(rows) * 0.7))
    axes = np.atleast_1d(axes)
    for ax, (name, images) in zip(axes, rows.items()):
        image_grid(images, image_shape, ncols, ax, None if vmax is None else vmax.get(name))
        ax.text(-1.5, image_shape[0] / 2, name, ha="right", va="center", fontsize=9)
    return fig


def latent_explorer(model: VAE, image_shape: tuple[int, int], dims: list[int] | None = None, limit: float = 3.0):
    """An ipywidgets panel: one slider per latent dimension in ``dims`` (default: all), and the decoded image.

    Needs ``ipywidgets`` and a notebook front end that shows widgets (Jupyter,
    VS Code, Colab); on a static page use :func:`traversals` instead.
    """
    try:
        import ipywidgets as widgets
    except ImportError as err:
        raise ImportError("latent_explorer needs ipywidgets: pip install ipywidgets") from err
    dims = list(range(model.latent_dim)) if dims is None else dims
    sliders = {f"z{d}": widgets.FloatSlider(0.0, min=-limit, max=limit, step=0.1, description=f"z{d}") for d in dims}

    def show(**values: float) -> None:
        z = torch.zeros(1, model.latent_dim)
        for d in dims:
            z[0, d] = values[f"z{d}"]
        with torch.no_grad():
            image = model.decode(z.to(model.device)).cpu().reshape(image_shape).numpy()
        fig, ax = plt.subplots(figsize=(2.5, 2.5))
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=vmax(model))
        ax.set_axis_off()
        plt.show()

    return widgets.interactive(show, **sliders)
