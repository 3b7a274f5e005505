"""An interactive latent-space explorer for notebooks: sliders for a code, and its decoded image.

Needs ``ipywidgets`` and a notebook front end that shows widgets (Jupyter, VS Code, Colab); on a
static page, :func:`vae.plots.traversals` shows the same thing as a fixed figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

from vae.latent import to_model_device
from vae.validation import check_positive

if TYPE_CHECKING:
    from vae.models import VAE, Autoencoder


def latent_explorer(
    model: VAE | Autoencoder, image_shape: tuple[int, int], dims: list[int] | None = None, limit: float = 3.0
):
    """An ipywidgets panel: one slider per latent dimension in ``dims`` (default: all), each from
    -``limit`` to ``limit``, and the image decoded from the code they set (other coordinates 0).

    ``image_shape`` is (height, width) of one image. Returns the ``ipywidgets.interactive`` panel.
    """
    try:
        import ipywidgets as widgets
    except ImportError as err:
        raise ImportError("latent_explorer needs ipywidgets: pip install ipywidgets") from err
    check_positive("limit", limit)
    dims = list(range(model.latent_dim)) if dims is None else list(dims)
    if not dims or any(not 0 <= d < model.latent_dim for d in dims):
        raise ValueError(f"dims must be a non-empty list of latent indices below {model.latent_dim}, got {dims}")
    sliders = {f"z{d}": widgets.FloatSlider(0.0, min=-limit, max=limit, step=0.1, description=f"z{d}") for d in dims}
    brightest = model.lik.max_value

    def show(**values: float) -> None:
        z = torch.zeros(1, model.latent_dim)
        for d in dims:
            z[0, d] = values[f"z{d}"]
        with torch.no_grad():
            image = model.decode(to_model_device(model, z)).cpu().reshape(image_shape).numpy()
        _, ax = plt.subplots(figsize=(2.5, 2.5))
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=brightest)
        ax.set_axis_off()
        plt.show()

    return widgets.interactive(show, **sliders)
