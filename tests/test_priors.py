"""Learned priors (mixture, VampPrior) and the conditional VAE, checked against known values."""

import math

import pytest
import torch
from torch.distributions import Normal

import vae
from vae import VAE
from vae.objectives import gaussian_kl, monte_carlo_kl
from vae.priors import MixturePrior, StandardNormal, VampPrior, diagonal_gaussian


def categorical_vae(**kwargs) -> VAE:
    torch.manual_seed(0)
    return build(16, [12], 3, likelihood="categorical", n_levels=5, **kwargs)


def build(*sizes, **kwargs) -> VAE:
    """A VAE, or a ConditionalVAE when ``n_classes`` is given."""
    return (vae.ConditionalVAE if "n_classes" in kwargs else VAE)(*sizes, **kwargs)


def levels(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 5, (n, 16), generator=torch.Generator().manual_seed(seed))


def standard_mixture(model: VAE) -> VAE:
    """``model``'s weights with a one-component mixture prior at mean 0 and variance 1."""
    mixture = VAE(16, [12], 3, likelihood="categorical", n_levels=5, prior="mixture", n_components=1)
    mixture.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        mixture.latent_prior.mean.zero_()
        mixture.latent_prior.logvar.zero_()
    return mixture


def test_one_component_mixture_at_the_origin_is_the_standard_prior():
    z = torch.randn(50, 3)
    standard = StandardNormal(3)()
    mixture = MixturePrior(1, 3)
    with torch.no_grad():
        mixture.mean.zero_()
        mixture.logvar.zero_()
    torch.testing.assert_close(mixture().log_prob(z), standard.log_prob(z))
    torch.testing.assert_close(standard.log_prob(torch.zeros(3)), torch.tensor(-1.5 * math.log(2 * math.pi)))


def test_a_one_component_mixture_gives_the_standard_models_bounds():
    model = categorical_vae()
    mixture = standard_mixture(model)
    x = levels()
    torch.manual_seed(2)
    iwae_standard = vae.iwae_bound(model, x, n_samples=20)
    torch.manual_seed(2)
    iwae_mixture = vae.iwae_bound(mixture, x, n_samples=20)
    torch.testing.assert_close(iwae_mixture, iwae_standard)  # same draws, same prior density
    torch.manual_seed(3)
    exact = vae.elbo(model, x, n_samples=4000)
    torch.manual_seed(3)
    estimated = vae.elbo(mixture, x, n_samples=4000)
    torch.testing.assert_close(estimated.rec, exact.rec)  # same draws of z
    # The KL is now a Monte Carlo average over 4000 draws: agree within 5 standard errors.
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar, 4000)
    q = Normal(mean.unsqueeze(1), (0.5 * logvar).exp().unsqueeze(1))
    terms = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)
    error = terms.std(1) / math.sqrt(4000)
    assert ((estimated.kl - exact.kl).abs() < 5 * error + 1e-4).all()


def test_monte_carlo_kl_matches_the_closed_form_for_the_standard_prior():
    torch.manual_seed(0)
    model = categorical_vae()
    mean = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.3, 0.1, -1.0]])
    logvar = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.5, 0.0], [-3.0, -2.0, 1.0]])
    n = 20_000
    z = model.reparameterize(mean, logvar, n)
    estimate = monte_carlo_kl(diagonal_gaussian(mean.unsqueeze(1), logvar.unsqueeze(1)), model.prior(), z)
    torch.testing.assert_close(estimate, MixturePrior.kl(model.latent_prior, mean, logvar, z))  # the prior's own
    exact = gaussian_kl(mean, logvar)
    q = Normal(mean.unsqueeze(1), (0.5 * logvar).exp().unsqueeze(1))
    spread = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).std(1)
    assert exact[0] == 0 and estimate[0].abs() < 1e-6  # q = p: every draw contributes exactly 0
    assert ((estimate - exact).abs() <= 4 * spread / math.sqrt(n) + 1e-6).all()
    assert exact[2] > 1  # a case far from the prior, so the check is not trivial


def test_mixture_density_is_the_weighted_sum_of_its_gaussians():
    prior = MixturePrior(2, 2)
    with torch.no_grad():
        prior.logits.copy_(torch.log(torch.tensor([0.25, 0.75])))
        prior.mean.copy_(torch.tensor([[-1.0, 0.0], [2.0, 1.0]]))
        prior.logvar.copy_(torch.log(torch.tensor([[1.0, 4.0], [0.25, 1.0]])))
    z = torch.tensor([[0.0, 0.0], [2.0, 1.0]])
    a = Normal(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 2.0])).log_prob(z).sum(-1).exp()
    b = Normal(torch.tensor([2.0, 1.0]), torch.tensor([0.5, 1.0])).log_prob(z).sum(-1).exp()
    torch.testing.assert_close(prior().log_prob(z).exp(), 0.25 * a + 0.75 * b)


def test_vamp_prior_is_the_mixture_of_the_encoders_posteriors_at_the_pseudo_inputs():
    model = categorical_vae(prior="vamp", n_components=4)
    u = model.latent_prior.pseudo_inputs
    assert u.shape == (4, 16) and ((u >= 0) & (u <= 1)).all()
    z = torch.randn(7, 3)
    with torch.no_grad():
        h = model.encoder(u)
        mean, std = model.to_mean(h), (0.5 * model.to_logvar(h)).exp()
        by_hand = Normal(mean, std).log_prob(z.unsqueeze(1)).sum(-1).logsumexp(1) - math.log(4)
        torch.testing.assert_close(model.prior().log_prob(z), by_hand)
    # The pseudo-inputs are what the network sees: the encoder's map on scaled inputs.
    torch.testing.assert_close(model.encode_scaled(u.detach())[0], mean)
    x = torch.randint(0, 5, (3, 16))
    torch.testing.assert_close(model.encode(x)[0], model.encode_scaled(x / 4)[0])


def test_learned_priors_train_with_the_model():
    digits = vae.load_digits()
    for prior in ("mixture", "vamp"):
        torch.manual_seed(0)
        model = VAE(64, [32], 2, likelihood="categorical", prior=prior, n_components=3)
        before = [p.detach().clone() for p in model.latent_prior.parameters()]
        history = vae.fit(model, digits.train.levels[:200], epochs=3, progress=False, device="cpu")
        after = list(model.latent_prior.parameters())
        assert all(not torch.equal(a, b) for a, b in zip(before, after))
        assert history["train_elbo"][-1] > history["train_elbo"][0]
        assert model.sample(5).shape == (5, 64)
        assert vae.log_likelihood_estimate(model, digits.test.levels[:4], n_samples=10).shape == (4,)


def test_samples_come_from_the_learned_prior():
    model = categorical_vae(prior="mixture", n_components=1)
    with torch.no_grad():
        model.latent_prior.mean.fill_(3.0)
        model.latent_prior.logvar.fill_(math.log(0.01))
    torch.manual_seed(0)
    z = model.prior().sample((2000,))
    torch.testing.assert_close(z.mean(0), torch.full((3,), 3.0), atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0), torch.full((3,), 0.1), atol=0.01, rtol=0)


@pytest.mark.parametrize("kwargs", [dict(prior="mixture", n_components=3), dict(prior="vamp", n_components=2),
                                    dict(n_classes=4), dict(n_classes=3, prior="mixture", n_components=2)])
def test_save_and_load_round_trip_priors_and_labels(tmp_path, kwargs):
    model = categorical_vae(**kwargs)
    for p in model.latent_prior.parameters():
        torch.nn.init.normal_(p)  # not the initial values, so loading must restore them
    path = vae.save(model, tmp_path / "m.pt")
    loaded = vae.load(path)
    assert loaded.config == model.config and loaded.config.get("n_classes", 0) == kwargs.get("n_classes", 0)
    x = levels()
    y = torch.arange(6) % kwargs["n_classes"] if "n_classes" in kwargs else None
    torch.manual_seed(4)
    expected = vae.iwae_bound(model.eval(), x, 5, y=y)
    torch.manual_seed(4)
    torch.testing.assert_close(vae.iwae_bound(loaded, x, 5, y=y), expected)


def conditional_twin(model: VAE, n_classes: int = 3) -> VAE:
    """A conditional model whose weights ignore the label: it must behave exactly like ``model``."""
    twin = categorical_vae(n_classes=n_classes)
    state = model.state_dict()
    for name, value in twin.state_dict().items():
        if name in ("encoder.0.weight", "decoder.0.weight"):  # the first layers see the labels last
            value.zero_()
            value[:, : state[name].shape[1]] = state[name]
        else:
            value.copy_(state[name])
    return twin


def test_a_conditional_model_that_ignores_its_label_matches_the_unconditional_one():
    model = categorical_vae()
    twin = conditional_twin(model)
    x, y = levels(), torch.full((6,), 2)
    assert twin.encoder[0].in_features == 16 + 3 and twin.decoder[0].in_features == 3 + 3
    for a, b in zip(model.encode(x), twin.encode(x, y)):
        torch.testing.assert_close(a, b)
    torch.manual_seed(5)
    plain = vae.elbo(model, x, n_samples=3)
    torch.manual_seed(5)
    conditional = vae.elbo(twin, x, n_samples=3, y=y)
    for a, b in zip(plain, conditional):
        torch.testing.assert_close(a, b)
    torch.manual_seed(6)
    out = model.decode(model.reparameterize(*model.encode(x), 2))
    torch.manual_seed(6)
    twin_out = twin.decode(twin.reparameterize(*twin.encode(x, y), 2), y.unsqueeze(1))
    assert out.shape == twin_out.shape == (6, 2, 16)
    torch.testing.assert_close(out, twin_out)
    z = torch.randn(4, 3)
    torch.testing.assert_close(twin.decode(z, 0), model.decode(z))
    torch.testing.assert_close(twin.sample(4, y=1).shape, model.sample(4).shape)
    for k in (1, 7):
        torch.manual_seed(k)
        a = vae.iwae_bound(model, x, k)
        torch.manual_seed(k)
        torch.testing.assert_close(vae.iwae_bound(twin, x, k, y=y), a)


def test_a_conditional_model_uses_its_labels():
    model = categorical_vae(n_classes=3)
    z, x = torch.zeros(2, 3), levels(2)
    assert not torch.allclose(model.decode(z, 0), model.decode(z, 1))
    assert not torch.allclose(model.encode(x, torch.tensor([0, 0]))[0], model.encode(x, torch.tensor([1, 1]))[0])
    same_z = model.decode(torch.zeros(3, 3), torch.arange(3))  # one code under every label
    torch.testing.assert_close(same_z[1], model.decode(torch.zeros(1, 3), 1)[0])


def test_fit_trains_a_conditional_model_on_labelled_data():
    digits = vae.load_digits()
    torch.manual_seed(0)
    model = vae.ConditionalVAE(64, [32], 2, likelihood="categorical", n_classes=10)
    train, y = digits.train.levels[:300], digits.train.y[:300]
    history = vae.fit(model, train, digits.valid.levels[:50], epochs=5, progress=False, device="cpu",
                      y=y, valid_y=digits.valid.y[:50])
    assert history["valid_elbo"][-1] > history["valid_elbo"][0]
    scores = vae.evaluate(model, train, y=y)
    assert scores["elbo"] == pytest.approx(scores["rec"] - scores["kl"])
    refined = vae.refine_posterior(model, train[:5], steps=5, y=y[:5])
    assert refined[0].shape == (5, 2)
    assert vae.objectives.reconstruction_log_likelihood(model, train[:5], refined[0], y=y[:5]).shape == (5,)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, x: vae.elbo(m, x), ValueError, "conditional .*pass the labels y"),
        (lambda m, x: vae.elbo(m, x, y=torch.tensor([0, 1, 3, 0, 0, 0])), ValueError, r"lie in 0\.\.2"),
        (lambda m, x: vae.elbo(m, x, y=torch.tensor([0, 1, -1, 0, 0, 0])), ValueError, r"lie in 0\.\.2"),
        (lambda m, x: vae.elbo(m, x, y=torch.zeros(6)), TypeError, "integers"),
        (lambda m, x: vae.elbo(m, x, y=torch.zeros(5, dtype=torch.long)), ValueError, "do not match"),
        (lambda m, x: m.sample(3), ValueError, "pass the labels"),
        (lambda m, x: m.sample(3, y=[0, 1]), ValueError, "do not match"),
        (lambda m, x: vae.fit(m, x, epochs=1, progress=False), ValueError, "pass the labels"),
        (lambda m, x: vae.iwae_bound(m, x, 3), ValueError, "pass the labels"),
        (lambda m, x: vae.log_likelihood_estimate(m, x, 3, y=torch.full((6,), 5)), ValueError, "lie in"),
    ],
)
def test_conditional_models_reject_missing_or_bad_labels(call, error, message):
    with pytest.raises(error, match=message):
        call(categorical_vae(n_classes=3), levels())


def test_unconditional_models_reject_labels():
    model = categorical_vae()
    with pytest.raises(ValueError, match="unconditional"):
        vae.elbo(model, levels(), y=torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, y=1)
    with pytest.raises(ValueError, match="pass valid"):
        vae.fit(model, levels(), epochs=1, progress=False, valid_y=torch.zeros(6, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(prior="vampire"), ValueError, "prior must be one of"),
        (dict(prior="mixture", n_components=0), ValueError, "n_components must be a positive int"),
        (dict(prior="vamp", n_components=2.5), TypeError, "n_components must be a positive int"),
        (dict(n_components=3), ValueError, "standard prior has one component"),
        (dict(n_classes=1), ValueError, "n_classes >= 2"),
        (dict(n_classes=-2), ValueError, "n_classes must be a positive int"),
        (dict(prior="vamp", n_components=3, n_classes=10), ValueError, "VampPrior"),
    ],
)
def test_bad_priors_and_class_counts_get_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        build(16, [12], 3, likelihood="categorical", n_levels=5, **kwargs)


def test_vamp_prior_module_needs_an_encoder():
    mean, logvar = torch.zeros(3, 2), torch.zeros(3, 2)
    prior = VampPrior(3, 16, lambda u: (mean, logvar))
    density = prior().log_prob(torch.zeros(2))
    torch.testing.assert_close(density, torch.tensor(-math.log(2 * math.pi)))


def test_marginal_kl_to_a_prior_that_is_the_aggregate_posterior_is_zero():
    from vae import diagnostics
    from vae.priors import gaussian_mixture

    mean = torch.tensor([[-2.0, 0.0], [2.0, 0.5]])
    logvar = torch.tensor([[0.0, -1.0], [0.5, 0.0]])
    prior = gaussian_mixture(torch.zeros(2), mean, logvar)
    assert diagnostics.marginal_kl(mean, logvar, n_samples=500, prior=prior) == pytest.approx(0.0, abs=1e-5)
    assert diagnostics.marginal_kl(mean, logvar, n_samples=500) > 0.5  # N(0, I) is far from it


def test_conditional_and_prior_figures():
    import matplotlib.pyplot as plt

    from vae import plots

    model = categorical_vae(n_classes=3)
    fig = plots.samples_per_class(model, (4, 4), n=5)
    assert len(fig.axes) == 3 and fig.axes[0].images[0].get_array().shape == (4, 5 * 5 - 1)
    fig = plots.same_code_every_label(model, torch.zeros(2, 3), (4, 4))
    assert len(fig.axes) == 2 and fig.axes[0].images[0].get_array().shape == (4, 3 * 5 - 1)
    with pytest.raises(ValueError, match="conditional"):
        plots.samples_per_class(categorical_vae(), (4, 4))
    with pytest.raises(ValueError, match=r"z must be \[M, 3\]"):
        plots.same_code_every_label(model, torch.zeros(2, 2), (4, 4))
    torch.manual_seed(0)
    two_d = {name: VAE(16, [8], 2, likelihood="categorical", n_levels=5, prior=name, n_components=k)
             for name, k in (("standard", 1), ("mixture", 3))}
    fig = plots.aggregate_vs_prior(two_d, levels(), n=11)
    assert len(fig.axes) == 4 and fig.axes[0].images[0].get_array().shape == (11, 11)
    with pytest.raises(ValueError, match="2-D codes"):
        plots.aggregate_vs_prior({"3-D": model}, levels())
    plt.close("all")
