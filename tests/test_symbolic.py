import math

import numpy as np
import pytest
import sympy as sp
import torch

from vae import symbolic as S
from vae.objectives import gaussian_kl, gaussian_kl_mc


@pytest.fixture(scope="module")
def derivation() -> S.Derivation:
    return S.derive_kl_1d()


def test_the_three_pieces_add_up_to_the_log_density_ratio(derivation):
    log_ratio = sp.log(S.normal_density(S.z, S.mu_p, S.sigma_p)) - sp.log(S.normal_density(S.z, S.mu_q, S.sigma_q))
    assert S.is_zero(log_ratio - derivation.integrand)
    assert S.is_zero(derivation.integrand - sum(piece for piece, _ in derivation.terms.values()))


def test_each_piece_integrates_to_its_known_expectation(derivation):
    terms = {name: value for name, (_, value) in derivation.terms.items()}
    assert S.is_zero(terms["log-ratio of normalisers"] - sp.log(S.sigma_q / S.sigma_p))
    assert terms["p's quadratic"] == -sp.Rational(1, 2)
    assert S.is_zero(terms["q's quadratic"] - (S.sigma_p**2 + (S.mu_p - S.mu_q) ** 2) / (2 * S.sigma_q**2))


def test_1d_derivation_simplifies_to_the_closed_form(derivation):
    assert S.is_zero(derivation.kl - S.kl_1d_closed_form())


def test_1d_kl_vanishes_for_identical_gaussians(derivation):
    assert sp.simplify(derivation.kl.subs({S.mu_q: S.mu_p, S.sigma_q: S.sigma_p})) == 0


def test_a_wrong_closed_form_is_rejected(derivation):
    wrong = S.kl_1d_closed_form() + S.mu_p / 100
    assert not S.is_zero(derivation.kl - wrong)


@pytest.mark.parametrize("d", [1, 2])
def test_multivariate_derivation_simplifies_to_the_closed_form(d):
    g = S.generic_gaussians(d)
    derived = S.derive_kl_mvn(g)
    closed = S.kl_mvn_closed_form(g.mean_p, g.chol_p * g.chol_p.T, g.mean_q, g.chol_q * g.chol_q.T)
    assert S.is_zero(derived - closed)


def test_multivariate_d1_agrees_with_the_1d_derivation(derivation):
    g = S.generic_gaussians(1)
    derived = S.derive_kl_mvn(g).subs(
        {g.mean_p[0]: S.mu_p, g.mean_q[0]: S.mu_q, g.chol_p[0, 0]: S.sigma_p, g.chol_q[0, 0]: S.sigma_q}
    )
    assert S.is_zero(derived - derivation.kl)


@pytest.mark.parametrize("d", [1, 3])
def test_diagonal_case_against_the_standard_normal(d):
    assert S.is_zero(S.kl_diagonal_from_mvn(d) - S.kl_diagonal_closed_form(d))


def test_diagonal_case_is_a_sum_of_1d_kls(derivation):
    mu, sigma = S.diagonal_symbols(3)
    one_d = derivation.kl.subs({S.mu_q: 0, S.sigma_q: 1})
    summed = sum(one_d.subs({S.mu_p: m, S.sigma_p: s}) for m, s in zip(mu, sigma))
    assert S.is_zero(summed - S.kl_diagonal_closed_form(3))


def test_wrong_sign_differs_and_goes_negative():
    right, wrong = S.kl_diagonal_closed_form(1), S.kl_diagonal_closed_form(1, log_sign=+1)
    assert not S.is_zero(right - wrong)
    (mu,), (sigma,) = S.diagonal_symbols(1)
    at = {mu: 0, sigma: 1 / sp.sqrt(2)}  # sigma² = 1/2
    assert float(wrong.subs(at)) == pytest.approx(0.5 * (math.log(0.5) - 0.5))
    assert float(wrong.subs(at)) < 0 < float(right.subs(at))
    assert sp.limit(wrong.subs(mu, 0), sigma, 0, "+") == -sp.oo


def test_bad_log_sign_is_refused():
    with pytest.raises(ValueError, match="log_sign"):
        S.kl_diagonal_closed_form(2, log_sign=0)


def test_lambdified_kl_matches_the_library_and_monte_carlo():
    kl = S.kl_numeric()
    rng = np.random.default_rng(0)
    mean, logvar = rng.normal(size=(20, 4)), rng.normal(scale=0.7, size=(20, 4))
    ours = kl(mean, logvar).sum(-1)
    library = gaussian_kl(torch.tensor(mean), torch.tensor(logvar)).numpy()
    np.testing.assert_allclose(ours, library, rtol=1e-12, atol=1e-12)
    torch.manual_seed(0)
    mc = gaussian_kl_mc(torch.tensor(mean[:5]), torch.tensor(logvar[:5]), n_samples=200_000).numpy()
    np.testing.assert_allclose(mc, ours[:5], atol=0.03, rtol=0.01)


def test_lambdified_known_values():
    kl = S.kl_numeric()
    assert kl(np.array(0.0), np.array(0.0)) == 0.0
    assert kl(np.array(2.0), np.array(0.0)) == pytest.approx(2.0)
    assert kl(np.array(0.0), np.array(2.0)) == pytest.approx(0.5 * (math.e**2 - 3))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_the_expected_quadratic_form_identity_holds_by_integration(d):
    integrated, identity = S.expected_quadratic_form(d)
    assert S.is_zero(integrated - identity)
    # and it is not vacuous: dropping the trace term breaks it
    g = S.generic_gaussians(d)
    offset = g.mean_p - g.mean_q
    q = S.symmetric_symbols("Q", d)
    assert not S.is_zero(integrated - (offset.T * q * offset)[0])


def test_the_diagonal_kl_integrated_directly_is_the_vaes_formula():
    assert S.is_zero(S.kl_diagonal_by_integration(2) - S.kl_diagonal_closed_form(2))
    assert not S.is_zero(S.kl_diagonal_by_integration(2) - S.kl_diagonal_closed_form(2, log_sign=+1))
