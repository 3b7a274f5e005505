import numpy as np
import pytest
import torch

import vae
from vae import VAE, Autoencoder
from vae.interface import ClassroomVAE


def test_seed_classroom_interface():
    """ClassroomVAE(256, [128, 64, 36, 18, 18]) on a [1, 256] input, latent size 18 // 2 = 9."""
    model = ClassroomVAE(256, [128, 64, 36, 18, 18])
    assert model.latent_dim == 9
    x = torch.rand(1, 256)
    with torch.no_grad():
        out = model(x)
        assert set(out) == {"imgs", "z", "mean", "logvar"}
        assert out["imgs"].shape == (1, 256)
        assert out["z"].shape == out["mean"].shape == out["logvar"].shape == (1, 9)
        out = model(x, n_samples_per_z=5)
        assert out["imgs"].shape == (1, 256)
        assert out["z"].shape == (1, 5, 9)
        assert out["mean"].shape == out["logvar"].shape == (1, 9)


def test_multi_sample_images_are_the_average_over_samples():
    torch.manual_seed(0)
    model = ClassroomVAE(10, [8], 3)
    x = torch.rand(4, 10)
    torch.manual_seed(1)
    out = model(x, n_samples_per_z=6)
    torch.testing.assert_close(out["imgs"], model.decode(out["z"]).mean(1))


def test_explicit_latent_dim_and_likelihoods():
    for likelihood in ("bernoulli", "gaussian", "categorical"):
        model = ClassroomVAE(64, [32, 16], latent_dim=5, likelihood=likelihood)
        x = torch.randint(0, 2, (3, 64)).float()
        out = model(x)
        assert out["z"].shape == (3, 5)
        assert out["imgs"].shape == (3, 64)
    assert VAE(64, [32], 4, likelihood="categorical", n_levels=5).decoder[-1].out_features == 64 * 5


def test_categorical_mean_image_is_the_expected_level():
    model = VAE(4, [8], 2, likelihood="categorical", n_levels=3)
    z = torch.zeros(1, 2)
    probs = model.decoder(z).unflatten(-1, (4, 3)).softmax(-1)
    torch.testing.assert_close(model.decode(z), (probs * torch.tensor([0.0, 1.0, 2.0])).sum(-1))


def test_reparameterized_samples_have_the_right_moments():
    torch.manual_seed(0)
    mean = torch.tensor([[1.0, -2.0, 0.0]])
    logvar = torch.log(torch.tensor([[0.25, 4.0, 1.0]]))
    z = VAE(4, [6], 3).reparameterize(mean, logvar, n_samples=200_000)[0]
    torch.testing.assert_close(z.mean(0), mean[0], atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0, 1.0]), atol=0.02, rtol=0)


def test_gradients_reach_mean_and_logvar():
    mean = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    z = VAE(4, [6], 3).reparameterize(mean, logvar)
    (z**2).sum().backward()
    assert mean.grad is not None and mean.grad.abs().sum() > 0
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_sample_draws_from_the_prior_and_decodes():
    torch.manual_seed(0)
    model = VAE(64, [16], 2)
    imgs = model.sample(7)
    assert imgs.shape == (7, 64)
    assert ((imgs >= 0) & (imgs <= 1)).all()


def test_autoencoder_shapes_and_determinism():
    model = Autoencoder(64, [32], latent_dim=2)
    x = torch.rand(5, 64)
    out = model(x)
    assert out["z"].shape == (5, 2) and out["imgs"].shape == (5, 64)
    torch.testing.assert_close(model(x)["imgs"], out["imgs"])


def test_numpy_input_is_accepted():
    model = VAE(8, [4], 2)
    mean, logvar = model.encode(np.random.default_rng(0).random((3, 8)).astype(np.float32))
    assert mean.shape == (3, 2)


@pytest.mark.parametrize(
    "x, error, message",
    [
        (torch.rand(3, 10), ValueError, r"shape \[N, 8\]"),
        (torch.rand(8), ValueError, r"shape \[N, 8\]"),
        (torch.rand(0, 8), ValueError, "empty"),
        (torch.full((2, 8), float("nan")), ValueError, "NaN"),
        (torch.full((2, 8), float("inf")), ValueError, "NaN or inf"),
        (torch.full((2, 8), 2.0), ValueError, r"\[0, 1\]"),
        ([[0.0] * 8], TypeError, "torch.Tensor or numpy array"),
        (np.array([["a"] * 8]), TypeError, "numbers"),
    ],
)
def test_bad_input_gets_a_clear_error(x, error, message):
    with pytest.raises(error, match=message):
        VAE(8, [4], 2).encode(x)


def test_categorical_input_must_be_integer_levels():
    model = VAE(8, [4], 2, likelihood="categorical", n_levels=17)
    with pytest.raises(ValueError, match="integer levels 0..16"):
        model.encode(torch.full((2, 8), 17.0))
    with pytest.raises(ValueError, match="not all integers"):
        model.encode(torch.full((2, 8), 0.5))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(input_dim=0, hidden_dims=[4]), ValueError, "input_dim"),
        (dict(input_dim=8, hidden_dims=[4, -1]), ValueError, "hidden_dims"),
        (dict(input_dim=8, hidden_dims=[4], latent_dim=0), ValueError, "latent_dim"),
        (dict(input_dim=8.5, hidden_dims=[4]), TypeError, "input_dim"),
        (dict(input_dim=8, hidden_dims=4), TypeError, "hidden_dims"),
        (dict(input_dim=8, hidden_dims=[]), ValueError, "hidden_dims"),
        (dict(input_dim=8, hidden_dims=[4], likelihood="poisson"), ValueError, "one of"),
        (dict(input_dim=8, hidden_dims=[4], likelihood="gaussian", sigma=0), ValueError, "sigma"),
        (dict(input_dim=8, hidden_dims=[4], likelihood="categorical", n_levels=1), ValueError, "n_levels"),
    ],
)
def test_bad_sizes_and_names_get_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        VAE(**{"latent_dim": 2, **kwargs})


def test_the_classroom_latent_size_is_half_the_last_hidden_layer():
    assert ClassroomVAE(8, [6]).latent_dim == 3
    with pytest.raises(ValueError, match="latent_dim"):
        ClassroomVAE(8, [1])  # 1 // 2 == 0


def test_a_core_vae_is_not_called_directly():
    with pytest.raises(TypeError, match="ClassroomVAE"):
        VAE(8, [4], 2)(torch.rand(2, 8))


def test_bad_sample_counts_are_rejected():
    model = ClassroomVAE(8, [4], 2)
    with pytest.raises(ValueError, match="n_samples_per_z"):
        model(torch.rand(2, 8), n_samples_per_z=0)
    with pytest.raises(ValueError, match="n_samples"):
        model.reparameterize(torch.zeros(2, 2), torch.zeros(2, 2), 0)
    with pytest.raises(ValueError, match="n must be"):
        model.sample(0)


def test_integer_data_is_scored_like_the_same_floats():
    torch.manual_seed(0)
    model = VAE(8, [6], 2, likelihood="bernoulli")
    binary = torch.randint(0, 2, (5, 8))
    torch.manual_seed(1)
    from_int = vae.elbo(model, binary).elbo
    torch.manual_seed(1)
    from_float = vae.elbo(model, binary.float()).elbo
    torch.testing.assert_close(from_int, from_float)
    gaussian = VAE(8, [6], 2, likelihood="gaussian")
    assert gaussian.encode(np.arange(16).reshape(2, 8))[0].shape == (2, 2)


@pytest.mark.parametrize("sigma", [float("inf"), float("nan"), 1e-30, 1e9, 0.0, -1.0])
def test_a_gaussian_scale_float32_cannot_use_is_rejected(sigma):
    with pytest.raises(ValueError, match="sigma"):
        VAE(8, [6], 2, likelihood="gaussian", sigma=sigma)


def test_codes_must_be_float_tensors():
    model = VAE(8, [6], 2)
    with pytest.raises(TypeError, match="z must be a floating-point torch.Tensor"):
        model.decode([[0.0, 0.0]])
    with pytest.raises(TypeError, match="z must be a floating-point torch.Tensor, got a tensor of dtype torch.int64"):
        model.decode(torch.zeros(1, 2, dtype=torch.long))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_codes_with_nan_or_inf_are_refused(bad):
    model = VAE(8, [6], 2)
    z = torch.zeros(3, 2)
    z[1, 0] = bad
    for call in (model.decode, model.likelihood):
        with pytest.raises(ValueError, match="z contains NaN or inf"):
            call(z)
    with pytest.raises(ValueError, match="mean contains NaN or inf"):
        model.reparameterize(z, torch.zeros(3, 2))
