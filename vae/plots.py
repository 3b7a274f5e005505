"""Figures for the book.

Each function draws and returns its Figure (or Axes) and never calls ``plt.show()``. The numbers
they draw come from :mod:`vae.latent`; the interactive explorer is in :mod:`vae.explorer` and the
animation in :mod:`vae.animation`. ``image_shape`` is (height, width). Tensors may sit on any
device: codes are moved to the model's device to be decoded, and everything is brought back to
the CPU before matplotlib sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Ellipse, Rectangle
from matplotlib.patheffects import withStroke
from sklearn.decomposition import PCA
from torch import Tensor

from vae.latent import codes, density_grid, ellipse, interpolate, to_model_device
from vae.latent import to_numpy as _numpy
from vae.style import COLUMN_WIDTH, DIGIT_COLOURS, DIGIT_MARKERS, LINE_COLOURS
from vae.validation import check_grid_size, check_positive, check_positive_int, check_range

if TYPE_CHECKING:
    from vae.em import Mixture
    from vae.models import VAE, Autoencoder


def _signed(text: str) -> str:
    """``text`` with a typographic minus sign (as matplotlib's own tick labels) for each hyphen-minus."""
    return text.replace("-", "\N{MINUS SIGN}")


def image_grid(
    images: Tensor | np.ndarray,
    image_shape: tuple[int, int],
    ncols: int,
    ax: plt.Axes | None = None,
    vmax: float | None = None,
) -> plt.Axes:
    """Tile images [N, H*W] into rows of ``ncols`` and show them in grey on ``ax``."""
    check_positive_int("ncols", ncols)
    _check_image_shape(image_shape)
    images = _numpy(images)
    if images.ndim != 2 or images.shape[1] != image_shape[0] * image_shape[1] or len(images) == 0:
        raise ValueError(
            f"images must be [N, {image_shape[0] * image_shape[1]}] (N >= 1 images of "
            f"{image_shape[0]}x{image_shape[1]} pixels), got {list(images.shape)}"
        )
    images = images.reshape(-1, *image_shape)
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


def _check_image_shape(image_shape: tuple[int, int]) -> None:
    if not (isinstance(image_shape, (tuple, list)) and len(image_shape) == 2):
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
    for side in image_shape:
        check_positive_int("each side of image_shape", side)


def gaussian_ellipse(ax: plt.Axes, mean: object, cov: object, n_std: float = 2.0, **style) -> Ellipse:
    """Draw the ``n_std``-standard-deviation ellipse of the 2-D Gaussian N(``mean``, ``cov``) on ``ax``.

    ``mean`` [2] and ``cov`` [2, 2] may be arrays or tensors on any device; ``style`` goes to
    :class:`matplotlib.patches.Ellipse` (e.g. ``fill=False, color="C1"``). The book's one ellipse drawer.
    """
    width, height, angle = ellipse(mean, cov, n_std)
    return ax.add_patch(Ellipse(_numpy(mean).astype(np.float64), width, height, angle=angle, **style))


def code_axes(ax: plt.Axes, z1: object, z2: object, image_shape: tuple[int, int], max_ticks: int = 5) -> plt.Axes:
    """Label a tiled grid of decoded images with the codes behind it.

    ``z1`` [ncols] are the first coordinates of the columns, left to right; ``z2`` [nrows] the
    second coordinates of the rows, top to bottom. At most ``max_ticks`` ticks per axis.
    """
    h, w = image_shape
    ax.set_axis_on()
    for side in ax.spines.values():
        side.set_visible(False)
    for values, size, set_ticks in ((_numpy(z1), w, ax.set_xticks), (_numpy(z2), h, ax.set_yticks)):
        every = max(1, -(-len(values) // max_ticks))
        picked = range(0, len(values), every)
        set_ticks([i * (size + 1) + (size - 1) / 2 for i in picked], [_signed(f"{values[i]:.2g}") for i in picked])
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    ax.tick_params(length=2, pad=1)
    return ax


def digit_scatter(ax: plt.Axes, z: Tensor | np.ndarray, labels: Tensor | np.ndarray, size: float = 8) -> None:
    """Scatter 2-D points ``z`` [N, 2] by digit ``labels`` [N] (0 to 9) with the book's colour and marker
    per digit, write each digit in bold at the median of its points, and add a legend outside the axes."""
    z, labels = _numpy(z), _numpy(labels)
    if z.ndim != 2 or z.shape[1] != 2 or labels.shape != (len(z),):
        raise ValueError(f"need points [N, 2] and labels [N], got {list(z.shape)} and {list(labels.shape)}")
    for digit in np.unique(labels).astype(int):
        here = z[labels == digit]
        ax.scatter(*here.T, s=size, color=DIGIT_COLOURS[digit], marker=DIGIT_MARKERS[digit], lw=0, label=str(digit))
        ax.text(*np.median(here, axis=0), str(digit), ha="center", va="center", fontsize=12, weight="bold",
                path_effects=[withStroke(linewidth=3, foreground="white")])
    ax.legend(title="digit", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=1.8, handletextpad=0.2,
              frameon=False)


def latent_scatter(model: VAE | Autoencoder, x: Tensor, labels: Tensor, ax: plt.Axes | None = None) -> Figure:
    """Scatter the codes of ``x`` coloured by label; latents above 2-D are projected by PCA."""
    if model.latent_dim < 2:
        raise ValueError(f"latent_scatter needs a 2-D latent space, the model has {model.latent_dim}")
    z = _numpy(codes(model, x))
    title = "latent space"
    if z.shape[1] > 2:
        pca = PCA(2).fit(z)
        z = pca.transform(z)
        title = f"first 2 principal components ({pca.explained_variance_ratio_.sum():.0%} of variance)"
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    digit_scatter(ax, z, labels)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    return ax.figure


@torch.no_grad()
def reconstructions(model: VAE | Autoencoder, x: Tensor, image_shape: tuple[int, int], n: int = 10) -> Figure:
    """The first ``n`` inputs (top row) above their reconstructions from the code or posterior mean."""
    check_positive_int("n", n)
    x = x[:n]
    recon = model.decode(codes(model, x))
    fig, axes = plt.subplots(2, 1, figsize=(min(n * 0.6, COLUMN_WIDTH), 1.6))
    image_grid(x, image_shape, n, axes[0], model.lik.max_value)
    image_grid(recon, image_shape, n, axes[1], model.lik.max_value)
    axes[0].set_title("inputs (top) and reconstructions (bottom)")
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
    check_grid_size("n", n)
    if limits is None:
        grid = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(*check_range("span", span, within=(0, 1)), n))
    else:
        grid = torch.linspace(*check_range("limits", limits), n)
    z1, z2 = torch.meshgrid(grid, grid.flip(0), indexing="xy")
    z = torch.stack([z1.flatten(), z2.flatten()], dim=1)
    fig, ax = plt.subplots(figsize=(5, 5))
    image_grid(model.decode(to_model_device(model, z)), image_shape, n, ax, model.lik.max_value)
    code_axes(ax, grid, grid.flip(0), image_shape)
    ax.set_title(_signed(f"decoded grid, $z$ from {grid[0]:.2f} to {grid[-1]:.2f}"))
    return fig


@torch.no_grad()
def prior_samples(model: VAE, image_shape: tuple[int, int], n: int = 40, ncols: int = 10) -> Figure:
    """Mean images of p(x|z) for ``n`` draws z ~ p(z)."""
    fig, ax = plt.subplots(figsize=(ncols * 0.6, -(-n // ncols) * 0.6))
    image_grid(model.sample(n), image_shape, ncols, ax, model.lik.max_value)
    ax.set_title("samples from the prior")
    return fig


@torch.no_grad()
def interpolation(
    model: VAE | Autoencoder, x_a: Tensor, x_b: Tensor, image_shape: tuple[int, int], steps: int = 10
) -> Figure:
    """Draw :func:`vae.latent.interpolate`: the decoded straight line between the codes of ``x_a`` and ``x_b`` [D]."""
    check_grid_size("steps", steps)
    fig, ax = plt.subplots(figsize=(steps * 0.6, 0.9))
    image_grid(interpolate(model, x_a, x_b, steps), image_shape, steps, ax, model.lik.max_value)
    ax.set_title("interpolation in latent space")
    return fig


def training_curves(history: dict[str, list[float]]) -> Figure:
    """ELBO, reconstruction log-likelihood and KL per epoch, train and (if present) validation."""
    fig, axes = plt.subplots(1, 3, figsize=(COLUMN_WIDTH, 2.6), layout="constrained")
    for ax, key, title in zip(axes, ("elbo", "rec", "kl"), ("ELBO", "reconstruction", "KL")):
        for split in ("train", "valid"):
            if f"{split}_{key}" in history:
                values = history[f"{split}_{key}"]
                ax.plot(range(1, len(values) + 1), values, label=split)
        ax.set(title=title, xlabel="epoch")
    axes[0].set_ylabel("nats per example")
    axes[0].legend()
    return fig


@torch.no_grad()
def decoded_grid(
    model: VAE | Autoencoder,
    grid: Tensor,
    image_shape: tuple[int, int],
    holes: Tensor | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Decode a square grid of codes [n*n, 2] (rows from top to bottom, as :func:`vae.latent.grid_over_codes` makes
    them), label the axes with the codes, and shade in red the cells where ``holes`` [n*n] (bool) is true."""
    n = round(len(grid) ** 0.5)
    if n * n != len(grid):
        raise ValueError(f"grid must hold a square number of points, got {len(grid)}")
    ax = image_grid(model.decode(to_model_device(model, grid)), image_shape, n, ax, model.lik.max_value)
    code_axes(ax, grid[:n, 0], grid[::n, 1], image_shape)
    if holes is not None:
        h, w = image_shape
        for i in torch.nonzero(holes).flatten().tolist():
            r, c = divmod(i, n)
            ax.add_patch(Rectangle((c * (w + 1) - 0.5, r * (h + 1) - 0.5), w, h, color=LINE_COLOURS[5], alpha=0.3, lw=0))  # vermillion
    return ax


@torch.no_grad()
def posterior_ellipses(
    model: VAE, x: Tensor, labels: Tensor, n_sigma: float = 2.0, ax: plt.Axes | None = None
) -> Figure:
    """Each input's q(z|x) in a 2-D latent space: an ellipse of mean ± ``n_sigma`` standard deviations."""
    if model.latent_dim != 2:
        raise ValueError(f"posterior_ellipses needs a 2-D latent space, the model has {model.latent_dim}")
    check_positive("n_sigma", n_sigma)
    mean, logvar = (_numpy(t) for t in model.encode(to_model_device(model, x)))
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6), layout="constrained")
    labels = _numpy(labels).astype(int)
    for m, lv, digit in zip(mean, logvar, labels):
        colour = DIGIT_COLOURS[digit]
        gaussian_ellipse(ax, m, np.diag(np.exp(lv)), n_sigma, facecolor=colour, edgecolor=colour, alpha=0.15, lw=0.8)
    digit_scatter(ax, mean, labels, size=10)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", aspect="equal",
           title=f"posteriors $q(z\\mid x)$: mean $\\pm$ {n_sigma:g} std")
    return ax.figure


def _density_panel(ax: plt.Axes, density: np.ndarray, limit: float, top: float) -> AxesImage:
    """Show a density from :func:`vae.latent.density_grid` on ``ax`` (colour scale 0 to ``top``), with the 1, 2 and 3
    standard-deviation circles of N(0, I) dashed on top."""
    image = ax.imshow(density, origin="lower", extent=(-limit, limit, -limit, limit), cmap="viridis", vmin=0, vmax=top)
    for r in (1, 2, 3):
        ax.add_patch(plt.Circle((0, 0), r, fill=False, color="white", lw=0.8, ls="--"))
    return image


@torch.no_grad()
def aggregate_posterior(model: VAE, x: Tensor, limit: float = 3.5, n: int = 141) -> Figure:
    """The aggregate posterior q(z) = mean over x of q(z|x) next to the prior N(0, I), for a 2-D latent space.

    Both densities are drawn on the same colour scale; the prior's 1, 2 and 3
    standard-deviation circles are overlaid on each.
    """
    if model.latent_dim != 2:
        raise ValueError(f"aggregate_posterior needs a 2-D latent space, the model has {model.latent_dim}")
    q, p = density_grid(model, x, limit, n)
    top = max(q.max(), p.max())
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.0), sharey=True, layout="constrained")
    for ax, density, title in zip(axes, (q, p), ("aggregate posterior $q(z)$", "prior $p(z) = N(0, I)$")):
        image = _density_panel(ax, density, limit, top)
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
    check_grid_size("steps", steps)
    check_positive("span", span)
    if not dims or any(not 0 <= d < model.latent_dim for d in dims):
        raise ValueError(f"dims must be a non-empty list of latent indices below {model.latent_dim}, got {dims}")
    z0 = torch.zeros(model.latent_dim) if z0 is None else z0.detach().cpu()
    if z0.shape != (model.latent_dim,):
        raise ValueError(f"z0 must be a code of shape [{model.latent_dim}], got {list(z0.shape)}")
    values = torch.linspace(-span, span, steps)
    z = z0.repeat(len(dims), steps, 1)
    for row, d in enumerate(dims):
        z[row, :, d] = values
    fig, ax = plt.subplots(figsize=(min(COLUMN_WIDTH, steps * 0.5 + 0.9), len(dims) * 0.6 + 0.5))
    decoded = model.decode(to_model_device(model, z.reshape(-1, model.latent_dim)))
    image_grid(decoded, image_shape, steps, ax, model.lik.max_value)
    h = image_shape[0]
    for row, d in enumerate(dims):
        ax.text(-1.5, row * (h + 1) + h / 2, f"$z_{{{d}}}$", ha="right", va="center")
    ax.set_title(f"traversals: one coordinate from {-span:g} to {span:g}, the others fixed")
    return fig


@torch.no_grad()
def image_rows(rows: dict[str, Tensor], image_shape: tuple[int, int], vmax: dict[str, float] | None = None) -> Figure:
    """Stack rows of images [n, H*W], one per named row, each labelled on the left.

    ``vmax`` gives each row's brightest value (default: that row's maximum).
    """
    if not rows:
        raise ValueError("rows must name at least one row of images")
    ncols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(min(COLUMN_WIDTH, ncols * 0.45 + 1.9), len(rows) * 0.55))
    axes = np.atleast_1d(axes)
    for ax, (name, images) in zip(axes, rows.items()):
        image_grid(images, image_shape, ncols, ax, None if vmax is None else vmax.get(name))
        ax.text(-1.5, image_shape[0] / 2, name, ha="right", va="center")
    return fig


@torch.no_grad()
def aggregate_vs_prior(models: dict[str, VAE], x: Tensor, limit: float = 4.0, n: int = 121) -> Figure:
    """For each named model with a 2-D code, one column titled with its name: its aggregate posterior
    q(z) (top row) above its prior p(z) (bottom row).

    q(z) is the average of the encoder's q(z|x) over the inputs ``x``; the prior is whatever the
    model learned or was given. Each column shares one colour scale, so a prior that matches
    q(z) looks like it. The dashed circles are 1, 2 and 3 standard deviations of N(0, I).
    """
    if not models:
        raise ValueError("models must name at least one VAE")
    for name, model in models.items():
        if model.latent_dim != 2:
            raise ValueError(f"aggregate_vs_prior needs 2-D codes; {name!r} has {model.latent_dim}")
    check_positive("limit", limit)
    check_grid_size("n", n)
    fig, axes = plt.subplots(2, len(models), figsize=(min(COLUMN_WIDTH, 2.27 * len(models)), 4.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for column, (name, model) in zip(axes.T, models.items()):
        densities = density_grid(model, x, limit, n)
        top = max(d.max() for d in densities)
        for ax, density in zip(column, densities):
            _density_panel(ax, density, limit, top)
            ax.set(xlabel="$z_1$", ylabel="$z_2$")
            ax.label_outer()
        column[0].set_title(name)
    axes[0, 0].set_ylabel("aggregate posterior $q(z)$\n$z_2$")
    axes[1, 0].set_ylabel("prior $p(z)$\n$z_2$")
    return fig


@torch.no_grad()
def samples_per_class(model: VAE, image_shape: tuple[int, int], n: int = 8) -> Figure:
    """A conditional VAE's samples: one row per class, ``n`` draws z ~ p(z) decoded under that label."""
    if not model.n_classes:
        raise ValueError("samples_per_class needs a conditional VAE (n_classes > 0)")
    check_positive_int("n", n)
    rows = {f"y = {k}": model.sample(n, y=k) for k in range(model.n_classes)}
    return image_rows(rows, image_shape, dict.fromkeys(rows, model.lik.max_value))


@torch.no_grad()
def same_code_every_label(model: VAE, z: Tensor, image_shape: tuple[int, int]) -> Figure:
    """One row per code in ``z`` [M, L], decoded under every label of a conditional VAE (one column each).

    What a row keeps is what the code holds (the style); what changes along it is the class.
    """
    if not model.n_classes:
        raise ValueError("same_code_every_label needs a conditional VAE (n_classes > 0)")
    if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"z must be [M, {model.latent_dim}] (a tensor), got {list(np.shape(z))}")
    z = to_model_device(model, z)
    labels = torch.arange(model.n_classes, device=z.device)
    rows = {f"code {i + 1}": model.decode(code.expand(model.n_classes, -1), labels) for i, code in enumerate(z)}
    fig = image_rows(rows, image_shape, dict.fromkeys(rows, model.lik.max_value))
    fig.axes[0].set_title("labels " + ", ".join(str(k) for k in range(model.n_classes)) + " from left to right")
    return fig


def draw_mixture(
    mixture: Mixture, ax: plt.Axes, colors: list | None = None, n_std: tuple[float, ...] = (1.0, 2.0)
) -> plt.Axes:
    """Draw each component of a 2-D Gaussian mixture (:class:`vae.em.Mixture`) on ``ax``: its mean
    (a cross) and its ``n_std``-standard-deviation ellipses, with line width growing with its weight.

    ``colors`` gives one matplotlib colour per component (default: C0, C1, ...).
    """
    if mixture.dim != 2:
        raise ValueError(f"can only draw a 2-D mixture, this one has d = {mixture.dim}")
    colors = colors if colors is not None else [f"C{k}" for k in range(mixture.n_components)]
    for w, m, c, color in zip(mixture.weights, mixture.means, mixture.covs, colors):
        for s in n_std:
            gaussian_ellipse(ax, m, c, s, fill=False, color=color, lw=0.6 + 2.5 * w)
        ax.plot(*m, marker="x", color=color, ms=6, mew=1.5)
    return ax
