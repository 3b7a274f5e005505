"""EM for Gaussian mixtures: known answers, the ELBO identity, monotonicity, and clear errors."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from vae import em

THREE = em.Mixture(
    weights=[0.5, 0.3, 0.2],
    means=[[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]],
    covs=[[[0.6, 0.3], [0.3, 0.4]], [[0.3, -0.2], [-0.2, 0.8]], [[0.5, 0.0], [0.0, 0.2]]],
)


def one_d(weights, means, variances) -> em.Mixture:
    return em.Mixture(np.array(weights), np.array(means)[:, None], np.array(variances)[:, None, None])


# ------------------------------------------------------------------ known answers


def test_standard_normal_at_zero():
    value = em.log_density(np.zeros((1, 1)), one_d([1.0], [0.0], [1.0]))
    assert value == pytest.approx([-0.5 * math.log(2 * math.pi)], rel=1e-12)


def test_log_density_matches_scipy_in_1d():
    mix = one_d([0.3, 0.7], [-1.0, 2.0], [0.25, 2.25])
    x = np.array([[-1.0], [0.5], [3.0]])
    expected = np.log(0.3 * norm.pdf(x[:, 0], -1, 0.5) + 0.7 * norm.pdf(x[:, 0], 2, 1.5))
    np.testing.assert_allclose(em.log_density(x, mix), expected, rtol=1e-12)


def test_far_point_stays_finite():
    value = em.log_density(np.array([[1000.0]]), one_d([0.5, 0.5], [0.0, 0.0], [1.0, 1.0]))
    assert value == pytest.approx([-0.5 * 1000.0**2 - 0.5 * math.log(2 * math.pi)], rel=1e-9)


def test_responsibilities_hand_made():
    # unit-variance components at -1 and 1, equal weights: the nearer one gets 1 / (1 + e^-2)
    r = em.e_step(np.array([[-1.0], [1.0]]), one_d([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0]))
    near = 1 / (1 + math.exp(-2))
    np.testing.assert_allclose(r, [[near, 1 - near], [1 - near, near]], rtol=1e-12)


def test_responsibilities_equal_the_weights_halfway():
    r = em.e_step(np.array([[0.0]]), one_d([0.9, 0.1], [-2.0, 2.0], [1.0, 1.0]))
    np.testing.assert_allclose(r, [[0.9, 0.1]], rtol=1e-12)


def test_m_step_hard_assignments():
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    r = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    mix = em.m_step(x, r)
    np.testing.assert_allclose(mix.weights, [0.5, 0.5])
    np.testing.assert_allclose(mix.means[:, 0], [1.0, 11.0])
    np.testing.assert_allclose(mix.covs[:, 0, 0], [1.0, 1.0])  # divided by N_k, not N_k - 1


def test_m_step_even_sharing_gives_the_sample_moments():
    x = np.random.default_rng(1).normal(size=(50, 2)) @ np.array([[1.0, 0.5], [0.0, 2.0]])
    mix = em.m_step(x, np.full((50, 2), 0.5))
    np.testing.assert_allclose(mix.means, [x.mean(0)] * 2)
    np.testing.assert_allclose(mix.covs, [np.cov(x.T, bias=True)] * 2)


def test_m_step_on_the_true_posterior_of_a_large_sample_recovers_the_mixture():
    x, _ = em.sample(THREE, 20000, seed=3)
    fit = em.m_step(x, em.e_step(x, THREE))
    np.testing.assert_allclose(fit.weights, THREE.weights, atol=0.01)
    np.testing.assert_allclose(fit.means, THREE.means, atol=0.03)
    np.testing.assert_allclose(fit.covs, THREE.covs, atol=0.03)


def test_sample_frequencies_and_moments():
    x, z = em.sample(THREE, 30000, seed=0)
    assert x.shape == (30000, 2) and z.shape == (30000,)
    np.testing.assert_allclose(np.bincount(z) / len(z), THREE.weights, atol=0.01)
    for k in range(3):
        np.testing.assert_allclose(x[z == k].mean(0), THREE.means[k], atol=0.03)
        np.testing.assert_allclose(np.cov(x[z == k].T), THREE.covs[k], atol=0.03)


def test_density_integrates_to_one_on_a_grid():
    axis = np.linspace(-7, 7, 281)
    plane = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    total = np.exp(em.log_density(plane, THREE)).sum() * (axis[1] - axis[0]) ** 2
    assert total == pytest.approx(1.0, abs=1e-4)


def test_accepts_torch_tensors():
    x = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(em.log_density(x, THREE), em.log_density(x.numpy(), THREE), rtol=1e-6)


# ------------------------------------------------------------------ the decomposition


def test_elbo_equals_log_density_at_the_posterior_and_kl_is_zero():
    x, _ = em.sample(THREE, 200, seed=2)
    r = em.e_step(x, THREE)
    np.testing.assert_allclose(em.mixture_elbo(x, THREE, r), em.log_density(x, THREE), atol=1e-12)
    np.testing.assert_allclose(em.kl_to_posterior(x, THREE, r), 0.0, atol=1e-12)


def test_zero_responsibilities_count_as_zero():
    # a hard assignment to the component that certainly produced the point: no NaN from 0 log 0
    x = np.array([[-2.0, 0.0]])
    r = np.array([[1.0, 0.0, 0.0]])
    value = em.mixture_elbo(x, THREE, r)
    assert np.isfinite(value).all()
    assert value == pytest.approx(em.log_joint(x, THREE)[:, 0])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4))
def test_log_density_equals_elbo_plus_kl_for_any_q(seed, k):
    rng = np.random.default_rng(seed)
    covs = np.stack([np.eye(2) * rng.uniform(0.2, 2)] * k)
    mix = em.Mixture(rng.dirichlet(np.ones(k)), rng.normal(size=(k, 2)) * 2, covs)
    x = rng.normal(size=(20, 2)) * 3
    r = rng.dirichlet(np.ones(k), size=20)
    elbo, kl = em.mixture_elbo(x, mix, r), em.kl_to_posterior(x, mix, r)
    assert (kl >= -1e-12).all()
    np.testing.assert_allclose(elbo + kl, em.log_density(x, mix), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------ the algorithm


@pytest.fixture(scope="module")
def run():
    x, _ = em.sample(THREE, 500, seed=1)
    return em.run_em(x, em.random_init(x, 3, seed=0), n_iter=40)


def test_log_likelihood_never_decreases(run):
    assert len(run.log_likelihood) == 41 and len(run.mixtures) == 41
    assert np.diff(run.log_likelihood).min() >= -1e-12


def test_e_step_closes_the_gap(run):
    # after the E-step the KL gap is zero up to float64 rounding, and the ELBO equals the log-likelihood
    assert np.abs(run.gap_after_e).max() < 1e-12
    np.testing.assert_allclose(run.elbo_after_e, run.log_likelihood[:-1], atol=1e-12)


def test_m_step_raises_the_elbo_and_opens_a_gap_that_accounts_for_the_rest(run):
    assert (run.elbo_after_m >= run.elbo_after_e - 1e-12).all()
    assert (run.gap_after_m >= -1e-12).all() and run.gap_after_m[:10].min() > 1e-3
    np.testing.assert_allclose(run.log_likelihood[1:], run.elbo_after_m + run.gap_after_m, atol=1e-12)


def test_em_recovers_the_true_mixture(run):
    fit = run.mixtures[-1]
    order = [int(np.argmin(np.linalg.norm(fit.means - m, axis=1))) for m in THREE.means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(fit.means[order], THREE.means, atol=0.2)
    np.testing.assert_allclose(fit.weights[order], THREE.weights, atol=0.05)


def test_one_component_converges_in_one_step_to_the_sample_moments():
    x = np.random.default_rng(0).normal(size=(100, 2))
    r = em.run_em(x, em.Mixture([1.0], [[5.0, 5.0]], [np.eye(2)]), n_iter=2)
    np.testing.assert_allclose(r.mixtures[1].means[0], x.mean(0))
    np.testing.assert_allclose(r.mixtures[1].covs[0], np.cov(x.T, bias=True))
    assert r.log_likelihood[2] == pytest.approx(r.log_likelihood[1], abs=1e-12)


def test_em_draws_nothing():
    code = "import sys, vae.em; assert 'matplotlib' not in sys.modules, 'vae.em imported matplotlib'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "weights, means, covs, message",
    [
        ([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "sum to 1"),
        ([1.5, -0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "> 0"),
        ([0.5, 0.5], [[0.0], [1.0]], [[[1.0]], [[-1.0]]], "positive definite"),
        ([0.5, 0.5], [[0.0], [np.nan]], [[[1.0]], [[1.0]]], "NaN"),
        ([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [[[1.0]], [[1.0]]], "shapes"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], "symmetric"),
    ],
)
def test_bad_mixtures_are_refused(weights, means, covs, message):
    with pytest.raises(ValueError, match=message):
        em.Mixture(weights, means, covs)


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        em.log_density(np.zeros((5, 3)), THREE)
    with pytest.raises(ValueError, match="NaN"):
        em.e_step(np.array([[0.0, np.nan]]), THREE)
    with pytest.raises(ValueError, match="empty"):
        em.log_density(np.zeros((0, 2)), THREE)
    with pytest.raises(TypeError):
        em.log_density([[0.0, 0.0]], THREE)


def test_bad_responsibilities_are_refused():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="shape"):
        em.mixture_elbo(x, THREE, np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="probability distribution"):
        em.m_step(x, np.full((4, 3), 0.5))
    with pytest.raises(ValueError, match="no responsibility"):
        em.m_step(np.arange(8.0).reshape(4, 2), np.array([[1.0, 0.0]] * 4))


def test_bad_sizes_are_refused():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="n_iter"):
        em.run_em(x, THREE, n_iter=0)
    with pytest.raises(TypeError, match="n"):
        em.sample(THREE, 2.5)
    with pytest.raises(ValueError, match="more than"):
        em.random_init(x, 5)


def test_collapsed_component_gives_a_clear_error():
    # two identical points given wholly to one component: its covariance is singular
    x = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
    r = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="collapsed"):
        em.m_step(x, r)
