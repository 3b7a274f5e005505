"""Two more interactive figures for the book's website, where no kernel runs: the data each needs, in
one small JSON document embedded in the page, and the HTML that shows it, drawn by plain JavaScript.
They follow :mod:`vae.export` (the latent explorer): the document travels inline in a
``<script type="application/json">``, so that the page works from ``file://`` and offline, and a
notebook cell shows a still image wherever no JavaScript runs.

**The ELBO explorer** (chapter 4, ``book/_static/elbo-explorer.js``). For a few test images of a
model with a two-dimensional latent, the exact log-likelihood ``log p(x|z)`` on a square window of
the chapter's grid (:mod:`vae.tractable`) around each image's posterior. The reader moves a diagonal
Gaussian q = N(m, diag s²) over the posterior and sees, live, the values that
:class:`vae.tractable.GridPosterior` computes on that window:

* ELBO(q) = Σ_g w(z_g) log p(x|z_g) − KL(q || p(z)), with w q's mass on each cell, per axis
  (``GridPosterior.elbo``; the KL in closed form, :func:`vae.priors.gaussian_kl`);
* log p(x) = log Σ_g p(x|z_g) p(z_g) ΔA on the window, and KL(q || p(z|x)) = log p(x) − ELBO(q).

:func:`window_posterior` builds the library's ``GridPosterior`` for a stored window (in coordinates
centred on the window, which changes none of these sums: see there) and :func:`elbo_values` gives the
values that the page must show; ``tests/test_interactive_figures.py`` holds the page to them.

The window's log p(x|z_g) are stored as 16-bit levels between their least and greatest value
(a step of a few thousandths of a nat); ``fidelity`` records how far the stored window's log p(x)
and ELBOs lie from the chapter's full grid.

**The β explorer** (chapter 9, ``book/_static/beta-explorer.js``). For each model of a sweep over the
KL weight β: its rate and distortion (the rate–distortion curve) and the mean images of its
reconstructions of a few test digits and of a few prior samples, rounded to the 17 grey levels (one
character per pixel). The chapter's models have an 8-dimensional code, so no decoder travels: the
images are precomputed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from vae.latent import to_model_device, to_numpy
from vae.plots import gaussian_ellipse
from vae.priors import gaussian_kl
from vae.style import LINE_COLOURS
from vae.tractable import GridPosterior, LatentGrid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from vae.models import VAE

ELBO_FORMAT = "vae-book/elbo-explorer"
BETA_FORMAT = "vae-book/beta-explorer"
VERSION = 1
ELBO_SCRIPT = "../_static/elbo-explorer.js"  # where a chapter page (notebooks/*.html) finds the scripts
BETA_SCRIPT = "../_static/beta-explorer.js"
LEVELS = 65_535  # 16-bit levels for the stored log-likelihoods
MIN_HALF = 0.6  # the smallest half-width of a window, in units of z
MAX_HALF = 2.5
LEVEL_DIGITS = "0123456789abcdefg"  # the 17 grey levels, one character per pixel
DECIMALS = 6  # the stored means and log-variances of q


# ---- The ELBO explorer ----

def _encode_levels(values: np.ndarray) -> dict[str, object]:
    """float64 values [n, n] as 16-bit levels: value = offset + scale * level, little-endian, in base64."""
    offset, top = float(values.min()), float(values.max())
    scale = (top - offset) / LEVELS if top > offset else 1.0
    levels = np.round((values - offset) / scale).astype("<u2")
    return {"dtype": "uint16", "shape": list(values.shape), "offset": offset, "scale": scale,
            "data": base64.b64encode(levels.tobytes()).decode("ascii")}


def decode_levels(stored: dict[str, object]) -> np.ndarray:
    """The float64 values that :func:`_encode_levels` stored (as the page's JavaScript reads them)."""
    levels = np.frombuffer(base64.b64decode(str(stored["data"])), dtype="<u2").astype(np.float64)
    return float(stored["offset"]) + float(stored["scale"]) * levels.reshape([int(n) for n in stored["shape"]])


def window_axes(image: dict[str, object]) -> tuple[np.ndarray, np.ndarray]:
    """The grid coordinates of a stored window along z1 and z2: centre + step (i - (n - 1) / 2)."""
    n, step = int(image["n"]), float(image["step"])
    offsets = step * (np.arange(n) - (n - 1) / 2)
    return float(image["centre"][0]) + offsets, float(image["centre"][1]) + offsets


def window_posterior(image: dict[str, object]) -> GridPosterior:
    """The library's :class:`~vae.tractable.GridPosterior` of one stored window, for the one image.

    The window is a square of the chapter's grid centred at ``c`` (``image["centre"]``), not at the
    origin, so its grid is written in the coordinates u = z - c: the axis u_i = step (i - (n - 1) / 2)
    is then the same for both dimensions, as :class:`~vae.tractable.LatentGrid` requires. Moving q
    with it (mean m - c) leaves q's mass on each cell unchanged, so ``elbo``'s grid expectation and
    ``kl`` are those of the window in z; only its closed-form KL(q || p(z)) must be taken at m, not
    m - c (:func:`elbo_values` does). The prior, log p(x) and log p(z|x) are computed at the true
    points z = u + c.
    """
    n, step = int(image["n"]), float(image["step"])
    axis = torch.as_tensor(step * (np.arange(n) - (n - 1) / 2), dtype=torch.float64)
    grid = LatentGrid(axis, torch.cartesian_prod(axis, axis), 2 * math.log(step))
    z1, z2 = window_axes(image)
    z = torch.cartesian_prod(torch.as_tensor(z1), torch.as_tensor(z2))
    log_lik = torch.as_tensor(decode_levels(image["log_lik"])).reshape(1, -1)
    log_joint = log_lik + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    log_evidence = torch.logsumexp(log_joint, dim=1) + grid.log_cell
    return GridPosterior(grid, log_lik, log_evidence, log_joint - log_evidence[:, None])


@torch.no_grad()
def elbo_values(image: dict[str, object], mean: object, logvar: object) -> dict[str, float]:
    """What the page shows for q = N(``mean``, diag exp(``logvar``)) (each [2]) on a stored window, in
    nats, from the library: ``elbo``, ``log_px``, ``kl`` = log p(x) - ELBO, and ``kl_sum``, the
    independent grid sum of KL(q || p(z|x)) (``GridPosterior.kl``)."""
    posterior = window_posterior(image)
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(1, 2)
    logvar = torch.as_tensor(logvar, dtype=torch.float64).reshape(1, 2)
    shifted = mean - torch.as_tensor(image["centre"], dtype=torch.float64)
    elbo = posterior.elbo(shifted, logvar) + gaussian_kl(shifted, logvar) - gaussian_kl(mean, logvar)
    log_px = posterior.log_evidence
    return {"elbo": float(elbo), "log_px": float(log_px), "kl": float(log_px - elbo),
            "kl_sum": float(posterior.kl(shifted, logvar))}


def _window(posterior: GridPosterior, index: int, centres: list[Tensor], widths: list[Tensor]) -> tuple[int, int, int]:
    """Grid indices (k1, k2) of a window's centre, and its half-width in cells: around the posterior
    (4.5 of its standard deviations), wide enough for each Gaussian (centres, standard deviations)
    to be one the page allows: its centre 4 deviations inside the edge, its deviations a fifth of
    the half-width at most."""
    axis = posterior.grid.axis.cpu()
    step = float(axis[1] - axis[0])
    post_mean, post_var = posterior.moments()
    mean, std = post_mean[index].cpu(), post_var[index].sqrt().cpu()
    k = [int(torch.argmin((axis - mean[d]).abs())) for d in range(2)]
    centre = axis[k]
    reach = (4.5 * std).max().item()
    for c, s in zip(centres, widths):
        reach = max(reach, ((c.cpu() - centre).abs() + 4 * s.cpu()).max().item(), 5 * s.max().item())
    half = min(max(MIN_HALF, math.ceil(reach * 4) / 4), MAX_HALF)  # in z, rounded up to a quarter
    cells = round(half / step)
    cells = min(cells, *k, len(axis) - 1 - k[0], len(axis) - 1 - k[1])  # stay on the grid
    return k[0], k[1], cells


def elbo_explorer_data(
    posterior: GridPosterior,
    x: Tensor,
    indices: list[int],
    mean: Tensor,
    logvar: Tensor,
    *,
    best: tuple[Tensor, Tensor] | None = None,
    names: list[str] | None = None,
    labels: list[int] | None = None,
    image_shape: tuple[int, int] = (8, 8),
    max_value: float = 16.0,
    title: str = "",
) -> dict[str, object]:
    """The JSON-ready document for the ELBO explorer: for each image ``x[i]``, ``i`` in ``indices``, the
    window of ``posterior`` (a :class:`~vae.tractable.GridPosterior` of ``x`` on a 2-D grid) around its
    posterior, the encoder's q (``mean[i]``, ``logvar[i]``) and the best diagonal Gaussian on the
    window, each with its ELBO, and log p(x). ``best`` gives the best Gaussians' means and
    log-variances [N, 2], as the chapter found them on its whole grid; without it they are found
    on each window (``GridPosterior.best_gaussian``, from the posterior's moments and the encoder's q)."""
    if posterior.grid.latent_dim != 2:
        raise ValueError("the ELBO explorer draws a 2-D latent plane")
    axis = posterior.grid.axis.cpu()
    step = float(axis[1] - axis[0])
    n_grid = len(axis)
    images, fidelity = [], {"window_log_px": 0.0, "encoder_elbo": 0.0, "best_elbo": 0.0}
    encoder_mean, encoder_logvar = mean.double().cpu(), logvar.double().cpu()
    for position, i in enumerate(indices):
        q_mean, q_logvar = encoder_mean[i], encoder_logvar[i]
        gaussians = [(q_mean, q_logvar)] + ([] if best is None else [(best[0][i].double().cpu(),
                                                                        best[1][i].double().cpu())])
        k1, k2, cells = _window(posterior, i, [m for m, _ in gaussians], [(0.5 * lv).exp() for _, lv in gaussians])
        log_lik = posterior.log_lik[i].cpu().reshape(n_grid, n_grid)[k1 - cells:k1 + cells + 1,
                                                                     k2 - cells:k2 + cells + 1]
        image: dict[str, object] = {
            "name": names[position] if names else f"test image {i}",
            "label": None if labels is None else int(labels[position]),
            "pixels": to_numpy(x[i]).round().astype(int).tolist(),
            "centre": [round(float(axis[k1]), 10), round(float(axis[k2]), 10)],
            "step": round(step, 10),
            "n": 2 * cells + 1,
            "log_lik": _encode_levels(to_numpy(log_lik).astype(np.float64)),
        }
        window = window_posterior(image)
        centre = torch.as_tensor(image["centre"], dtype=torch.float64)
        if best is None:
            best_mean, best_logvar = window.best_gaussian((q_mean - centre)[None], q_logvar[None])
            best_mean, best_logvar = best_mean[0] + centre, best_logvar[0]
        else:
            best_mean, best_logvar = best[0][i].double().cpu(), best[1][i].double().cpu()
        for key, (m, lv) in (("encoder", (q_mean, q_logvar)), ("best", (best_mean, best_logvar))):
            m, lv = m.numpy().round(DECIMALS), lv.numpy().round(DECIMALS)
            values = elbo_values(image, m, lv)
            image[key] = {"mean": m.tolist(), "logvar": lv.tolist(), "elbo": values["elbo"]}
            device = posterior.log_lik.device
            one = GridPosterior(posterior.grid, *(t[i:i + 1] for t in (posterior.log_lik, posterior.log_evidence,
                                                                        posterior.log_density)))
            with torch.no_grad():
                full = float(one.elbo(torch.as_tensor(m)[None].to(device), torch.as_tensor(lv)[None].to(device)))
            fidelity[f"{key}_elbo"] = max(fidelity[f"{key}_elbo"], abs(values["elbo"] - full))
        image["log_px"] = float(window.log_evidence)
        image["log_px_full_grid"] = float(posterior.log_evidence[i])
        fidelity["window_log_px"] = max(fidelity["window_log_px"], abs(image["log_px"] - image["log_px_full_grid"]))
        images.append(image)
    return {
        "format": ELBO_FORMAT,
        "version": VERSION,
        "title": title,
        "image_shape": list(image_shape),
        "max_value": float(max_value),
        "images": images,
        "colours": {"encoder": "#ffffff", "best": LINE_COLOURS[1], "q": "#56e0ff"},
        "fidelity": {**fidelity, "units": "nats, the stored window against the chapter's whole grid"},
    }


def elbo_still(data: dict[str, object]) -> Figure:
    """The ELBO explorer as a still: each stored posterior (colour) with the encoder's q (white) and the
    best Gaussian (dashed orange), one and two standard deviations, and their ELBOs."""
    images = data["images"]
    fig, axes = plt.subplots(1, len(images), figsize=(2.3 * len(images), 2.9), layout="constrained", squeeze=False)
    for ax, image in zip(axes[0], images):
        z1, z2 = window_axes(image)
        density = window_posterior(image).log_density[0].reshape(len(z1), len(z2)).exp().numpy()
        ax.imshow(density.T, origin="lower", extent=(z1[0], z1[-1], z2[0], z2[-1]), cmap="magma",
                  interpolation="bilinear")
        for key, style in (("encoder", {"color": "white"}), ("best", {"color": data["colours"]["best"], "ls": "--"})):
            q = image[key]
            for n_std in (1, 2):
                gaussian_ellipse(ax, q["mean"], np.diag(np.exp(q["logvar"])), n_std, fill=False, lw=1.1, **style)
        ax.set(aspect="equal", xlabel="$z_1$", title=f"{image['name']}\nlog p(x) = {image['log_px']:.2f}")
        ax.text(0.03, 0.03, f"encoder's q: ELBO {image['encoder']['elbo']:.2f}\n"
                f"best q: ELBO {image['best']['elbo']:.2f}", transform=ax.transAxes, color="white", fontsize=8)
    axes[0][0].set_ylabel("$z_2$")
    return fig


# ---- The β explorer ----

def _levels_text(images: Tensor, max_value: float) -> list[str]:
    """Mean images [N, D] as strings of grey levels 0..16, one character (0-9, a-g) per pixel."""
    levels = (to_numpy(images).astype(np.float64) / max_value * 16).round().clip(0, 16).astype(int)
    return ["".join(LEVEL_DIGITS[v] for v in row) for row in levels]


def levels_from_text(text: str) -> list[int]:
    """The grey levels that :func:`_levels_text` wrote for one image."""
    return [LEVEL_DIGITS.index(c) for c in text]


@torch.no_grad()
def beta_explorer_data(
    sweep: dict[float, VAE],
    scores: dict[float, dict[str, float]],
    x: Tensor,
    z: Tensor,
    *,
    train_scores: dict[float, dict[str, float]] | None = None,
    image_shape: tuple[int, int] = (8, 8),
    start: float = 1.0,
    title: str = "",
) -> dict[str, object]:
    """The JSON-ready document for the β explorer: for each β of ``sweep`` (trained models), the test
    ``scores`` (from :func:`vae.evaluate`: rate = ``kl``, distortion = -``rec``) and, if given, the
    training scores; the mean images of its reconstructions of ``x`` [N, D] (decoded at the posterior
    means) and of its decodings of the prior draws ``z`` [M, L], as grey levels 0..16."""
    betas = sorted(sweep)
    if not betas or set(scores) != set(betas) or (train_scores is not None and set(train_scores) != set(betas)):
        raise ValueError("give scores (and train_scores, if any) for every beta of the sweep")
    max_value = float(sweep[betas[0]].lik.max_value)
    models = []
    for beta in betas:
        model = sweep[beta]
        was_training = model.training
        model.eval()
        try:
            codes = model.encode(to_model_device(model, x))[0]
            reconstructions = model.decode(codes).cpu()
            samples = model.decode(to_model_device(model, z)).cpu()
        finally:
            model.train(was_training)
        entry = {"beta": float(beta), "rate": round(scores[beta]["kl"], 4),
                 "distortion": round(-scores[beta]["rec"], 4), "elbo": round(scores[beta]["elbo"], 4),
                 "reconstructions": _levels_text(reconstructions, max_value),
                 "samples": _levels_text(samples, max_value)}
        if train_scores is not None:
            entry["train_rate"] = round(train_scores[beta]["kl"], 4)
            entry["train_distortion"] = round(-train_scores[beta]["rec"], 4)
        models.append(entry)
    return {
        "format": BETA_FORMAT,
        "version": VERSION,
        "title": title,
        "image_shape": list(image_shape),
        "digits": _levels_text(x, max_value),
        "models": models,
        "start": betas.index(start) if start in betas else 0,
        "colours": {"test": LINE_COLOURS[0], "train": LINE_COLOURS[1]},
    }


def beta_still(data: dict[str, object], index: int | None = None) -> Figure:
    """The β explorer as a still: the rate–distortion curve with one β marked, and its images."""
    index = data["start"] if index is None else index
    models, (height, width) = data["models"], data["image_shape"]
    chosen = models[index]
    fig = plt.figure(figsize=(6.8, 3.4), layout="constrained")
    curve, images = fig.subfigures(1, 2, width_ratios=[1, 1.25])
    ax = curve.subplots()
    ax.plot([m["rate"] for m in models], [m["distortion"] for m in models], "o-", color=data["colours"]["test"])
    ax.plot(chosen["rate"], chosen["distortion"], "o", ms=12, mfc="none", mec="black", mew=1.5)
    ax.set(xlabel="rate R (nats)", ylabel="distortion D (nats)", title=f"β = {chosen['beta']:g}")
    rows = [("test digits", data["digits"]), ("reconstructions", chosen["reconstructions"]),
            ("prior samples", chosen["samples"])]
    axes = images.subplots(len(rows), 1)
    for row_ax, (name, texts) in zip(axes, rows):
        strip = np.concatenate([np.array(levels_from_text(t)).reshape(height, width) for t in texts], axis=1)
        row_ax.imshow(strip, cmap="gray_r", vmin=0, vmax=16)
        row_ax.set_axis_off()
        row_ax.set_title(name, fontsize=9)
    return fig


# ---- HTML and what a notebook cell shows ----

def to_json(data: dict[str, object]) -> str:
    """The document as compact JSON text, safe inside an HTML ``<script>``."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_html(kind: str, data: dict[str, object], *, script: str, label: str, fallback: str) -> str:
    """A container of class ``kind`` holding the document as inline JSON, a message for front ends that
    run no script, and the script (``script``: its URL relative to the page)."""
    return (
        f'<div class="{kind}" data-label="{html.escape(label)}">'
        f'<script type="application/json" class="{kind}-data">{to_json(data)}</script>'
        f'<p class="{kind}-fallback">{html.escape(fallback)}</p>'
        "</div>"
        f'<script src="{html.escape(script)}"></script>'
    )


@dataclass(frozen=True)
class WebFigure:
    """What a notebook cell shows: the interactive figure's HTML for a web page, and a still image for
    front ends that run no JavaScript."""

    html: str
    still_png: bytes
    data: dict[str, object]
    description: str

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, object]:
        return {"text/html": self.html, "image/png": base64.b64encode(self.still_png).decode(),
                "text/plain": self.description}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def show_elbo_explorer(posterior: GridPosterior, x: Tensor, indices: list[int], mean: Tensor, logvar: Tensor, *,
                       label: str = "", script: str = ELBO_SCRIPT, **settings: object) -> WebFigure:
    """The ELBO explorer for a notebook cell (``settings`` go to :func:`elbo_explorer_data`)."""
    data = elbo_explorer_data(posterior, x, indices, mean, logvar, **settings)
    html_text = figure_html("elbo-explorer", data, script=script, label=label or "ELBO explorer",
                            fallback="The interactive ELBO explorer runs on the book's website.")
    return WebFigure(html_text, _png(elbo_still(data)), data, f"ELBO explorer: {len(data['images'])} posteriors")


def show_beta_explorer(sweep: dict[float, VAE], scores: dict[float, dict[str, float]], x: Tensor, z: Tensor, *,
                       label: str = "", script: str = BETA_SCRIPT, **settings: object) -> WebFigure:
    """The β explorer for a notebook cell (``settings`` go to :func:`beta_explorer_data`)."""
    data = beta_explorer_data(sweep, scores, x, z, **settings)
    html_text = figure_html("beta-explorer", data, script=script, label=label or "β explorer",
                            fallback="The interactive β explorer runs on the book's website.")
    return WebFigure(html_text, _png(beta_still(data)), data, f"β explorer: {len(data['models'])} models")
