"""The computations behind the latent-space figures: codes, grids, paths, ellipses and densities."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from vae import VAE, Autoencoder, latent


def small_vae(latent_dim: int = 2) -> VAE:
    torch.manual_seed(0)
    return VAE(64, [16], latent_dim, likelihood="categorical").eval()


def test_latent_draws_nothing():
    code = "import sys, vae.latent; assert 'matplotlib' not in sys.modules, 'vae.latent imported matplotlib'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_codes_are_the_posterior_mean_or_the_autoencoders_code():
    x = torch.randint(0, 17, (5, 64))
    vae = small_vae()
    with torch.no_grad():
        torch.testing.assert_close(latent.codes(vae, x), vae.encode(x)[0])
    torch.manual_seed(0)
    ae = Autoencoder(64, [16], 3, likelihood="categorical").eval()
    z = latent.codes(ae, x)
    assert z.shape == (5, 3) and not z.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(z, ae.encode(x))


def test_grid_over_codes_spans_the_central_box_top_row_first():
    z = torch.cartesian_prod(torch.linspace(0, 10, 101), torch.linspace(-1, 1, 21))
    grid = latent.grid_over_codes(z, n=3, coverage=1.0)
    assert grid.shape == (9, 2)
    assert grid[0].tolist() == [0.0, 1.0] and grid[2].tolist() == [10.0, 1.0] and grid[-1].tolist() == [10.0, -1.0]
    wider = latent.grid_over_codes(z, n=3, coverage=1.0, margin=2.0)
    torch.testing.assert_close(wider[0], grid[0] + torch.tensor([-2.0, 2.0]))
    inner = latent.grid_over_codes(z, n=3, coverage=0.5)
    assert inner[:, 0].min() == pytest.approx(2.5) and inner[:, 0].max() == pytest.approx(7.5)


def test_grid_over_codes_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        latent.grid_over_codes(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="coverage"):
        latent.grid_over_codes(torch.zeros(5, 2), coverage=0)
    with pytest.raises(ValueError, match="margin"):
        latent.grid_over_codes(torch.zeros(5, 2), margin=-1.0)


def test_interpolate_starts_and_ends_at_the_two_codes():
    torch.manual_seed(0)
    model = Autoencoder(64, [16], 2, likelihood="categorical").eval()
    x = torch.randint(0, 17, (2, 64))
    path = latent.interpolate(model, x[0], x[1], steps=5)
    with torch.no_grad():
        ends = model.decode(latent.codes(model, x))
    assert path.shape == (5, 64)
    torch.testing.assert_close(path[[0, -1]], ends)


def test_interpolate_takes_two_single_inputs():
    with pytest.raises(ValueError, match="two single inputs"):
        latent.interpolate(VAE(64, [16], 2), torch.rand(2, 64), torch.rand(2, 64))
    with pytest.raises(ValueError, match="steps"):
        latent.interpolate(VAE(64, [16], 2), torch.rand(64), torch.rand(64), steps=0)


def test_ellipse_axes_and_angle():
    width, height, angle = latent.ellipse([0.0, 0.0], [[4.0, 0.0], [0.0, 1.0]], n_std=1.0)
    assert (width, height) == pytest.approx((4.0, 2.0))
    assert angle % 180 == pytest.approx(0.0, abs=1e-9)
    width, height, angle = latent.ellipse([0.0, 0.0], [[2.5, 1.5], [1.5, 2.5]], n_std=2.0)  # eigenvalues 4 and 1 at 45°
    assert (width, height) == pytest.approx((8.0, 4.0))
    assert angle % 180 == pytest.approx(45.0)
    width, height, _ = latent.ellipse(torch.zeros(2), torch.diag(torch.tensor([1.0, 9.0])), n_std=1.0)  # tensors too
    assert (width, height) == pytest.approx((6.0, 2.0))


def test_ellipse_refuses_what_is_not_a_2d_gaussian():
    with pytest.raises(ValueError, match="n_std"):
        latent.ellipse([0.0, 0.0], np.eye(2), n_std=-1.0)
    with pytest.raises(ValueError, match=r"mean \[2\] and a covariance \[2, 2\]"):
        latent.ellipse([0.0, 0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        latent.ellipse([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]])


def test_density_grid_gives_q_and_the_prior_on_the_grid_z2_along_rows():
    model = small_vae()
    x = torch.randint(0, 17, (30, 64))
    q, p = latent.density_grid(model, x, limit=2.0, n=5)
    assert q.shape == p.shape == (5, 5)
    assert p[2, 2] == pytest.approx(1 / (2 * math.pi), rel=1e-5)  # the standard normal prior at the origin
    assert p[0, 2] == pytest.approx(math.exp(-2.0) / (2 * math.pi), rel=1e-5)  # z = (0, -2): row 0 is z_2 = -limit
    with torch.no_grad():
        mean, logvar = model.encode(x)
    z = torch.tensor([[-2.0, 1.0]])  # column 0, row 3
    expected = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(1).exp().mean()
    assert q[3, 0] == pytest.approx(expected.item(), rel=1e-4)


def test_to_numpy_and_to_model_device():
    assert latent.to_numpy(torch.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]
    assert latent.to_numpy([1, 2]).tolist() == [1, 2]
    model = small_vae()
    assert latent.to_model_device(model, torch.zeros(3)).device == next(model.parameters()).device
