"""Exact inference on a grid: closed-form answers for a linear-Gaussian model, the ELBO identity
log p(x) - ELBO = KL(q || p(z|x)) for a VAE, and clear errors."""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from vae import VAE, tractable
from vae.objectives import log_likelihood_estimate

# A linear-Gaussian decoder x = W z + b + noise: the evidence, the posterior and every KL are known.
W = torch.tensor([[1.0, 0.5], [-0.5, 1.0], [0.3, 0.2]], dtype=torch.float64)
B = torch.tensor([0.2, -0.1, 0.5], dtype=torch.float64)
SIGMA = 0.5


def linear(z: torch.Tensor) -> Independent:
    return Independent(Normal(z.double() @ W.T + B, SIGMA), 1)


def evidence() -> MultivariateNormal:
    return MultivariateNormal(B, W @ W.T + SIGMA**2 * torch.eye(3, dtype=torch.float64))


def posterior(x: torch.Tensor) -> MultivariateNormal:
    cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + W.T @ W / SIGMA**2)
    return MultivariateNormal((x - B) @ W @ cov / SIGMA**2, cov)


@pytest.fixture(scope="module")
def linear_case():
    torch.manual_seed(0)
    x = evidence().sample((6,))
    return x, tractable.grid_posterior(linear, x, tractable.latent_grid(2, n=121, limit=6.0))


@pytest.fixture(scope="module")
def vae_case():
    torch.manual_seed(0)
    model = VAE(64, [32], latent_dim=2, likelihood="categorical", n_levels=17).eval()
    x = torch.randint(0, 17, (8, 64))
    # an untrained encoder's q is about as wide as the prior, so the grid reaches out to 8 standard deviations
    return model, x, tractable.grid_posterior(model.likelihood, x, tractable.latent_grid(2, n=161, limit=8.0))


def test_grid_layout():
    grid = tractable.latent_grid(2, n=5, limit=2.0)
    assert grid.points.shape == (25, 2) and grid.shape == (5, 5) and grid.latent_dim == 2
    assert grid.points[1].tolist() == [-2.0, -1.0]  # the last coordinate varies fastest
    assert grid.log_cell == pytest.approx(2 * math.log(1.0))
    assert grid.log_prior()[12].item() == pytest.approx(-math.log(2 * math.pi))  # N(0; 0, I) in 2-D


def test_evidence_matches_the_closed_form(linear_case):
    x, post = linear_case
    torch.testing.assert_close(post.log_evidence, evidence().log_prob(x), atol=1e-7, rtol=0)


def test_posterior_matches_the_closed_form(linear_case):
    x, post = linear_case
    exact = posterior(x).log_prob(post.grid.points.unsqueeze(1)).T  # [N, G]
    mass_error = (post.mass() - (exact + post.grid.log_cell).exp()).abs().sum(dim=1)
    assert mass_error.max() < 1e-6
    assert post.edge_mass().max() < 1e-8


def test_kl_matches_the_closed_form(linear_case):
    x, post = linear_case
    torch.manual_seed(1)
    mean, logvar = 0.5 * torch.randn(6, 2, dtype=torch.float64), 0.3 * torch.randn(6, 2, dtype=torch.float64) - 1
    q = MultivariateNormal(mean, torch.diag_embed(logvar.exp()))
    torch.testing.assert_close(post.kl(mean, logvar), kl_divergence(q, posterior(x)), atol=1e-5, rtol=1e-5)


def test_best_gaussian_is_the_mean_field_answer(linear_case):
    # for a Gaussian posterior the best diagonal q has the posterior mean and variances 1 / precision_ii
    x, post = linear_case
    mean, logvar = post.best_gaussian(torch.zeros(6, 2), torch.zeros(6, 2))  # one start far off
    exact = posterior(x)
    torch.testing.assert_close(mean, exact.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(logvar.exp(), 1 / exact.precision_matrix.diagonal(dim1=-2, dim2=-1), atol=1e-5, rtol=0)
    assert (post.elbo(mean, logvar) <= post.log_evidence).all()


def test_moments_match_the_closed_form(linear_case):
    x, post = linear_case
    mean, var = post.moments()
    exact = posterior(x)
    torch.testing.assert_close(mean, exact.mean, atol=1e-7, rtol=0)
    torch.testing.assert_close(var, exact.covariance_matrix.diagonal(dim1=-2, dim2=-1), atol=1e-7, rtol=0)


def test_best_gaussian_without_a_start_uses_the_posterior_moments(linear_case):
    x, post = linear_case
    mean, logvar = post.best_gaussian()
    torch.testing.assert_close(mean, posterior(x).mean, atol=1e-5, rtol=0)


def test_one_dimensional_latent():
    w = torch.tensor([[2.0], [1.0]], dtype=torch.float64)
    likelihood = lambda z: Independent(Normal(z.double() @ w.T, 0.3), 1)  # noqa: E731
    x = torch.tensor([[0.5, 0.1], [-1.0, -0.8]], dtype=torch.float64)
    post = tractable.grid_posterior(likelihood, x, tractable.latent_grid(1, n=1001, limit=6.0))
    exact = MultivariateNormal(torch.zeros(2, dtype=torch.float64), w @ w.T + 0.09 * torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(post.log_evidence, exact.log_prob(x), atol=1e-7, rtol=0)
    var = 1 / (1 + (w**2).sum() / 0.09)  # the posterior is N(var * w.x / 0.09, var)
    true_posterior = Normal(var * (x @ w)[:, 0] / 0.09, var.sqrt())
    mean, logvar = torch.tensor([[0.2], [-0.3]]), torch.tensor([[-3.0], [-2.0]])
    q = Normal(mean[:, 0].double(), (0.5 * logvar[:, 0].double()).exp())
    expected = torch.distributions.kl_divergence(q, true_posterior)
    torch.testing.assert_close(post.kl(mean, logvar), expected, atol=1e-7, rtol=0)
    torch.testing.assert_close(post.log_evidence - post.elbo(mean, logvar), post.kl(mean, logvar), atol=1e-9, rtol=0)


def test_log_evidence_minus_elbo_equals_the_grid_kl_for_a_vae(vae_case):
    # the three terms are computed separately: log p(x) by quadrature, the ELBO with the closed-form
    # KL(q || p(z)), and KL(q || p(z|x)) on the grid. Tolerance: 1e-6 nats on values of about 180.
    model, x, post = vae_case
    with torch.no_grad():
        mean, logvar = model.encode(x)
    gap = post.log_evidence - post.elbo(mean, logvar)
    torch.testing.assert_close(gap, post.kl(mean, logvar), atol=1e-6, rtol=0)
    assert (gap > 0).all()
    assert post.edge_mass().max() < 1e-6


def test_grid_elbo_agrees_with_the_monte_carlo_elbo(vae_case):
    model, x, post = vae_case
    with torch.no_grad():
        mean, logvar = model.encode(x)
        torch.manual_seed(2)
        z = model.reparameterize(mean, logvar, 4000)  # [N, S, L]
        rec = model.likelihood(z).log_prob(x.unsqueeze(1))  # [N, S]
    mc = rec.mean(1) - 0.5 * (-logvar + logvar.exp() + mean**2 - 1).sum(-1)
    standard_error = rec.std(1) / 4000**0.5  # about 0.07 nats here
    assert ((post.elbo(mean, logvar) - mc).abs() < 4 * standard_error).all()


def test_grid_evidence_agrees_with_the_importance_weighted_estimate(vae_case):
    model, x, post = vae_case
    torch.manual_seed(3)
    estimate = log_likelihood_estimate(model, x, n_samples=5000).double()
    # the importance-weighted estimate is noisy and biased low, by a few hundredths of a nat here
    assert ((post.log_evidence - estimate).abs() < 0.06).all()
    assert estimate.mean() <= post.log_evidence.mean() + 0.01


def test_categorical_shortcut_equals_the_distributions_log_prob(vae_case):
    # for a categorical likelihood the grid is scored by one matrix product with the one-hot
    # levels; it must give what log_prob gives, for levels stored as integers or as floats
    model, x, post = vae_case
    points = post.grid.points[::97].float()
    with torch.no_grad():
        direct = model.likelihood(points.unsqueeze(1)).log_prob(x).double().T  # [N, G']
    sub = tractable.LatentGrid(post.grid.axis, post.grid.points[::97], post.grid.log_cell)
    for levels in (x, x.float()):
        torch.testing.assert_close(tractable.grid_log_likelihood(model.likelihood, levels, sub), direct,
                                   atol=1e-4, rtol=0)
    torch.testing.assert_close(post.log_lik[:, ::97], direct, atol=1e-4, rtol=0)
    with pytest.raises((IndexError, RuntimeError)):  # a level the likelihood cannot score
        tractable.grid_log_likelihood(model.likelihood, torch.full((2, 64), 17), sub)


def test_best_gaussian_beats_the_encoder(vae_case):
    model, x, post = vae_case
    with torch.no_grad():
        mean, logvar = model.encode(x)
    best = post.elbo(*post.best_gaussian(mean, logvar))
    encoder = post.elbo(mean, logvar)
    assert (best >= encoder - 1e-9).all() and (best <= post.log_evidence).all()


def test_a_narrow_grid_shows_in_the_edge_mass(linear_case):
    x, _ = linear_case
    narrow = tractable.grid_posterior(linear, x, tractable.latent_grid(2, n=41, limit=0.5))
    assert narrow.edge_mass().max() > 0.01


def test_bad_input_is_refused(linear_case):
    x, post = linear_case
    grid = post.grid
    with pytest.raises(ValueError, match="latent_dim 1 or 2"):
        tractable.latent_grid(3)
    with pytest.raises(ValueError, match="at least 2"):
        tractable.latent_grid(2, n=1)
    with pytest.raises(TypeError, match="n must be a positive int"):
        tractable.latent_grid(2, n=10.5)
    with pytest.raises(ValueError, match="limit"):
        tractable.latent_grid(2, limit=-1.0)
    with pytest.raises(ValueError, match=r"shape \[N, 3\]"):
        tractable.grid_posterior(linear, torch.zeros(4, 5), grid)
    with pytest.raises(ValueError, match="NaN"):
        tractable.grid_posterior(linear, torch.full((2, 3), float("nan")), grid)
    with pytest.raises(TypeError, match="Distribution"):
        tractable.grid_posterior(lambda z: z, x, grid)
    with pytest.raises(ValueError, match=r"shape \[6, 2\]"):
        post.elbo(torch.zeros(6, 3), torch.zeros(6, 3))
    with pytest.raises(ValueError, match="finite"):
        post.kl(torch.full((6, 2), float("nan")), torch.zeros(6, 2))
    with pytest.raises(ValueError, match="both"):
        post.best_gaussian(torch.zeros(6, 2))
    with pytest.raises(ValueError, match="max_iter"):
        post.best_gaussian(torch.zeros(6, 2), torch.zeros(6, 2), max_iter=0)
