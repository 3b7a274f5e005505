import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from vae import VAE, Autoencoder
from vae import explore
from vae.plots import codes


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def small_vae(latent_dim: int = 2) -> VAE:
    torch.manual_seed(0)
    return VAE(64, [16], latent_dim, likelihood="categorical").eval()


def test_grid_over_codes_spans_the_central_box_top_row_first():
    z = torch.cartesian_prod(torch.linspace(0, 10, 101), torch.linspace(-1, 1, 21))
    grid = explore.grid_over_codes(z, n=3, coverage=1.0)
    assert grid.shape == (9, 2)
    assert grid[0].tolist() == [0.0, 1.0] and grid[2].tolist() == [10.0, 1.0] and grid[-1].tolist() == [10.0, -1.0]
    inner = explore.grid_over_codes(z, n=3, coverage=0.5)
    assert inner[:, 0].min() == pytest.approx(2.5) and inner[:, 0].max() == pytest.approx(7.5)


def test_grid_over_codes_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        explore.grid_over_codes(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="coverage"):
        explore.grid_over_codes(torch.zeros(5, 2), coverage=0)


def test_decoded_grid_shades_one_patch_per_hole():
    model = small_vae()
    grid = explore.grid_over_codes(torch.randn(50, 2), n=4)
    holes = torch.zeros(16, dtype=torch.bool)
    holes[[0, 5, 15]] = True
    ax = explore.decoded_grid(model, grid, (8, 8), holes)
    assert len(ax.patches) == 3
    with pytest.raises(ValueError, match="square"):
        explore.decoded_grid(model, grid[:15], (8, 8))


def test_interpolate_starts_and_ends_at_the_two_codes():
    torch.manual_seed(0)
    model = Autoencoder(64, [16], 2, likelihood="categorical").eval()
    x = torch.randint(0, 17, (2, 64))
    path = explore.interpolate(model, x[0], x[1], steps=5)
    with torch.no_grad():
        ends = model.decode(codes(model, x))
    assert path.shape == (5, 64)
    torch.testing.assert_close(path[[0, -1]], ends)


def test_traversals_draw_one_row_per_dimension_and_check_dims():
    model = small_vae(latent_dim=4)
    fig = explore.traversals(model, [0, 3], (8, 8), steps=5)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2 * 9 - 1, 5 * 9 - 1)
    with pytest.raises(ValueError, match="dims"):
        explore.traversals(model, [4], (8, 8))


def test_posterior_and_aggregate_figures_need_two_dimensions():
    model = small_vae()
    x, y = torch.randint(0, 17, (30, 64)), torch.randint(0, 10, (30,))
    assert len(explore.posterior_ellipses(model, x, y).axes[0].patches) == 30
    assert len(explore.aggregate_posterior(model, x, n=21).axes) == 3  # two panels and a colour bar
    with pytest.raises(ValueError, match="2-D"):
        explore.aggregate_posterior(small_vae(latent_dim=3), x)


def test_image_rows_one_axis_per_row():
    fig = explore.image_rows({"a": torch.rand(4, 64), "b": torch.rand(3, 64)}, (8, 8))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="at least one"):
        explore.image_rows({}, (8, 8))


def test_latent_explorer_has_one_slider_per_dimension():
    pytest.importorskip("ipywidgets")
    panel = explore.latent_explorer(small_vae(latent_dim=3), (8, 8), dims=[0, 2])
    sliders = [w for w in panel.children if w.__class__.__name__ == "FloatSlider"]
    assert [s.description for s in sliders] == ["z0", "z2"]
