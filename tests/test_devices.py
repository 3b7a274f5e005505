"""The device contract: a model lives on one device and every public function moves its inputs there.

Without a GPU the contract is checked on PyTorch's ``meta`` device, which has shapes but no values:
an operation that mixes a meta tensor with a CPU tensor raises, so any input the library forgets to
move shows up here as an error. The tests marked ``cuda`` repeat the story on a real GPU when one
is present.
"""

import pytest
import torch

import vae
from vae import VAE, Autoencoder, diagnostics, estimators, latent, plots, tractable
from vae.interface import classroom_output
from vae.objectives import iwae_bound, reconstruction, reconstruction_log_likelihood

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def on_meta(model):
    """The model's weights moved to the meta device (shapes only)."""
    return model.to("meta")


def test_model_methods_move_cpu_inputs_to_the_models_device():
    torch.manual_seed(0)
    model = on_meta(VAE(16, [8], 2, likelihood="bernoulli"))
    x = torch.rand(5, 16)
    z = torch.randn(5, 2)
    mean, logvar = model.encode(x)
    assert mean.device.type == "meta"
    assert model.decode(z).device.type == "meta"
    assert model.likelihood(z).log_prob(x.to("meta")).device.type == "meta"
    assert model.reparameterize(torch.zeros(5, 2), torch.zeros(5, 2), 3).shape == (5, 3, 2)
    assert classroom_output(model, x, 2)["imgs"].device.type == "meta"
    assert model.sample(4).device.type == "meta"
    assert vae.elbo(model, x, n_samples=2).elbo.device.type == "meta"
    posterior = (torch.zeros(5, 2), torch.zeros(5, 2))  # on the CPU, the model elsewhere
    assert vae.elbo(model, x, posterior=posterior).elbo.device.type == "meta"
    assert iwae_bound(model, x, n_samples=4).device.type == "meta"
    assert reconstruction_log_likelihood(model, x, z).device.type == "meta"
    ae = on_meta(Autoencoder(16, [8], 2))
    assert ae.encode(x).device.type == "meta" and reconstruction(ae, x).rec.device.type == "meta"


@pytest.mark.parametrize("kwargs", [dict(prior="mixture", n_components=3), dict(prior="vamp", n_components=3),
                                    dict(n_classes=4)])
def test_learned_priors_and_labels_live_with_the_model(kwargs):
    torch.manual_seed(0)
    model = on_meta((vae.ConditionalVAE if "n_classes" in kwargs else VAE)(16, [8], 2, likelihood="bernoulli", **kwargs))
    assert all(p.device.type == "meta" for p in model.latent_prior.parameters())
    x = torch.rand(5, 16)  # data and labels on the CPU, the model elsewhere
    y = torch.tensor([0, 1, 2, 3, 0]) if "n_classes" in kwargs else None
    assert model.prior().sample((3,)).device.type == "meta"
    assert vae.elbo(model, x, n_samples=2, y=y).kl.device.type == "meta"
    assert iwae_bound(model, x, n_samples=4, y=y).device.type == "meta"
    z = model.reparameterize(*model.encode(x, y), 2)
    assert model.decode(z, None if y is None else y.unsqueeze(1)).device.type == "meta"
    assert model.sample(4, y=None if y is None else 1).device.type == "meta"
    assert model.decode(torch.zeros(5, 2), y).device.type == "meta"


def test_diagnostics_estimators_and_grids_follow_the_data():
    mean, logvar = torch.zeros(6, 2, device="meta"), torch.zeros(6, 2, device="meta")
    assert diagnostics.aggregate_log_density(mean, logvar, torch.zeros(3, 2)).device.type == "meta"
    assert diagnostics.kl_per_dimension(mean, logvar).device.type == "meta"
    target = torch.ones(2, device="meta")
    grads = estimators.pathwise(lambda z: -((z - target) ** 2).sum(-1), mean[0], torch.zeros(2), 4, seed=0)
    assert grads.mean.device.type == "meta"
    model = on_meta(VAE(16, [8], 2, likelihood="categorical", n_levels=3))
    levels = torch.randint(0, 3, (4, 16))
    grid = tractable.latent_grid(latent_dim=2, n=5, limit=2.0)
    assert tractable.grid_log_likelihood(model.likelihood, levels, grid).device.type == "meta"


def test_figures_accept_codes_on_the_cpu_for_a_model_elsewhere(monkeypatch):
    # The figures need values, so this runs on the CPU; what matters is that the codes are moved by
    # the model, which the meta tests above check, and that matplotlib receives numpy arrays.
    torch.manual_seed(0)
    model = VAE(16, [8], 2)
    grid = latent.grid_over_codes(torch.randn(50, 2), n=3)
    ax = plots.decoded_grid(model, grid, (4, 4))
    assert ax.images[0].get_array().shape == (4 * 3 + 2, 4 * 3 + 2)


def count_host_syncs(monkeypatch) -> list[str]:
    """Record every call that makes the host wait for a tensor's value."""
    calls: list[str] = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    return calls


@pytest.mark.parametrize("valid", [False, True])
def test_fit_waits_on_the_device_once_per_epoch_not_once_per_batch(monkeypatch, valid):
    digits = vae.load_digits()
    counts = {}
    for batch_size in (10, 200):  # 20 batches an epoch, then 1
        model = VAE(64, [16], 2, likelihood="categorical")
        calls = count_host_syncs(monkeypatch)
        vae.fit(model, digits.train.levels[:200], digits.valid.levels[:50] if valid else None,
                epochs=3, batch_size=batch_size, progress=False, device="cpu")
        counts[batch_size] = len(calls)
        monkeypatch.undo()
    assert counts[10] == counts[200]
    assert counts[10] <= 3 * (4 if valid else 2) + 10  # a few per epoch, plus the checks on the way in


@cuda
def test_a_model_trained_on_cuda_takes_cpu_inputs_everywhere():
    digits = vae.load_digits()
    torch.manual_seed(0)
    model = VAE(64, [32], 2, likelihood="categorical")
    vae.fit(model, digits.train.levels[:300], epochs=2, progress=False, device="cuda")
    assert model.device.type == "cuda"
    x = digits.test.levels[:20]  # on the CPU
    assert model.decode(torch.zeros(3, 2)).device.type == "cuda"
    assert set(vae.evaluate(model, x)) == {"elbo", "rec", "kl"}
    mean, logvar = model.encode(x)
    assert diagnostics.marginal_kl(mean, logvar, n_samples=100) == pytest.approx(
        diagnostics.marginal_kl(mean.cpu(), logvar.cpu(), n_samples=100), abs=1e-3
    )
    holes = diagnostics.in_holes(torch.randn(10, 2), mean)
    assert holes.shape == (10,)
    assert vae.log_likelihood_estimate(model, x, n_samples=10).device.type == "cuda"
    plots.latent_scatter(model, x, digits.test.y[:20])
    plots.aggregate_posterior(model, x, n=11)


@cuda
def test_fit_on_cuda_matches_the_cpu_in_distribution():
    digits = vae.load_digits()
    scores = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = VAE(64, [32], 2, likelihood="categorical")
        vae.fit(model, digits.train.levels, epochs=20, progress=False, device=device)
        scores[device] = vae.evaluate(model, digits.test.levels)["elbo"]
    assert scores["cuda"] == pytest.approx(scores["cpu"], abs=5.0)  # different noise, same training
