import base64
import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from PIL import Image

from vae import VAE, Autoencoder, em, latent, plots, style

matplotlib.use("Agg")


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
    means = model.encode(x)[0].detach().numpy()
    for digit, points in enumerate(fig.axes[0].collections):  # one collection per digit, in order
        np.testing.assert_allclose(points.get_offsets(), means[y == digit], rtol=1e-5)


def test_digit_scatter_gives_each_digit_a_colour_a_marker_and_a_name_at_its_median():
    z = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 0.0], [10.0, 10.0]])
    labels = np.array([3, 3, 3, 7])
    _, ax = plt.subplots()
    plots.digit_scatter(ax, z, labels)
    threes, sevens = ax.collections
    np.testing.assert_allclose(threes.get_facecolor()[0], to_rgba(style.DIGIT_COLOURS[3]))
    np.testing.assert_allclose(sevens.get_facecolor()[0], to_rgba(style.DIGIT_COLOURS[7]))
    assert threes.get_paths()[0] != sevens.get_paths()[0]  # different markers
    names = {text.get_text(): text.get_position() for text in ax.texts}
    assert names == {"3": (2.0, 0.0), "7": (10.0, 10.0)}  # the median of each digit's points
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["3", "7"]
    with pytest.raises(ValueError, match=r"points \[N, 2\] and labels \[N\]"):
        plots.digit_scatter(ax, z, labels[:3])


def test_digit_colours_and_markers_are_ten_distinct_ones():
    assert len(set(style.DIGIT_COLOURS)) == len(set(style.DIGIT_MARKERS)) == 10


def test_book_png_is_twice_the_css_size_and_records_its_smallest_text():
    with plt.rc_context(style.BOOK_STYLE):
        fig, ax = plt.subplots(figsize=(4.0, 2.0))
        ax.plot([0, 1], [0, 1])
        ax.set_title("a title")  # 10 pt; the tick labels are 9 pt
        data, size = style.png(fig)
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        assert image.width / size["width"] == pytest.approx(2, abs=0.01)
        assert image.height / size["height"] == pytest.approx(2, abs=0.01)
        assert float(image.text[style.MIN_TEXT_KEY]) == pytest.approx(9 * 100 / 72, abs=0.01)
    assert size["width"] == pytest.approx(4.0 * 100, abs=25)  # 100 CSS pixels per inch, cropped to the content
    fig, ax = plt.subplots()
    ax.set_axis_off()
    with Image.open(io.BytesIO(base64.b64decode(style.png(fig)[0]))) as image:
        assert style.MIN_TEXT_KEY not in image.text  # no text, nothing to record


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


def test_figures_reject_what_they_cannot_draw():
    one_d = VAE(64, [16], 1)
    with pytest.raises(ValueError, match="latent_scatter needs a 2-D latent space, the model has 1"):
        plots.latent_scatter(one_d, torch.rand(5, 64), torch.zeros(5))
    with pytest.raises(ValueError, match="manifold needs a 2-D latent space"):
        plots.manifold(one_d, (8, 8))
    with pytest.raises(ValueError, match="ncols must be a positive int"):
        plots.image_grid(torch.rand(4, 64), (8, 8), ncols=0)
    with pytest.raises(ValueError, match=r"images must be \[N, 64\]"):
        plots.image_grid(torch.rand(4, 63), (8, 8), ncols=2)
    with pytest.raises(ValueError, match="image_shape must be"):
        plots.image_grid(torch.rand(4, 64), (64,), ncols=2)


def small_vae(latent_dim: int = 2) -> VAE:
    torch.manual_seed(0)
    return VAE(64, [16], latent_dim, likelihood="categorical").eval()


def test_decoded_grid_shades_one_patch_per_hole():
    model = small_vae()
    grid = latent.grid_over_codes(torch.randn(50, 2), n=4)
    holes = torch.zeros(16, dtype=torch.bool)
    holes[[0, 5, 15]] = True
    ax = plots.decoded_grid(model, grid, (8, 8), holes)
    assert len(ax.patches) == 3
    with pytest.raises(ValueError, match="square"):
        plots.decoded_grid(model, grid[:15], (8, 8))


def test_traversals_draw_one_row_per_dimension_and_check_dims():
    model = small_vae(latent_dim=4)
    fig = plots.traversals(model, [0, 3], (8, 8), steps=5)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2 * 9 - 1, 5 * 9 - 1)
    with pytest.raises(ValueError, match="dims"):
        plots.traversals(model, [4], (8, 8))


def test_posterior_and_aggregate_figures_need_two_dimensions():
    model = small_vae()
    x, y = torch.randint(0, 17, (30, 64)), torch.randint(0, 10, (30,))
    assert len(plots.posterior_ellipses(model, x, y).axes[0].patches) == 30
    assert len(plots.aggregate_posterior(model, x, n=21).axes) == 3  # two panels and a colour bar
    with pytest.raises(ValueError, match="2-D"):
        plots.aggregate_posterior(small_vae(latent_dim=3), x)


def test_image_rows_one_axis_per_row():
    fig = plots.image_rows({"a": torch.rand(4, 64), "b": torch.rand(3, 64)}, (8, 8))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="at least one"):
        plots.image_rows({}, (8, 8))


def signed(value: float) -> str:
    """A tick label as the book writes it: two significant digits, and a minus sign."""
    return f"{value:.2g}".replace("-", "\N{MINUS SIGN}")


def test_decoded_grids_are_labelled_with_their_codes():
    model = small_vae()
    grid = latent.grid_over_codes(torch.randn(200, 2), n=10)
    ax = plots.decoded_grid(model, grid, (8, 8))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 5 and labels[0] == signed(grid[0, 0].item())  # every second column of ten
    assert ax.get_xticks()[1] == pytest.approx(2 * 9 + 3.5)  # the centre of the third column
    assert ax.get_yticklabels()[0].get_text() == signed(grid[0, 1].item())  # top row first
    fig = plots.manifold(model, (8, 8), n=5)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        signed(v) for v in torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.03, 0.97, 5)).tolist()
    ]
    assert "\N{MINUS SIGN}1.88" in fig.axes[0].get_title()  # a minus sign, as matplotlib's own labels


def test_images_are_shown_up_to_the_brightest_value_the_model_can_give(model):
    assert model.lik.max_value == 4.0  # categorical, 5 grey levels
    assert VAE(16, [8], 2).lik.max_value == 1.0  # Bernoulli
    fig = plots.prior_samples(model, (4, 4), n=4, ncols=4)
    assert fig.axes[0].images[0].get_clim() == (0, 4.0)


def test_draw_mixture_adds_two_ellipses_and_a_cross_per_component():
    mixture = em.Mixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [np.eye(2), 0.5 * np.eye(2)])
    _, ax = plt.subplots()
    assert plots.draw_mixture(mixture, ax) is ax
    assert len(ax.patches) == 4 and len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_xydata(), [[1.0, 0.0]])
    with pytest.raises(ValueError, match="2-D mixture"):
        plots.draw_mixture(em.Mixture([1.0], [[0.0]], [[[1.0]]]), ax)


# A range that covers nothing (zero, negative, NaN, infinite, lo == hi or lo > hi) is refused with a
# ValueError that names the argument, before anything is decoded or drawn.
NAN, INF = float("nan"), float("inf")
DEGENERATE = [
    ("manifold limits lo == hi", lambda m, z: plots.manifold(m, (4, 4), limits=(1.0, 1.0)), "limits"),
    ("manifold limits reversed", lambda m, z: plots.manifold(m, (4, 4), limits=(2.0, -2.0)), "limits"),
    ("manifold limits infinite", lambda m, z: plots.manifold(m, (4, 4), limits=(-INF, 2.0)), "limits"),
    ("manifold limits NaN", lambda m, z: plots.manifold(m, (4, 4), limits=(NAN, 2.0)), "limits"),
    ("manifold span outside (0, 1)", lambda m, z: plots.manifold(m, (4, 4), span=(0.0, 1.0)), "span"),
    ("manifold span lo == hi", lambda m, z: plots.manifold(m, (4, 4), span=(0.5, 0.5)), "span"),
    ("manifold n = 1", lambda m, z: plots.manifold(m, (4, 4), n=1), "n"),
    ("manifold n = 0", lambda m, z: plots.manifold(m, (4, 4), n=0), "n"),
    ("traversals span 0", lambda m, z: plots.traversals(m, [0], (4, 4), span=0.0), "span"),
    ("traversals span NaN", lambda m, z: plots.traversals(m, [0], (4, 4), span=NAN), "span"),
    ("traversals one step", lambda m, z: plots.traversals(m, [0], (4, 4), steps=1), "steps"),
    ("aggregate_posterior limit 0", lambda m, z: plots.aggregate_posterior(m, torch.rand(5, 16), limit=0.0), "limit"),
    ("aggregate_posterior limit inf", lambda m, z: plots.aggregate_posterior(m, torch.rand(5, 16), limit=INF), "limit"),
    ("aggregate_posterior limit -1", lambda m, z: plots.aggregate_posterior(m, torch.rand(5, 16), limit=-1.0), "limit"),
    ("aggregate_vs_prior limit NaN", lambda m, z: plots.aggregate_vs_prior({"a": m}, torch.rand(5, 16), limit=NAN),
     "limit"),
    ("aggregate_vs_prior n = 1", lambda m, z: plots.aggregate_vs_prior({"a": m}, torch.rand(5, 16), n=1), "n"),
    ("grid_over_codes coverage NaN", lambda m, z: latent.grid_over_codes(z, coverage=NAN), "coverage"),
    ("grid_over_codes coverage -0.5", lambda m, z: latent.grid_over_codes(z, coverage=-0.5), "coverage"),
    ("grid_over_codes margin inf", lambda m, z: latent.grid_over_codes(z, margin=INF), "margin"),
    ("grid_over_codes flat codes", lambda m, z: latent.grid_over_codes(torch.ones(9, 2)), "margin > 0"),
    ("grid_over_codes n = 1", lambda m, z: latent.grid_over_codes(z, n=1), "n"),
    ("interpolation one step", lambda m, z: plots.interpolation(m, torch.rand(16), torch.rand(16), (4, 4), steps=1),
     "steps"),
]


@pytest.mark.parametrize("case", DEGENERATE, ids=[c[0] for c in DEGENERATE])
def test_a_degenerate_range_is_refused(case):
    _, draw, name = case
    model = VAE(16, [8], 2)
    before = len(plt.get_fignums())
    with pytest.raises(ValueError, match=name):
        draw(model, torch.randn(30, 2))
    assert len(plt.get_fignums()) == before  # refused before a figure was opened


def test_the_ranges_that_are_fine_still_draw():
    model = VAE(16, [8], 2)
    assert isinstance(plots.manifold(model, (4, 4), n=2, limits=(-1, 1)), Figure)
    assert latent.grid_over_codes(torch.ones(9, 2), n=2, margin=0.5).shape == (4, 2)
