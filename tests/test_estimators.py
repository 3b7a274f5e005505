import pytest
import torch

from vae import VAE, load_digits
from vae import estimators as E

TARGET = torch.tensor([1.0, -0.5, 2.0])


def quadratic(z: torch.Tensor) -> torch.Tensor:
    """f(z) = −|z − t|²; under N(m, s²): E f = −|m − t|² − Σ s², so ∇_m = −2(m − t), ∇_{log s} = −2 s²."""
    return -((z - TARGET) ** 2).sum(-1)


MEAN, LOG_STD = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, -0.5, 0.3])
TRUE_MEAN_GRAD = -2 * (MEAN - TARGET)
TRUE_LOG_STD_GRAD = -2 * (2 * LOG_STD).exp()


@pytest.mark.parametrize("estimator", [E.pathwise, E.score_function])
def test_estimators_are_unbiased(estimator):
    n = 200_000
    grads = estimator(quadratic, MEAN, LOG_STD, n, seed=0)
    for g, truth in ((grads.mean, TRUE_MEAN_GRAD), (grads.log_std, TRUE_LOG_STD_GRAD)):
        standard_error = g.std(0) / n**0.5
        assert ((g.mean(0) - truth).abs() < 5 * standard_error).all()


def test_pathwise_variance_is_known_in_closed_form():
    # ∇_m f(m + s·eps) = −2(m + s·eps − t): variance 4 s² in each coordinate
    grads = E.pathwise(quadratic, MEAN, LOG_STD, 100_000, seed=1)
    torch.testing.assert_close(grads.mean.var(0), 4 * (2 * LOG_STD).exp(), rtol=0.03, atol=0)


def test_reparameterised_variance_is_far_lower_than_score_function():
    pw = E.pathwise(quadratic, MEAN, LOG_STD, 50_000, seed=2)
    sf = E.score_function(quadratic, MEAN, LOG_STD, 50_000, seed=2)
    sf_baseline = E.score_function(quadratic, MEAN, LOG_STD, 50_000, seed=2, baseline=-10.0)
    for g in ("mean", "log_std"):
        assert (5 * getattr(pw, g).var(0) < getattr(sf, g).var(0)).all()  # measured: 10 to 130 times
        assert (2 * getattr(pw, g).var(0) < getattr(sf_baseline, g).var(0)).all()  # measured: 3 to 60 times


def test_same_seed_same_samples():
    a = E.score_function(quadratic, MEAN, LOG_STD, 10, seed=3)
    b = E.score_function(quadratic, MEAN, LOG_STD, 10, seed=3)
    assert torch.equal(a.mean, b.mean) and a.mean.shape == (10, 3)


def test_on_a_vae_decoder_pathwise_wins_too():
    torch.manual_seed(0)
    model = VAE(64, [32], latent_dim=2, likelihood="categorical")
    x = load_digits().test.levels[:1]
    with torch.no_grad():
        mean, logvar = model.encode(x)

    def log_lik(z):
        return model.likelihood(z).log_prob(x)

    pw = E.pathwise(log_lik, mean[0], 0.5 * logvar[0], 5000, seed=0)
    sf = E.score_function(log_lik, mean[0], 0.5 * logvar[0], 5000, seed=0)
    assert (100 * pw.mean.var(0) < sf.mean.var(0)).all()  # measured: about 10^4 times


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="same length"):
        E.pathwise(quadratic, MEAN, LOG_STD[:2], 10)
    with pytest.raises(TypeError, match="n_samples"):
        E.score_function(quadratic, MEAN, LOG_STD, 2.5)
