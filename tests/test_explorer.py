"""The ipywidgets latent-space explorer."""

import matplotlib
import pytest
import torch

from vae import VAE
from vae.explorer import latent_explorer

matplotlib.use("Agg")


def small_vae(latent_dim: int = 3) -> VAE:
    torch.manual_seed(0)
    return VAE(64, [16], latent_dim, likelihood="categorical").eval()


def test_latent_explorer_has_one_slider_per_dimension():
    pytest.importorskip("ipywidgets")
    panel = latent_explorer(small_vae(), (8, 8), dims=[0, 2])
    sliders = [w for w in panel.children if w.__class__.__name__ == "FloatSlider"]
    assert [s.description for s in sliders] == ["z0", "z2"]
    assert all((s.min, s.max) == (-3.0, 3.0) for s in sliders)


def test_latent_explorer_refuses_dimensions_the_model_lacks():
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match="dims"):
        latent_explorer(small_vae(), (8, 8), dims=[3])
