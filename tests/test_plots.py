import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vae import VAE, Autoencoder, plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return VAE(16, [8], 2, likelihood="categorical", n_levels=5)


def shown_image(fig: Figure) -> np.ndarray:
    return fig.axes[0].images[0].get_array()


def test_image_grid_tiles_with_a_blank_border():
    images = torch.arange(6 * 4, dtype=torch.float32).reshape(6, 4)
    ax = plots.image_grid(images, (2, 2), ncols=4)
    canvas = ax.images[0].get_array()
    assert canvas.shape == (2 * 3 - 1, 4 * 3 - 1)
    np.testing.assert_array_equal(canvas[0:2, 3:5], [[4, 5], [6, 7]])  # image 1, row 0, column 1
    assert np.ma.getmaskarray(canvas)[0, 2] or np.isnan(canvas[0, 2])


def test_latent_scatter_draws_every_point(model):
    x, y = torch.randint(0, 5, (30, 16)), torch.arange(30) % 10
    fig = plots.latent_scatter(model, x, y)
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, model.encode(x)[0].detach().numpy(), rtol=1e-5)


def test_latent_scatter_projects_higher_dimensions_with_pca():
    torch.manual_seed(0)
    model = VAE(16, [8], 5)
    fig = plots.latent_scatter(model, torch.rand(40, 16).round(), torch.zeros(40))
    assert fig.axes[0].collections[0].get_offsets().shape == (40, 2)
    assert "principal components" in fig.axes[0].get_title()


def test_reconstructions_show_inputs_above_outputs(model):
    x = torch.randint(0, 5, (6, 16))
    fig = plots.reconstructions(model, x, (4, 4), n=4)
    top, bottom = (ax.images[0].get_array() for ax in fig.axes)
    np.testing.assert_array_equal(top[0:4, 0:4], x[0].reshape(4, 4).numpy())
    expected = model.decode(model.encode(x[:1])[0]).detach().reshape(4, 4).numpy()
    np.testing.assert_allclose(bottom[0:4, 0:4], expected, rtol=1e-5)


def test_manifold_decodes_normal_quantiles(model):
    fig = plots.manifold(model, (4, 4), n=3, span=(0.1, 0.9))
    canvas = shown_image(fig)
    assert canvas.shape == (3 * 5 - 1, 3 * 5 - 1)
    # top-left tile: z1 at the 10% quantile, z2 at the 90% quantile
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.9)).item()
    expected = model.decode(torch.tensor([[-q, q]])).detach().reshape(4, 4).numpy()
    np.testing.assert_allclose(canvas[0:4, 0:4], expected, rtol=1e-4)


def test_manifold_needs_two_latent_dimensions():
    with pytest.raises(ValueError, match="2-D latent"):
        plots.manifold(VAE(16, [8], 3), (4, 4))


def test_prior_samples_and_interpolation(model):
    fig = plots.prior_samples(model, (4, 4), n=12, ncols=6)
    assert shown_image(fig).shape == (2 * 5 - 1, 6 * 5 - 1)
    ae = Autoencoder(16, [8], 2)
    x = torch.rand(2, 16)
    fig = plots.interpolation(ae, x[0], x[1], (4, 4), steps=5)
    canvas = shown_image(fig)
    np.testing.assert_allclose(canvas[0:4, 0:4], ae(x[:1])["imgs"].detach().reshape(4, 4).numpy(), rtol=1e-5)
    np.testing.assert_allclose(canvas[0:4, -4:], ae(x[1:])["imgs"].detach().reshape(4, 4).numpy(), rtol=1e-5)


def test_training_curves_plot_each_split():
    history = {"train_elbo": [-3.0, -2.0], "train_rec": [-2.0, -1.0], "train_kl": [1.0, 1.0]}
    fig = plots.training_curves(history)
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 1]
    history.update(valid_elbo=[-4.0, -3.0], valid_rec=[-3.0, -2.5], valid_kl=[1.0, 0.5])
    fig = plots.training_curves(history)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2]
    np.testing.assert_array_equal(fig.axes[2].lines[1].get_ydata(), [1.0, 0.5])
