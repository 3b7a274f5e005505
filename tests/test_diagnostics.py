import math

import pytest
import torch

from vae import VAE, load_digits
from vae import diagnostics as D
from vae.objectives import gaussian_kl, iwae_bound


def constructed_codes() -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances for 200 inputs in 5 dimensions, 2 of them used.

    Dimensions 0 and 3 move with the input (means spread with variance about 1,
    posteriors narrow); dimensions 1, 2 and 4 sit at the prior (mean 0, variance 1)
    apart from a tiny wobble of the mean (variance about 1e-4).
    """
    gen = torch.Generator().manual_seed(0)
    mean = 0.01 * torch.randn(200, 5, generator=gen)
    logvar = torch.zeros(200, 5)
    for j in (0, 3):
        mean[:, j] = torch.randn(200, generator=gen)
        logvar[:, j] = math.log(0.05)
    return mean, logvar


def test_active_units_counts_the_used_dimensions():
    mean, _ = constructed_codes()
    assert D.active_units(mean) == 2
    assert D.active_units(mean, threshold=1e-6) == 5  # even the wobble counts at a tiny threshold
    assert D.active_units(torch.zeros(10, 4)) == 0


def test_activity_is_the_variance_of_the_means():
    mean = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    assert D.activity(mean).tolist() == [4.0, 0.0]


def test_kl_per_dimension_known_values_and_sum():
    mean, logvar = constructed_codes()
    per_dim = D.kl_per_dimension(mean, logvar)
    assert per_dim.shape == (5,)
    # a used dimension: ½(−log 0.05 + 0.05 + E[μ²] − 1) with E[μ²] ≈ 1
    expected = 0.5 * (-math.log(0.05) + 0.05 + mean[:, 0].pow(2).mean() - 1)
    assert per_dim[0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert (per_dim[[1, 2, 4]] < 1e-3).all()
    assert per_dim.sum().item() == pytest.approx(gaussian_kl(mean, logvar).mean().item(), rel=1e-5)


def test_aggregate_posterior_of_one_component_is_that_gaussian():
    mean, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    z = torch.tensor([[1.0, -2.0], [0.0, 0.0]])
    expected = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(D.aggregate_log_density(mean, logvar, z), expected)


def test_aggregate_posterior_of_the_prior_is_the_prior_and_integrates_to_one():
    # N copies of N(0, I) average to N(0, I)
    mean, logvar = torch.zeros(7, 2), torch.zeros(7, 2)
    z = torch.randn(5, 2)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(D.aggregate_log_density(mean, logvar, z, batch_size=2), prior)
    # a two-component mixture integrates to one on a fine grid
    mean, logvar = torch.tensor([[-1.0, 0.0], [2.0, 1.0]]), torch.full((2, 2), math.log(0.3))
    g = torch.linspace(-6, 6, 241)
    grid = torch.cartesian_prod(g, g)
    mass = D.aggregate_log_density(mean, logvar, grid).exp().sum() * (g[1] - g[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=1e-4)


def test_marginal_kl_known_cases():
    # every posterior equal to the prior: q(z) = p(z), KL 0
    assert D.marginal_kl(torch.zeros(50, 3), torch.zeros(50, 3), n_samples=2000) == pytest.approx(0.0, abs=1e-6)
    # every posterior the same N(m, s²): q(z) is that Gaussian; closed form per dimension
    m, s2 = 1.5, 0.25
    mean, logvar = torch.full((40, 2), m), torch.full((40, 2), math.log(s2))
    expected = 2 * 0.5 * (-math.log(s2) + s2 + m**2 - 1)
    assert D.marginal_kl(mean, logvar, n_samples=50_000) == pytest.approx(expected, abs=0.03)
    # it never exceeds the average per-example KL (the difference is a mutual information, >= 0)
    mean, logvar = constructed_codes()
    assert 0 < D.marginal_kl(mean, logvar) < D.kl_per_dimension(mean, logvar).sum().item()


def test_holes_on_a_lattice():
    g = torch.arange(10.0)
    codes = torch.cartesian_prod(g, g)  # spacing 1
    inside = torch.tensor([[4.5, 4.5], [0.0, 9.0], [-2.9, 0.0]])
    far = torch.tensor([[20.0, 20.0], [-5.0, 4.0], [-3.1, 0.0]])
    assert D.in_holes(inside, codes).tolist() == [False, False, False]
    assert D.in_holes(far, codes).tolist() == [True, True, True]
    assert not D.in_holes(far, codes, factor=100.0).any()
    # scale-free: stretching codes and points together changes nothing
    both = torch.cat([inside, far])
    assert torch.equal(D.in_holes(50 * both, 50 * codes), D.in_holes(both, codes))


def test_iwae_bound_is_non_decreasing_in_k_on_average():
    torch.manual_seed(0)
    model = VAE(64, [32], latent_dim=4, likelihood="categorical")
    with torch.no_grad():
        model.to_logvar.bias.fill_(-3.0)  # a poor, narrow q: a clear gap for the bound to close
    x = load_digits().test.levels[:20]
    torch.manual_seed(1)
    with torch.no_grad():
        bounds = [torch.stack([iwae_bound(model, x, k).mean() for _ in range(10)]).mean().item() for k in (1, 4, 16, 64)]
    steps = [b - a for a, b in zip(bounds, bounds[1:])]
    assert all(s > 0.2 for s in steps), bounds  # measured steps: about 0.4 to 0.6 nats, standard error under 0.1


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\[N, L\]"):
        D.kl_per_dimension(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="N >= 2"):
        D.activity(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="z must be"):
        D.aggregate_log_density(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="positive"):
        D.active_units(torch.zeros(3, 2), threshold=0)
