import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vae import VAE, Autoencoder
from vae.objectives import (
    reconstruction,
    bits_per_dim,
    elbo,
    gaussian_kl,
    gaussian_kl_mc,
    iwae_bound,
    log_likelihood_estimate,
    reconstruction_log_likelihood,
    refine_posterior,
)


def zero_model(likelihood: str, **kw) -> VAE:
    """A VAE whose every parameter is 0: q(z|x) = N(0, I) and a flat decoder."""
    model = VAE(64, [16], 2, likelihood=likelihood, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def test_kl_is_zero_at_the_prior():
    assert gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)).tolist() == [0.0, 0.0, 0.0]


def test_kl_known_values():
    # mean 2, unit variance, one dimension: ½ · 2² = 2
    assert gaussian_kl(torch.tensor([[2.0]]), torch.tensor([[0.0]])).item() == pytest.approx(2.0)
    # log σ = 1, i.e. logvar = 2: ½(e² − 2 − 1)
    assert gaussian_kl(torch.tensor([[0.0]]), torch.tensor([[2.0]])).item() == pytest.approx(0.5 * (math.e**2 - 3))


def test_kl_sums_over_dimensions():
    mean, logvar = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[0.0, 1.0, -2.0]])
    per_dim = [gaussian_kl(mean[:, j : j + 1], logvar[:, j : j + 1]).item() for j in range(3)]
    assert gaussian_kl(mean, logvar).item() == pytest.approx(sum(per_dim))


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mean, logvar = torch.randn(10, 4), torch.randn(10, 4)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(0.0, 1.0)
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected)


def test_kl_monte_carlo_agrees_with_closed_form():
    torch.manual_seed(0)
    mean, logvar = torch.randn(6, 3), 0.5 * torch.randn(6, 3)
    estimate = gaussian_kl_mc(mean, logvar, n_samples=200_000)
    torch.testing.assert_close(estimate, gaussian_kl(mean, logvar), atol=0.03, rtol=0.01)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-10, 10), min_size=1, max_size=6),
    st.lists(st.floats(-8, 8), min_size=6, max_size=6),
)
def test_kl_is_nonnegative(means, logvars):
    mean = torch.tensor(means, dtype=torch.float64)
    logvar = torch.tensor(logvars[: len(means)], dtype=torch.float64)
    assert gaussian_kl(mean, logvar).item() >= 0


def test_kl_is_accurate_near_the_prior_in_single_precision():
    # KL(N(0, e^v) || N(0, 1)) = ½(e^v − 1 − v) = v²/4 + v³/12 + ...; the terms nearly cancel.
    logvar = torch.tensor([[1e-3], [-1e-3], [1e-5]])
    exact = 0.5 * (torch.expm1(logvar.double()) - logvar.double()).squeeze(1)
    # Within 0.1 %; the plain exp(v) - 1 - v loses every digit at v = 1e-5 in single precision.
    torch.testing.assert_close(gaussian_kl(torch.zeros_like(logvar), logvar).double(), exact, rtol=1e-3, atol=0)


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize(
    "likelihood, x, expected",
    [
        # 17 equally likely levels per pixel
        ("categorical", torch.randint(0, 17, (5, 64)), -64 * math.log(17)),
        # sigmoid(0) = ½ for each binary pixel
        ("bernoulli", torch.randint(0, 2, (5, 64)).float(), -64 * math.log(2)),
        # N(x; 0, 1) at x = 0
        ("gaussian", torch.zeros(5, 64), -32 * math.log(2 * math.pi)),
    ],
)
def test_zero_model_gives_the_analytic_reconstruction_and_zero_kl(likelihood, x, expected):
    terms = elbo(zero_model(likelihood), x)
    torch.testing.assert_close(terms.rec, torch.full((5,), expected))
    torch.testing.assert_close(terms.kl, torch.zeros(5))
    torch.testing.assert_close(terms.elbo, terms.rec)


def test_gaussian_likelihood_is_scaled_squared_error():
    # log N(x; 0, σ²) = −½ Σ x²/σ² − D log σ − (D/2) log 2π: MSE up to constants
    sigma = 0.5
    model = zero_model("gaussian", sigma=sigma)
    x = torch.rand(3, 64)
    z = torch.zeros(3, 2)
    expected = -0.5 * (x**2).sum(1) / sigma**2 - 64 * math.log(sigma) - 32 * math.log(2 * math.pi)
    torch.testing.assert_close(reconstruction_log_likelihood(model, x, z), expected)


def test_learned_sigma_is_a_parameter_and_fixed_sigma_is_not():
    learned = VAE(4, [8], 2, likelihood="gaussian", learn_sigma=True)
    fixed = VAE(4, [8], 2, likelihood="gaussian")
    assert any(p is learned.lik.log_sigma for p in learned.parameters())
    assert all(p is not fixed.lik.log_sigma for p in fixed.parameters())


def test_beta_weights_the_kl():
    torch.manual_seed(0)
    model = VAE(64, [16], 3)
    x = torch.rand(4, 64)
    torch.manual_seed(1)
    one = elbo(model, x, beta=1.0)
    torch.manual_seed(1)
    four = elbo(model, x, beta=4.0)
    torch.testing.assert_close(four.elbo, one.rec - 4 * one.kl)


def test_more_samples_average_the_reconstruction():
    torch.manual_seed(0)
    model = VAE(64, [16], 3)
    x = torch.rand(4, 64)
    torch.manual_seed(1)
    terms = elbo(model, x, n_samples=7)
    torch.manual_seed(1)
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar, 7)
    torch.testing.assert_close(terms.rec, reconstruction_log_likelihood(model, x, z).mean(1))


def test_autoencoder_objective_has_no_kl():
    model = Autoencoder(64, [16], 2)
    x = torch.rand(3, 64)
    terms = reconstruction(model, x)
    torch.testing.assert_close(terms.kl, torch.zeros(3))
    torch.testing.assert_close(terms.elbo, model.likelihood(model.encode(x)).log_prob(x))
    with pytest.raises(TypeError, match="model must be a vae.VAE, got Autoencoder"):
        elbo(model, x)


@pytest.fixture(scope="module")
def small_vae():
    torch.manual_seed(0)
    model = VAE(8, [16], 2, likelihood="bernoulli")
    x = torch.randint(0, 2, (5, 8)).float()
    return model, x


def test_iwae_with_one_sample_is_the_elbo_in_expectation(small_vae):
    model, x = small_vae
    torch.manual_seed(0)
    with torch.no_grad():
        iwae1 = torch.stack([iwae_bound(model, x, n_samples=1) for _ in range(4000)]).mean(0)
        elbo_mc = torch.stack([elbo(model, x).elbo for _ in range(4000)]).mean(0)
    torch.testing.assert_close(iwae1, elbo_mc, atol=0.05, rtol=0)


def test_iwae_bound_increases_with_k_and_exceeds_the_elbo(small_vae):
    model, x = small_vae
    torch.manual_seed(0)
    with torch.no_grad():
        exact_elbo = torch.stack([elbo(model, x, n_samples=1000).elbo for _ in range(5)]).mean(0)
        bounds = [torch.stack([iwae_bound(model, x, k) for _ in range(300)]).mean(0) for k in (1, 5, 50)]
    assert (bounds[1] > bounds[0]).all() and (bounds[2] > bounds[1]).all()
    assert (bounds[2] >= exact_elbo).all()


def linear_gaussian_vae() -> tuple[VAE, torch.Tensor, torch.Tensor]:
    """A VAE whose p(x) has a closed form, two inputs, and their exact log p(x).

    z ~ N(0, 1), x | z ~ N(w z + b, σ² I) with a linear decoder, so p(x) = N(b, w wᵀ + σ² I) and
    the posterior p(z|x) is a 1-D Gaussian, which a Gaussian q can match exactly.
    """
    torch.manual_seed(0)
    model = VAE(3, [4], 1, likelihood="gaussian", sigma=1.5)
    w, b = torch.tensor([[1.0], [-0.5], [2.0]]), torch.tensor([0.3, 0.0, -1.0])
    model.decoder = torch.nn.Linear(1, 3)
    with torch.no_grad():
        model.decoder.weight.copy_(w)
        model.decoder.bias.copy_(b)
    x = torch.tensor([[0.5, 0.2, -0.4], [1.5, -1.0, 2.0]])
    exact = torch.distributions.MultivariateNormal(b, w @ w.T + 2.25 * torch.eye(3)).log_prob(x)
    return model, x, exact


def test_iwae_converges_to_the_exact_log_likelihood():
    model, x, exact = linear_gaussian_vae()
    estimate = log_likelihood_estimate(model, x, n_samples=20_000)
    assert (estimate <= exact + 0.02).all()
    torch.testing.assert_close(estimate, exact, atol=0.05, rtol=0)


def test_refined_posterior_closes_the_gap_to_the_exact_log_likelihood():
    model, x, exact = linear_gaussian_vae()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    with torch.no_grad():
        encoder = elbo(model, x, n_samples=20_000).elbo
    mean, logvar = refine_posterior(model, x, steps=1000, lr=0.02, n_samples=256)
    with torch.no_grad():
        refined = elbo(model, x, n_samples=20_000, posterior=(mean, logvar)).elbo
    assert (exact - encoder > 0.5).all()  # the untrained encoder is far off
    torch.testing.assert_close(refined, exact, atol=0.03, rtol=0)  # the best Gaussian q is the posterior
    # The refined q is the exact posterior: N(w·(x − b) / (w·w + σ²), σ² / (w·w + σ²)) with w·w = 5.25.
    w, b = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.3, 0.0, -1.0])
    torch.testing.assert_close(mean[:, 0], (x - b) @ w / 7.5, atol=0.03, rtol=0)
    torch.testing.assert_close(logvar[:, 0], torch.full((2,), math.log(2.25 / 7.5)), atol=0.05, rtol=0)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_refine_posterior_and_elbo_reject_bad_arguments(small_vae):
    model, x = small_vae
    with pytest.raises(ValueError, match="steps must be a positive int"):
        refine_posterior(model, x, steps=0)
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        refine_posterior(model, x, lr=-1.0)
    mean, logvar = refine_posterior(model, x, steps=2)
    with pytest.raises(ValueError, match=r"posterior must be \(mean, logvar\), of shapes \[5, 2\] and \[5, 2\]"):
        elbo(model, x, posterior=(mean[:3], logvar[:3]))


def test_log_likelihood_estimate_batches_consistently(small_vae):
    model, x = small_vae
    torch.manual_seed(0)
    a = log_likelihood_estimate(model, x, n_samples=2000, batch_size=2)
    torch.manual_seed(1)
    b = log_likelihood_estimate(model, x, n_samples=2000, batch_size=5)
    assert a.shape == (5,)
    torch.testing.assert_close(a, b, atol=0.05, rtol=0)


def test_bits_per_dim():
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    assert bits_per_dim(64 * math.log(17), 64) == pytest.approx(math.log2(17))
    with pytest.raises(ValueError, match="n_dims"):
        bits_per_dim(1.0, 0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_beta_is_rejected(bad, small_vae):
    model, x = small_vae
    with pytest.raises(ValueError, match="beta"):
        elbo(model, x, beta=bad)


def test_bad_sample_count_is_rejected(small_vae):
    model, x = small_vae
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        iwae_bound(model, x, n_samples=0)


def test_functions_name_the_model_they_need(small_vae):
    _, x = small_vae
    ae = Autoencoder(x.shape[1], [8], 2)
    for call in (lambda: iwae_bound(ae, x), lambda: log_likelihood_estimate(ae, x), lambda: refine_posterior(ae, x)):
        with pytest.raises(TypeError, match="model must be a vae.VAE, got Autoencoder"):
            call()
    with pytest.raises(TypeError, match="model must be a vae.VAE, got Linear"):
        elbo(torch.nn.Linear(2, 2), x)


def test_the_loss_written_by_hand_from_the_models_pieces_equals_elbo():
    """Chapter 5 writes the loss from encode, reparameterize and likelihood; it must be vae.elbo."""
    torch.manual_seed(0)
    model = VAE(64, [32, 16], 2, likelihood="categorical")
    x = torch.randint(0, 17, (64, 64), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar)
    by_hand = model.likelihood(z).log_prob(x) - gaussian_kl(mean, logvar)
    torch.manual_seed(2)
    library = elbo(model, x).elbo
    torch.testing.assert_close(by_hand, library, rtol=0, atol=1e-5)
    assert by_hand.shape == (64,) and (by_hand < 0).all()
