"""Trained models for the book's website, where no kernel runs: a model's decoder, its likelihood
and the codes of some digits in one small JSON document, and the HTML that shows them as an
interactive figure drawn by plain JavaScript (``book/_static/latent-explorer.js``).

The document (:func:`explorer_data`, written to a file by :func:`write_explorer_data`) holds

* ``layers``: the decoder's linear layers, in order, each with its weight [out, in] and bias [out]
  as little-endian bytes in base64, and the LeakyReLU slope that follows it (``null`` after the last
  layer). Biases are float32. Weights are, by default (``weights="int8"``), float16 in the small
  layers and 8-bit integers times a float32 scale per output in the large ones (:func:`quantise_rows`
  rounds them so that the layer's outputs over the code plane move as little as possible): a
  quarter of the bytes of float32, for a few hundredths of a grey level at most in the decoded
  image. ``weights="float16"`` stores every weight as float16 and ``"float32"`` is exact;
* ``likelihood`` (``"categorical"``, ``"bernoulli"`` or ``"gaussian"``), ``n_levels``,
  ``max_value`` and, for a Gaussian, ``log_sigma``, which turn the last layer's outputs into p(x|z);
* ``codes`` [N, 2] and ``labels`` [N]: where the given digits land (their posterior means), drawn on
  the code plane with the book's colour and marker per digit;
* ``fidelity``: the largest difference, in grey levels, between the mean images of the stored
  decoder and of the model itself, over a grid of codes and at the stored codes.

:func:`decoder_from_data` rebuilds the stored decoder in torch (the reference that the JavaScript
is tested against); :class:`Explorer` is what a notebook cell displays: the interactive figure
for a web page, a still image for front ends that run no JavaScript (:func:`show_explorer` builds
both).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor, nn

from vae.latent import codes as posterior_means
from vae.latent import to_model_device, to_numpy
from vae.plots import digit_scatter
from vae.style import DIGIT_COLOURS, DIGIT_MARKERS
from vae.validation import check_positive

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from vae.models import VAE, Autoencoder

FORMAT = "vae-book/latent-explorer"
VERSION = 1
WEIGHT_DTYPES = ("int8", "float16", "float32")
SMALL_LAYER = 16_384  # weights; with weights="int8", a layer this small or smaller stays float16
CALIBRATION_GRID = 161  # codes per axis of the plane on which quantise_rows measures a layer's inputs
LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
SCRIPT = "../_static/latent-explorer.js"  # where a chapter page (notebooks/*.html) finds the script
CODE_DECIMALS = 3  # the stored codes are rounded to this many decimals (a thousandth of a prior σ)


def _encode(array: np.ndarray, dtype: str) -> dict[str, object]:
    """A tensor as {dtype, shape, data}: its values as little-endian ``dtype`` bytes, in base64."""
    values = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "shape": list(array.shape), "data": base64.b64encode(values.tobytes()).decode("ascii")}


def _decode(stored: dict[str, object]) -> np.ndarray:
    """The array that `_encode` or `_encode_int8` stored, as float32."""
    dtype = np.dtype(str(stored["dtype"])).newbyteorder("<")
    flat = np.frombuffer(base64.b64decode(str(stored["data"])), dtype=dtype)
    array = flat.reshape([int(n) for n in stored["shape"]]).astype(np.float32)
    if stored["dtype"] == "int8":
        array = array * _decode(stored["scale"])[:, None]
    return array


def _encode_int8(levels: Tensor, scale: Tensor) -> dict[str, object]:
    """Integer levels [out, in] in -127..127 and a scale per row [out]: weight = level * scale."""
    stored = _encode(to_numpy(levels).astype(np.int8), "int8")
    stored["scale"] = _encode(to_numpy(scale), "float32")
    return stored


@torch.no_grad()
def quantise_rows(weight: Tensor, inputs: Tensor, damping: float = 0.01) -> tuple[Tensor, Tensor]:
    """8-bit integer levels [out, in] and a float32 scale per row [out] for a linear layer's ``weight``
    [out, in], such that ``levels * scale[:, None]`` moves the layer's outputs on ``inputs`` [N, in]
    (what reaches the layer from the code plane) as little as possible.

    Each row's scale is its largest absolute weight / 127. Plain rounding of every weight to the
    nearest level would leave errors that add up in the outputs; instead the columns are rounded one
    at a time and each rounding error is passed on to the columns not yet rounded, weighted by how
    the inputs correlate (the method of Frantar et al., 2023, "GPTQ", with their dampening of the
    inputs' second moments by ``damping`` times its mean diagonal).
    """
    weight = weight.detach().double().cpu().clone()
    inputs = inputs.detach().double().cpu()
    scale = (weight.abs().amax(1) / 127).clamp_min(torch.finfo(torch.float32).tiny)
    moments = inputs.T @ inputs / len(inputs)
    moments += damping * moments.diagonal().mean() * torch.eye(len(moments), dtype=moments.dtype)
    inverse = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(moments)), upper=True)
    levels = torch.zeros_like(weight)
    for i in range(weight.shape[1]):
        levels[:, i] = (weight[:, i] / scale).round().clamp(-127, 127)
        error = (weight[:, i] - levels[:, i] * scale) / inverse[i, i]
        weight[:, i + 1:] -= error[:, None] * inverse[i, i + 1:][None, :]
    return levels.to(torch.int8), scale.float()


def _layers(decoder: nn.Sequential) -> list[tuple[nn.Linear, float | None]]:
    """The decoder's linear layers, each with the LeakyReLU slope that follows it (None after the last).

    Dropout is left out (it is the identity in evaluation); any other module is refused.
    """
    layers: list[tuple[nn.Linear, float | None]] = []
    for module in decoder:
        if isinstance(module, nn.Linear):
            layers.append((module, None))
        elif isinstance(module, nn.LeakyReLU) and layers and layers[-1][1] is None:
            layers[-1] = (layers[-1][0], float(module.negative_slope))
        elif isinstance(module, nn.ReLU) and layers and layers[-1][1] is None:
            layers[-1] = (layers[-1][0], 0.0)
        elif not isinstance(module, nn.Dropout):
            raise ValueError(f"cannot export a decoder with a {type(module).__name__} layer (only Linear, "
                             "LeakyReLU, ReLU and Dropout)")
    if not layers or layers[-1][1] is not None:
        raise ValueError("the decoder must end with a Linear layer")
    return layers


def _check_model(model: VAE | Autoencoder) -> None:
    if getattr(model, "n_classes", 0):
        raise ValueError("cannot export a conditional model: its decoder also needs a label")
    if model.latent_dim != 2:
        raise ValueError(f"the explorer shows a 2-D code plane; the model has {model.latent_dim} latent dimensions")
    if model.lik.name not in LIKELIHOODS:
        raise ValueError(f"cannot export a {model.lik.name!r} likelihood")


def decoder_from_data(data: dict[str, object]) -> tuple[nn.Sequential, dict[str, object]]:
    """The decoder that ``data`` (from :func:`explorer_data`) stores, rebuilt as an ``nn.Sequential``
    of Linear and LeakyReLU layers in float32 with exactly the stored weights, and the likelihood's
    settings (``likelihood``, ``n_levels``, ``log_sigma``)."""
    modules: list[nn.Module] = []
    for layer in data["layers"]:
        weight, bias = _decode(layer["weight"]), _decode(layer["bias"])
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        modules.append(linear)
        if layer["slope"] is not None:
            modules.append(nn.LeakyReLU(layer["slope"]))
    return nn.Sequential(*modules).eval(), {key: data.get(key) for key in ("likelihood", "n_levels", "log_sigma")}


@torch.no_grad()
def mean_from_outputs(h: Tensor, likelihood: str, n_levels: int) -> Tensor:
    """The mean image of p(x|z) [..., D] from decoder outputs ``h``: what ``model.lik.mean`` computes."""
    if likelihood == "categorical":
        probs = h.unflatten(-1, (-1, n_levels)).softmax(-1)
        return probs @ torch.arange(n_levels, dtype=probs.dtype)
    if likelihood == "bernoulli":
        return torch.sigmoid(h)
    return h


@torch.no_grad()
def decode_data(data: dict[str, object], z: Tensor) -> Tensor:
    """Mean images [N, D] of the codes ``z`` [N, 2] under the decoder that ``data`` stores."""
    decoder, lik = decoder_from_data(data)
    return mean_from_outputs(decoder(torch.as_tensor(z, dtype=torch.float32)), str(lik["likelihood"]),
                             int(lik["n_levels"]))


def default_extent(z: np.ndarray) -> float:
    """Half the width of the plane to draw: at least 3.5 (the prior's 3σ circle and a margin), wide
    enough for 99 % of the codes on each axis, at most 8; rounded up to a half."""
    reach = float(np.quantile(np.abs(z), 0.99)) * 1.05 if len(z) else 0.0
    return float(min(max(3.5, np.ceil(reach * 2) / 2), 8.0))


@torch.no_grad()
def explorer_data(
    model: VAE | Autoencoder,
    x: Tensor,
    labels: Tensor,
    *,
    weights: str = "int8",
    extent: float | None = None,
    title: str = "",
) -> dict[str, object]:
    """The JSON-ready document for the explorer: ``model``'s decoder and likelihood, and the codes
    of the inputs ``x`` [N, D] (posterior means, or an autoencoder's codes) with their ``labels``
    [N] (digits 0 to 9). ``weights`` is ``"int8"`` (the fewest bytes: see the module's notes),
    ``"float16"`` or ``"float32"`` (exact);
    ``extent`` is half the width of the plane drawn (default: :func:`default_extent`)."""
    _check_model(model)
    if weights not in WEIGHT_DTYPES:
        raise ValueError(f"weights must be one of {WEIGHT_DTYPES}, got {weights!r}")
    z = to_numpy(posterior_means(model, x)).astype(np.float64)
    y = to_numpy(labels).astype(int)
    if y.shape != (len(z),) or (len(y) and not 0 <= y.min() <= y.max() <= 9):
        raise ValueError(f"need one label from 0 to 9 per input, got labels of shape {list(y.shape)}")
    extent = default_extent(z) if extent is None else check_positive("extent", extent)
    layers = _stored_layers(model, weights, extent)
    height, width = _image_shape(model.lik.input_dim)
    data: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "title": title,
        "latent_dim": 2,
        "input_dim": model.lik.input_dim,
        "image_shape": [height, width],
        "likelihood": model.lik.name,
        "n_levels": int(model.lik.n_levels),
        "max_value": float(model.lik.max_value),
        "log_sigma": to_numpy(model.lik.log_sigma).round(6).tolist() if model.lik.name == "gaussian" else None,
        "prior": "standard-normal" if hasattr(model, "reparameterize") else None,
        "extent": extent,
        "layers": layers,
        "codes": np.round(z, CODE_DECIMALS).tolist(),
        "labels": y.tolist(),
        "digit_colours": list(DIGIT_COLOURS),
        "digit_markers": list(DIGIT_MARKERS),
    }
    data["fidelity"] = _fidelity(model, data, z)
    return data


@torch.no_grad()
def _stored_layers(model: VAE | Autoencoder, weights: str, extent: float) -> list[dict[str, object]]:
    """The decoder's layers as the document stores them (see the module's notes)."""
    axis = torch.linspace(-extent, extent, CALIBRATION_GRID)
    h = torch.cartesian_prod(axis, axis)  # the codes the reader can reach, then each layer's inputs
    stored = []
    for linear, slope in _layers(model.decoder):
        weight, bias = linear.weight.detach().float().cpu(), linear.bias.detach().float().cpu()
        if weights == "int8" and weight.numel() > SMALL_LAYER:
            stored_weight = _encode_int8(*quantise_rows(weight, h))
        else:
            stored_weight = _encode(to_numpy(weight), "float16" if weights == "int8" else weights)
        stored.append({"weight": stored_weight, "bias": _encode(to_numpy(bias), "float32"), "slope": slope})
        h = torch.nn.functional.linear(h, weight, bias)
        if slope is not None:
            h = torch.nn.functional.leaky_relu(h, slope)
    return stored


def _image_shape(input_dim: int) -> tuple[int, int]:
    """A square image's (height, width) for ``input_dim`` pixels, else one row."""
    side = round(input_dim**0.5)
    return (side, side) if side * side == input_dim else (1, input_dim)


@torch.no_grad()
def _fidelity(model: VAE | Autoencoder, data: dict[str, object], z: np.ndarray) -> dict[str, object]:
    """How far the stored decoder's mean images are from the model's, in grey levels (the pixel units of
    ``model.decode``), on a 41-by-41 grid over the plane and at the stored codes."""
    extent = float(data["extent"])
    axis = torch.linspace(-extent, extent, 41)
    grid = torch.cartesian_prod(axis, axis)
    points = torch.cat([grid, torch.as_tensor(z, dtype=torch.float32)])
    was_training = model.training
    model.eval()
    try:
        exact = model.decode(to_model_device(model, points)).cpu().float()
    finally:
        model.train(was_training)
    stored = decode_data(data, points)
    return {"max_abs_error": float((stored - exact).abs().max()), "units": "grey levels",
            "checked_codes": len(points)}


def to_json(data: dict[str, object]) -> str:
    """The document as compact JSON text (no spaces), safe to place inside an HTML ``<script>``."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_explorer_data(model: VAE | Autoencoder, x: Tensor, labels: Tensor, path: str | os.PathLike,
                        **settings: object) -> Path:
    """Write :func:`explorer_data` (``settings`` are passed on) to ``path`` as one JSON file; return the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist; create it first")
    path.write_text(to_json(explorer_data(model, x, labels, **settings)), encoding="utf-8")
    return path


def read_explorer_data(path: str | os.PathLike) -> dict[str, object]:
    """The document in a file that :func:`write_explorer_data` wrote."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a latent-explorer document")
    return data


def explorer_html(data: dict[str, object], *, script: str = SCRIPT, label: str = "") -> str:
    """The HTML of one explorer: a container holding the document as inline JSON (so that the page
    works from ``file://``, where a page cannot fetch files), a message for front ends that do not
    run the script, and the script itself (``script``: its URL relative to the page)."""
    label = label or "Latent code explorer"
    return (
        f'<div class="latent-explorer" data-label="{html.escape(label)}">'
        f'<script type="application/json" class="latent-explorer-data">{to_json(data)}</script>'
        '<p class="latent-explorer-fallback">The interactive explorer runs on the book\'s website. '
        "In a notebook, <code>vae.explorer.latent_explorer(model, (8, 8))</code> gives sliders instead.</p>"
        "</div>"
        f'<script src="{html.escape(script)}"></script>'
    )


@dataclass(frozen=True)
class Explorer:
    """What a notebook cell shows: the interactive explorer's HTML, for a web page, and a still
    image of the same plane (``still_png``) for front ends that run no JavaScript."""

    html: str
    still_png: bytes
    data: dict[str, object]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, object]:
        return {
            "text/html": self.html,
            "image/png": base64.b64encode(self.still_png).decode(),
            "text/plain": f"latent explorer: {len(self.data['codes'])} codes, a {self.data['likelihood']} decoder",
        }


@torch.no_grad()
def explorer_still(model: VAE | Autoencoder, data: dict[str, object], z: tuple[float, float] = (0.0, 0.0)) -> Figure:
    """The explorer as a still figure: the code plane with the stored codes, the prior's 1, 2 and 3σ
    circles and a cross at ``z``, and the mean image that ``model`` decodes there."""
    extent = float(data["extent"])
    fig = plt.figure(figsize=(6.4, 3.6), layout="constrained")
    plane, image = fig.subplots(1, 2, width_ratios=[3, 1.4])
    digit_scatter(plane, np.asarray(data["codes"]), np.asarray(data["labels"]), size=6)
    plane.get_legend().remove()
    if data["prior"]:
        for r in (1, 2, 3):
            plane.add_patch(plt.Circle((0, 0), r, fill=False, color="grey", lw=0.8, ls="--"))
    plane.plot(*z, marker="+", color="black", markersize=16, mew=2)
    plane.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", xlabel="$z_1$", ylabel="$z_2$")
    mean = model.decode(to_model_device(model, torch.tensor([z], dtype=torch.float32))).cpu()
    height, width = data["image_shape"]
    image.imshow(mean.reshape(height, width).numpy(), cmap="gray_r", vmin=0, vmax=data["max_value"])
    image.set_axis_off()
    image.set_title(f"decoded mean at\nz = ({z[0]:.1f}, {z[1]:.1f})")
    return fig


def show_explorer(model: VAE | Autoencoder, x: Tensor, labels: Tensor, *, label: str = "", script: str = SCRIPT,
                  **settings: object) -> Explorer:
    """The explorer of ``model``'s code plane with the codes of ``x`` and their ``labels``, ready for a
    notebook cell to display (``settings`` go to :func:`explorer_data`). Closes its still figure."""
    data = explorer_data(model, x, labels, **settings)
    fig = explorer_still(model, data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return Explorer(explorer_html(data, script=script, label=label), buffer.getvalue(), data)
