"""Flow posteriors: each step's maths (log-determinant, inverse), the density they give, and FlowVAE."""

import copy
import resource
import sys

import pytest
import torch

import vae
from vae import VAE, FlowVAE
from vae.flows import FLOWS, IAFStep, PlanarFlow, RadialFlow, make_flow
from vae.objectives import elbo, iwae_bound, log_likelihood_estimate, refine_posterior
from vae.priors import diagonal_gaussian

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
STEPS = {"planar": PlanarFlow, "radial": RadialFlow, "iaf": lambda latent, context: IAFStep(latent, context, 16)}
PRIORS = [dict(prior="standard"), dict(prior="mixture", n_components=3), dict(prior="vamp", n_components=4)]


@pytest.fixture(scope="module")
def digits():
    return vae.load_digits()


def new_flow_vae(flow="planar", flow_length=3, latent_dim=2, **kw) -> FlowVAE:
    torch.manual_seed(0)
    return FlowVAE(64, [16], latent_dim, likelihood="categorical", flow=flow, flow_length=flow_length, **kw)


def step_in_float64(name: str, latent_dim: int, context_dim: int = 5):
    """A step with random weights, in double precision, and a context that makes it far from the identity."""
    torch.manual_seed(1)
    step = STEPS[name](latent_dim, context_dim).double()
    return step, 1.5 * torch.randn(context_dim, dtype=torch.float64)


@pytest.mark.parametrize("latent_dim", [2, 3])
@pytest.mark.parametrize("name", FLOWS)
def test_each_steps_log_determinant_is_that_of_its_jacobian(name, latent_dim):
    step, context = step_in_float64(name, latent_dim)
    for z in torch.randn(6, latent_dim, dtype=torch.float64):
        jacobian = torch.autograd.functional.jacobian(lambda v: step(v, context)[0], z)
        sign, log_abs_det = torch.linalg.slogdet(jacobian)
        assert sign != 0
        torch.testing.assert_close(step(z, context)[1], log_abs_det, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", FLOWS)
def test_a_whole_flows_log_determinant_is_that_of_its_jacobian(name):
    torch.manual_seed(2)
    flow, context = make_flow(name, 4, 3, 5).double(), torch.randn(5, dtype=torch.float64)
    z = torch.randn(3, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: flow(v, context)[0], z)
    torch.testing.assert_close(flow(z, context)[1], torch.linalg.slogdet(jacobian)[1], atol=1e-6, rtol=0)


def test_iaf_is_autoregressive_so_its_jacobian_is_triangular():
    step, context = step_in_float64("iaf", 4)
    z = torch.randn(4, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: step(v, context)[0].flip(-1), z)  # undo the reversal
    assert torch.equal(jacobian.triu(1), torch.zeros(4, 4, dtype=torch.float64))
    assert (jacobian.diagonal() > 0).all() and (jacobian.diagonal() < 1).all()  # σ = sigmoid(s)


@pytest.mark.parametrize("name", FLOWS)
def test_inverse_undoes_forward(name):
    step, _ = step_in_float64(name, 3)
    contexts = 1.5 * torch.randn(200, 5, dtype=torch.float64)
    z = 2 * torch.randn(200, 3, dtype=torch.float64)
    torch.testing.assert_close(step.inverse(step(z, contexts)[0], contexts), z, atol=1e-9, rtol=0)
    # with a sample axis: z [B, S, L] and the context [B, 1, H]
    draws = torch.randn(200, 7, 3, dtype=torch.float64)
    y = step(draws, contexts.unsqueeze(1))[0]
    torch.testing.assert_close(step.inverse(y, contexts.unsqueeze(1)), draws, atol=1e-9, rtol=0)


def test_planar_and_radial_parameters_keep_each_step_invertible():
    torch.manual_seed(3)
    contexts = 4 * torch.randn(1000, 5)  # large contexts: wᵀu reaches −20, where softplus(wᵀu) is lost next to 1
    u_hat, w, _, lift = PlanarFlow(3, 5).amortised(contexts)
    assert (lift > 0).all()  # = 1 + wᵀû > 0 (Rezende and Mohamed, appendix A.1)
    assert lift.min() < 1e-7
    torch.testing.assert_close((w * u_hat).sum(-1), lift - 1, atol=1e-4, rtol=0)
    u_hat, w, _, lift = PlanarFlow(3, 5).double().amortised(contexts.double())
    torch.testing.assert_close((w * u_hat).sum(-1), lift - 1, atol=1e-12, rtol=0)
    assert PlanarFlow(3, 5)(torch.randn(1000, 3), contexts)[1].isfinite().all()
    _, alpha, beta = RadialFlow(3, 5).amortised(contexts)
    assert (alpha > 0).all() and (beta >= -alpha).all()  # (appendix A.2)


@pytest.mark.parametrize("name", FLOWS)
def test_a_flow_of_length_zero_is_the_identity(name):
    flow = make_flow(name, 0, 2, 5)
    z = torch.randn(4, 2)
    out, log_det = flow(z, torch.randn(4, 5))
    assert out is z and torch.equal(log_det, torch.zeros(4))


@pytest.mark.parametrize("name", FLOWS)
def test_the_flow_posteriors_density_integrates_to_one(name, digits):
    """q_K(z|x) for one digit, on a 400 × 400 grid over a box that holds its draws."""
    model = new_flow_vae(name, flow_length=4)
    q = model.posterior(digits.test.levels[:1])
    with torch.no_grad():
        draws = q.sample((100_000,))[:, 0]
        lo, hi = draws.min(0).values - 1, draws.max(0).values + 1
        edges = [torch.linspace(a, b, 401) for a, b in zip(lo.tolist(), hi.tolist())]
        centres = [(e[1:] + e[:-1]) / 2 for e in edges]
        grid = torch.stack(torch.meshgrid(*centres, indexing="ij"), -1).reshape(-1, 1, 2)
        log_q = q.log_prob(grid)
        cell = (edges[0][1] - edges[0][0]) * (edges[1][1] - edges[1][0])
        assert (log_q.exp().sum() * cell).item() == pytest.approx(1.0, abs=1e-3)
        base = diagonal_gaussian(*model.encode(digits.test.levels[:1])[:2])
        assert (log_q - base.log_prob(grid)).abs().max() > 0.5  # the flow does reshape q


@pytest.mark.parametrize("name", FLOWS)
def test_log_prob_of_its_own_samples_reads_the_cache_and_matches_the_inverse(name, digits, monkeypatch):
    model = new_flow_vae(name)
    q = model.posterior(digits.test.levels[:8])
    z = q.rsample((5,))
    calls = []
    for step in model.flow.steps:
        monkeypatch.setattr(step, "inverse", lambda y, c, _inverse=step.inverse: calls.append(1) or _inverse(y, c))
    cached = q.log_prob(z)
    assert calls == []  # its own samples: nothing to invert
    through_inverse = q.log_prob(z.clone())
    assert len(calls) == 3
    torch.testing.assert_close(through_inverse, cached, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", FLOWS)
def test_the_elbos_kl_reads_the_draws_back_and_agrees_with_the_inverse(name, digits):
    model = new_flow_vae(name)
    mean, logvar, context = model.encode(digits.test.levels[:8])
    z = model.reparameterize(mean, logvar, context, 4)
    cached = model.kl(mean, logvar, context, z)
    torch.testing.assert_close(model.kl(mean, logvar, context, z.clone()), cached, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kwargs", PRIORS)
def test_the_flow_kl_estimates_log_q_minus_log_p(kwargs, digits):
    """Averaged over many draws, the ELBO's KL is E[log q_K(z|x) − log p(z)], computed another way."""
    model = new_flow_vae("iaf", **kwargs)
    x = digits.test.levels[:4]
    torch.manual_seed(0)
    with torch.no_grad():
        mean, logvar, context = model.encode(x)
        kl = model.kl(mean, logvar, context, model.reparameterize(mean, logvar, context, 20_000))
        q = model.posterior(x)
        z = q.sample((20_000,))
        direct = (q.log_prob(z) - model.prior().log_prob(z)).mean(0)
    torch.testing.assert_close(kl, direct, atol=0.05, rtol=0)


@pytest.mark.parametrize("kwargs", PRIORS)
def test_a_flow_of_length_zero_gives_exactly_the_gaussian_vaes_numbers(kwargs, digits):
    x = digits.test.levels[:10]
    torch.manual_seed(0)
    gaussian = VAE(64, [16], 2, likelihood="categorical", **kwargs)
    flow = new_flow_vae("planar", flow_length=0, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(gaussian.state_dict().values(), flow.state_dict().values()))
    for n_samples in (1, 3):
        torch.manual_seed(5)
        expected = elbo(gaussian, x, n_samples=n_samples)
        torch.manual_seed(5)
        got = elbo(flow, x, n_samples=n_samples)
        assert all(torch.equal(a, b) for a, b in zip(expected, got))
    torch.manual_seed(6)
    expected = iwae_bound(gaussian, x, 7)
    torch.manual_seed(6)
    torch.testing.assert_close(iwae_bound(flow, x, 7), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs", PRIORS)
@pytest.mark.parametrize("name", FLOWS)
def test_a_trained_flow_vae_has_ordered_bounds(name, kwargs, digits):
    """ELBO ≤ IWAE(5) ≤ IWAE(100) on average, and refining q per digit raises its ELBO."""
    model = new_flow_vae(name, **kwargs)
    history = vae.fit(model, digits.train.levels[:500], epochs=8, progress=False, device="cpu")
    assert history["train_elbo"][-1] > history["train_elbo"][0] + 5
    x = digits.test.levels[:100]
    torch.manual_seed(0)
    with torch.no_grad():
        bound = elbo(model, x, n_samples=200).elbo.mean()
        iwae_5, iwae_100 = iwae_bound(model, x, 5).mean(), iwae_bound(model, x, 100).mean()
    assert bound < iwae_5 < iwae_100
    torch.manual_seed(1)
    estimate = log_likelihood_estimate(model, x, n_samples=100, batch_size=100)
    torch.manual_seed(1)
    assert torch.equal(estimate, iwae_bound(model, x, 100))  # one batch: the same draws
    refined = refine_posterior(model, x[:20], steps=30)
    assert [list(t.shape) for t in refined] == [[20, 2], [20, 2], [20, 16]]
    with torch.no_grad():
        before = elbo(model, x[:20], n_samples=500).elbo.mean()
        after = elbo(model, x[:20], n_samples=500, posterior=refined).elbo.mean()
    assert after > before


def test_refining_a_flow_posterior_leaves_the_model_alone(digits):
    model = new_flow_vae("radial", flow_length=0)  # a flow of length 0 leaves its context unused
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    mean, _, context = refine_posterior(model, digits.test.levels[:5], steps=3)
    encoded = model.encode(digits.test.levels[:5])
    assert not torch.equal(mean, encoded[0])
    assert torch.equal(context, encoded[2])  # nothing moves it
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", FLOWS)
def test_save_and_load_round_trip(name, tmp_path, digits):
    model = new_flow_vae(name, prior="mixture", n_components=2)
    loaded = vae.load(vae.save(model, tmp_path / "flow.pt"))
    assert type(loaded) is FlowVAE and loaded.config == model.config
    assert loaded.config["flow"] == name and loaded.config["flow_length"] == 3
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    x = digits.test.levels[:6]
    outputs = []
    for m in (model.eval(), loaded):
        torch.manual_seed(3)
        outputs.append((*elbo(m, x, n_samples=2), iwae_bound(m, x, 4)))
    assert all(torch.equal(a, b) for a, b in zip(*outputs))


def peak_memory_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def rewrite_config(path, **changes):
    payload = torch.load(path, weights_only=True)
    payload["config"] = {**payload["config"], **changes}
    torch.save(payload, path)


@pytest.mark.parametrize("changes", [{"hidden_dims": [10**9]}, {"latent_dim": 10**8}])
def test_an_absurd_flow_config_is_refused_before_allocating(tmp_path, changes):
    path = vae.save(FlowVAE(16, [8], 2, flow="iaf", flow_length=2), tmp_path / "flow.pt")
    rewrite_config(path, **changes)
    before = peak_memory_mib()
    with pytest.raises(ValueError, match="weights do not fit the model its config describes"):
        vae.load(path)
    assert peak_memory_mib() - before < 200, "load allocated the model its absurd config describes"


@pytest.mark.parametrize("changes, words", [
    ({"flow_length": 3}, "weights do not fit"),
    ({"flow": "radial"}, "weights do not fit"),
    ({"flow": "spline"}, "invalid config: flow must be one of"),
    ({"flow_length": -1}, "invalid config: flow_length must be an int >= 0"),
    ({"flow_length": 10**9}, "invalid config: flow_length must be at most 1000"),
])
def test_a_flow_config_that_does_not_fit_is_refused_with_its_reason(tmp_path, changes, words):
    path = vae.save(FlowVAE(16, [8], 2, flow="planar", flow_length=2), tmp_path / "flow.pt")
    rewrite_config(path, **changes)
    with pytest.raises(ValueError, match=words):
        vae.load(path)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(flow="spline"), ValueError, r"flow must be one of \('planar', 'radial', 'iaf'\), got 'spline'"),
    (dict(flow_length=-2), ValueError, "flow_length must be an int >= 0, got -2"),
    (dict(flow_length=2.5), TypeError, "flow_length must be an int >= 0"),
    (dict(flow_length=5000), ValueError, "flow_length must be at most 1000"),
])
def test_bad_flow_arguments_get_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        FlowVAE(16, [8], 2, **kwargs)


def test_bad_posterior_parameters_get_a_clear_error(digits):
    model, x = new_flow_vae(), digits.test.levels[:5]
    mean, logvar, context = model.encode(x)
    with pytest.raises(TypeError, match=r"posterior must be \(mean, logvar, context\), a tuple of 3 tensors"):
        elbo(model, x, posterior=(mean, logvar))
    with pytest.raises(ValueError, match=r"of shapes \[5, 2\] and \[5, 2\] and \[5, 16\], got"):
        elbo(model, x, posterior=(mean, logvar, context[:, None].expand(5, 2, 16)))
    with pytest.raises(ValueError, match=r"context must have shape \[\.\.\., 16\] \(context_dim\)"):
        model.reparameterize(mean, logvar, context[:, :3])
    with pytest.raises(ValueError, match="context contains NaN"):
        model.kl(mean, logvar, torch.full_like(context, float("nan")), mean)


def test_a_flow_vae_trains_on_the_iwae_bound(digits):
    model = new_flow_vae("iaf")
    history = vae.fit(model, digits.train.levels[:300], epochs=4, n_samples=5, objective="iwae", progress=False)
    assert history["train_elbo"][-1] > history["train_elbo"][0]
    for e, r, k in zip(history["train_elbo"], history["train_rec"], history["train_kl"]):
        assert e == pytest.approx(r - k, abs=1e-3)


def test_a_copy_of_a_flow_vae_leaves_the_flows_cache_behind(digits):
    model = new_flow_vae("planar")
    elbo(model, digits.test.levels[:3]).elbo.sum()  # the flow now holds tensors of an autograd graph
    twin = copy.deepcopy(model)
    assert twin.flow.last is None
    torch.manual_seed(0)
    expected = elbo(model, digits.test.levels[:3]).elbo
    torch.manual_seed(0)
    assert torch.equal(elbo(twin, digits.test.levels[:3]).elbo, expected)


def test_flow_vaes_live_on_the_models_device():
    """On PyTorch's meta device (shapes, no values): every input from the CPU must be moved."""
    x = torch.randint(0, 17, (5, 64))
    for name in FLOWS:
        for kwargs in PRIORS:
            model = new_flow_vae(name, **kwargs).to("meta")
            assert vae.elbo(model, x, n_samples=2).elbo.device.type == "meta"
            assert iwae_bound(model, x, 3).device.type == "meta"
            assert all(t.device.type == "meta" for t in model.encode(x))
            posterior = (torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(5, 16))  # on the CPU
            z = model.reparameterize(*posterior, 2)
            assert z.shape == (5, 2, 2) and model.kl(*posterior, z).device.type == "meta"
            assert vae.elbo(model, x, posterior=posterior).kl.device.type == "meta"
            assert model.sample(3).device.type == "meta"


@cuda
@pytest.mark.parametrize("name", FLOWS)
def test_a_flow_vae_trains_and_scores_on_cuda(name, digits, tmp_path):
    model = new_flow_vae(name, prior="vamp", n_components=5)
    history = vae.fit(model, digits.train.levels[:300], epochs=3, progress=False, device="cuda")
    assert next(model.parameters()).device.type == "cuda" and len(history["train_elbo"]) == 3
    x = digits.test.levels[:20]  # on the CPU
    assert vae.elbo(model, x, n_samples=3).elbo.device.type == "cuda"
    refined = vae.refine_posterior(model, x, steps=3)
    assert all(t.device.type == "cuda" for t in refined)
    assert vae.elbo(model, x, posterior=[t.cpu() for t in refined]).elbo.isfinite().all()
    assert vae.log_likelihood_estimate(model, x, n_samples=10).device.type == "cuda"
    loaded = vae.load(vae.save(model, tmp_path / "m.pt"), device="cuda")
    torch.manual_seed(0)
    expected = vae.iwae_bound(model, x, 5)
    torch.manual_seed(0)
    assert torch.equal(vae.iwae_bound(loaded, x, 5), expected)
