import os

import pytest
import torch

import vae
from vae import VAE, Autoencoder, evaluate, fit, load, save


@pytest.fixture(scope="module")
def digits():
    return vae.load_digits()


def new_model(**kw) -> VAE:
    torch.manual_seed(0)
    return VAE(64, [32], 2, likelihood="categorical", **kw)


def test_fit_improves_the_elbo_and_records_history(digits):
    model = new_model()
    history = fit(model, digits.train.levels, digits.valid.levels, epochs=15, progress=False)
    assert set(history) == {"lr", "train_elbo", "train_rec", "train_kl", "valid_elbo", "valid_rec", "valid_kl"}
    assert all(len(v) == 15 for v in history.values())
    # starts near the uniform model, −64 ln 17 ≈ −181.3 nats, and improves by tens of nats
    assert history["lr"] == [1e-3] * 15
    assert history["train_elbo"][0] < -140
    assert history["valid_elbo"][-1] > history["valid_elbo"][0] + 20
    for split in ("train", "valid"):
        for e, r, k in zip(history[f"{split}_elbo"], history[f"{split}_rec"], history[f"{split}_kl"]):
            assert e == pytest.approx(r - k, abs=1e-3)
            assert k >= 0


def test_fit_is_reproducible_with_a_seed(digits):
    a, b = new_model(), new_model()
    ha = fit(a, digits.train.levels[:200], epochs=3, seed=7, progress=False)
    hb = fit(b, digits.train.levels[:200], epochs=3, seed=7, progress=False)
    assert ha == hb
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = new_model()
    hc = fit(c, digits.train.levels[:200], epochs=3, seed=8, progress=False)
    assert hc != ha


def test_fit_leaves_the_global_random_state_alone(digits):
    model = new_model()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, digits.train.levels[:100], epochs=1, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_early_stopping_restores_the_best_weights(digits):
    model = new_model()
    history = fit(
        model, digits.train.levels, digits.valid.levels, epochs=300, lr=1e-2, patience=3, progress=False
    )
    n_epochs = len(history["valid_elbo"])
    best = max(history["valid_elbo"])
    assert n_epochs < 300
    assert history["valid_elbo"].index(best) == n_epochs - 4  # stopped 3 epochs after the best
    torch.manual_seed(0)
    assert vae.evaluate(model, digits.valid.levels)["elbo"] == pytest.approx(best, abs=0.5)


def test_beta_zero_ignores_the_kl(digits):
    model = new_model()
    history = fit(model, digits.train.levels[:300], epochs=5, beta=0.0, progress=False)
    for e, r in zip(history["train_elbo"], history["train_rec"]):
        assert e == pytest.approx(r, abs=1e-3)


def test_fit_trains_an_autoencoder(digits):
    torch.manual_seed(0)
    model = Autoencoder(64, [32], 2, likelihood="categorical")
    history = fit(model, digits.train.levels, epochs=10, progress=False)
    assert history["train_kl"] == [0.0] * 10
    assert history["train_rec"][-1] > history["train_rec"][0] + 20


def test_nan_loss_stops_with_the_epoch_and_a_hint(digits):
    model = VAE(64, [32], 2, likelihood="gaussian")
    with torch.no_grad():
        model.to_logvar.bias.fill_(1e4)  # exp(logvar) overflows: the KL is inf
    with pytest.raises(FloatingPointError, match=r"epoch 1.*learning rate"):
        fit(model, digits.train.x, epochs=2, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(epochs=0), ValueError, "epochs"),
        (dict(batch_size=-1), ValueError, "batch_size"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr="fast"), TypeError, "lr"),
        (dict(patience=5), ValueError, "valid"),
        (dict(beta=-1.0), ValueError, "beta"),
    ],
)
def test_bad_arguments_get_a_clear_error(digits, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(new_model(), digits.train.levels[:50], progress=False, **kwargs)


def test_bad_data_gets_a_clear_error(digits):
    with pytest.raises(ValueError, match=r"shape \[N, 64\]"):
        fit(new_model(), torch.zeros(10, 63), progress=False)
    with pytest.raises(ValueError, match="empty"):
        fit(new_model(), torch.zeros(0, 64), progress=False)
    with pytest.raises(ValueError, match="integer levels"):
        fit(new_model(), digits.train.x * 0.5, progress=False)


@pytest.mark.parametrize(
    "make",
    [
        lambda: VAE(64, [32, 16], 3, likelihood="gaussian", sigma=0.3, learn_sigma=True),
        lambda: VAE(64, [32], 16, likelihood="categorical", n_levels=17),
        lambda: Autoencoder(64, [32], 2, likelihood="bernoulli"),
    ],
)
def test_save_and_load_round_trip_bit_for_bit(tmp_path, make):
    torch.manual_seed(0)
    model = make()
    path = save(model, tmp_path / "model.pt")
    loaded = load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for (name, a), (name_b, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == name_b and torch.equal(a, b)
    z = torch.randn(4, model.latent_dim)
    assert torch.equal(model.decode(z), loaded.decode(z))


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "model.pt"
    first, second = new_model(), VAE(64, [8], 2)
    save(first, path)
    save(second, path)
    assert load(path).config == second.config
    assert os.listdir(tmp_path) == ["model.pt"]


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save(new_model(), path)
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save(VAE(64, [8], 2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model written by vae.save"):
        load(junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(new_model(), tmp_path / "no" / "such" / "folder.pt")
    with pytest.raises(TypeError, match="can only save"):
        save(torch.nn.Linear(2, 2), tmp_path / "linear.pt")


def test_evaluate_does_not_change_the_training_mode(digits):
    model = new_model()
    model.train()
    vae.evaluate(model, digits.valid.levels)
    assert model.training


def record_elbo_calls(monkeypatch) -> list[tuple[float, int]]:
    """Make ``fit`` log the (KL weight, n_samples) of every training step."""
    calls = []

    def logged(model, x, beta=1.0, n_samples=1, posterior=None, y=None):
        calls.append((beta, n_samples))
        return vae.objectives.elbo(model, x, beta, n_samples, posterior, y)

    monkeypatch.setattr(vae.training, "elbo", logged)
    return calls


def test_warmup_ramps_the_kl_weight_linearly_to_beta(digits, monkeypatch):
    calls = record_elbo_calls(monkeypatch)
    x = digits.train.levels[:100]
    history = fit(new_model(), x, epochs=6, warmup=4, beta=2.0, batch_size=100, n_samples=3, progress=False)
    assert calls[:-1] == [(0.0, 3), (0.5, 3), (1.0, 3), (1.5, 3), (2.0, 3), (2.0, 3)]
    assert calls[-1] == (1.0, 1)  # after the last update: is the loss still finite?
    # the history always reports the objective at the final weight, so epochs compare
    for e, r, k in zip(history["train_elbo"], history["train_rec"], history["train_kl"]):
        assert e == pytest.approx(r - 2.0 * k, abs=1e-3)


def test_early_stopping_waits_for_the_warmup_to_end(digits):
    history = fit(
        new_model(), digits.train.levels, digits.valid.levels,
        epochs=100, lr=3e-2, warmup=10, patience=1, progress=False,
    )
    # epoch 11 is the first one compared, so one more is needed to see no improvement
    assert len(history["valid_elbo"]) >= 12


def test_dropout_is_active_in_training_only_and_fit_ends_in_eval_mode(digits, tmp_path):
    model = new_model(dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2  # encoder and decoder
    z = torch.randn(5, 2)
    model.train()
    assert not torch.equal(model.decode(z), model.decode(z))
    fit(model, digits.train.levels[:100], epochs=1, progress=False)
    assert not model.training
    assert torch.equal(model.decode(z), model.decode(z))
    assert load(save(model, tmp_path / "m.pt")).config["dropout"] == 0.5
    with pytest.raises(ValueError, match="dropout"):
        new_model(dropout=1.0)


def test_lr_patience_halves_the_learning_rate_on_a_plateau(digits):
    history = fit(
        new_model(), digits.train.levels, digits.valid.levels,
        epochs=60, lr=3e-2, lr_patience=2, patience=20, progress=False,
    )
    lrs, valid = history["lr"], history["valid_elbo"]
    assert lrs[0] == 3e-2 and min(lrs) < 3e-2
    for epoch in range(1, len(lrs)):
        if lrs[epoch] != lrs[epoch - 1]:
            assert lrs[epoch] == pytest.approx(lrs[epoch - 1] / 2)
            # halved only after lr_patience + 1 epochs in a row without a new best
            assert max(valid[epoch - 3:epoch]) <= max(valid[:epoch - 3])
    with pytest.raises(ValueError, match="lr_patience"):
        fit(new_model(), digits.train.levels[:50], lr_patience=3, progress=False)


def test_a_blow_up_on_the_last_step_still_raises(digits):
    model = new_model()
    with pytest.raises(FloatingPointError, match=r"epoch 1.*smaller learning rate"):
        fit(model, digits.train.levels[:32], epochs=1, batch_size=32, lr=1e10, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(lr=float("inf")), ValueError, "lr must be a finite positive number"),
        (dict(lr=float("nan")), ValueError, "lr must be a finite positive number"),
        (dict(beta=float("inf")), ValueError, "beta must be a finite number >= 0"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(device="gpu0"), ValueError, "device must name a torch device"),
    ],
)
def test_more_bad_arguments_get_a_clear_error(digits, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(new_model(), digits.train.levels[:50], epochs=1, progress=False, **kwargs)


def test_numpy_and_tensor_scalars_are_accepted_as_numbers(digits):
    import numpy as np

    x = digits.train.levels[:64]
    history = fit(new_model(), x, epochs=2, lr=np.float32(1e-3), beta=torch.tensor(0.5), progress=False)
    assert len(history["train_elbo"]) == 2
    model = new_model()
    torch.manual_seed(0)
    expected = evaluate(model, x, beta=1.0)
    for beta in (np.float64(1.0), torch.tensor(1.0)):
        torch.manual_seed(0)
        assert evaluate(model, x, beta=beta) == expected
    gaussian = VAE(64, [8], 2, likelihood="gaussian", sigma=np.float32(0.5))
    assert gaussian.lik.log_sigma.exp()[0].item() == pytest.approx(0.5)


def test_evaluate_rejects_a_bad_batch_size(digits):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        evaluate(new_model(), digits.test.levels, batch_size=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_a_gpu_says_so(tmp_path, digits):
    path = save(new_model(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        load(path, device="cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        fit(new_model(), digits.train.levels[:50], epochs=1, progress=False, device="cuda")


def test_load_names_what_is_wrong_with_the_file(tmp_path):
    good = torch.load(save(new_model(), tmp_path / "m.pt"), weights_only=True)

    def written(payload, name):
        torch.save(payload, tmp_path / name)
        return tmp_path / name

    with pytest.raises(ValueError, match="lacks the class, config and weights"):
        load(written({"class": "VAE", "state_dict": good["state_dict"]}, "no-config.pt"))
    with pytest.raises(ValueError, match=r"incomplete config: \['latent_dim'\]"):
        config = {k: v for k, v in good["config"].items() if k != "latent_dim"}
        load(written({**good, "config": config}, "partial.pt"))
    with pytest.raises(ValueError, match="invalid config"):
        load(written({**good, "config": {**good["config"], "likelihood": "poisson"}}, "bad-config.pt"))
    with pytest.raises(ValueError, match="weights do not fit"):
        load(written({**good, "config": {**good["config"], "latent_dim": 3}}, "mismatch.pt"))
    with pytest.raises(ValueError, match="weights do not fit"):
        state = dict(good["state_dict"])
        state.pop("to_mean.bias")
        load(written({**good, "state_dict": state}, "missing-weights.pt"))
    with pytest.raises(ValueError, match="rebuilds only"):
        load(written({**good, "class": "GAN"}, "gan.pt"))


def test_callback_sees_every_epoch_and_changes_nothing(digits):
    seen = []

    def record(epoch, model):
        assert not model.training
        seen.append((epoch, model.sample(2).sum().item()))  # draws random numbers on purpose

    a, b = new_model(), new_model()
    ha = fit(a, digits.train.levels[:200], epochs=4, progress=False, callback=record)
    hb = fit(b, digits.train.levels[:200], epochs=4, progress=False)
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert ha == hb
    with pytest.raises(TypeError, match="callback must be a function"):
        fit(new_model(), digits.train.levels[:50], epochs=1, progress=False, callback=3)


# Training on the IWAE bound (Burda et al., 2016): fit(..., objective="iwae", n_samples=k).


@pytest.mark.parametrize("kwargs", [dict(), dict(prior="mixture", n_components=3), dict(prior="vamp", n_components=3)])
def test_the_iwae_objective_is_the_iwae_bound_for_the_same_draws(digits, kwargs):
    model, x = new_model(**kwargs), digits.test.levels[:40]
    for k in (1, 7):
        torch.manual_seed(k)
        terms = vae.objectives.importance_weighted(model, x, n_samples=k)
        torch.manual_seed(k)
        assert torch.equal(terms.elbo, vae.iwae_bound(model, x, k))
        torch.testing.assert_close(terms.rec - terms.kl, terms.elbo)


@pytest.mark.parametrize("kwargs", [dict(prior="mixture", n_components=3), dict(prior="vamp", n_components=3)])
def test_the_iwae_objective_with_one_draw_is_the_elbo(digits, kwargs):
    """With a learned prior the ELBO's KL is log q(z|x) − log p(z) at its draw: for k = 1 both objectives
    score the same draw with the same terms, and differ only in the order of one sum (one float32 ulp)."""
    model, x = new_model(**kwargs), digits.test.levels[:40]
    torch.manual_seed(3)
    iwae = vae.objectives.importance_weighted(model, x, n_samples=1)
    torch.manual_seed(3)
    bound = vae.elbo(model, x)
    assert torch.equal(iwae.rec, bound.rec)  # the same draw of z
    torch.testing.assert_close(iwae.elbo, bound.elbo, atol=3e-5, rtol=0)
    torch.testing.assert_close(iwae.kl, bound.kl, atol=3e-5, rtol=0)


def test_the_iwae_objective_with_one_draw_is_the_elbo_on_average_for_the_standard_prior(digits):
    """N(0, I)'s KL is exact in the ELBO and a one-draw estimate in the IWAE bound: equal in expectation."""
    model, x = new_model(), digits.test.levels[:4].repeat_interleave(5000, 0)
    torch.manual_seed(3)
    iwae = vae.objectives.importance_weighted(model, x, n_samples=1)
    torch.manual_seed(3)
    bound = vae.elbo(model, x)
    assert torch.equal(iwae.rec, bound.rec)
    gap = (iwae.elbo - bound.elbo).view(4, 5000)
    assert (gap.mean(1).abs() < 4 * gap.std(1) / 5000**0.5).all()


def test_fit_trains_on_the_iwae_bound_with_k_draws(digits, monkeypatch):
    calls, objective = [], vae.objectives.importance_weighted

    def logged(model, x, beta=1.0, n_samples=1, y=None):
        calls.append(n_samples)
        return objective(model, x, beta, n_samples, y)

    monkeypatch.setattr(vae.training, "importance_weighted", logged)
    history = fit(new_model(), digits.train.levels[:200], digits.valid.levels[:50], epochs=5, batch_size=100,
                  n_samples=5, objective="iwae", progress=False)
    assert calls == [5] * 10  # two batches an epoch, k = 5 draws each
    assert history["train_elbo"][-1] > history["train_elbo"][0] + 3
    for e, r, k in zip(history["train_elbo"], history["train_rec"], history["train_kl"]):
        assert e == pytest.approx(r - k, abs=1e-3)  # the bound, its draws' reconstruction and what it charges
    assert len(history["valid_elbo"]) == 5  # validation is scored by the ELBO


def test_training_on_the_iwae_bound_tightens_it(digits):
    """Burda et al.'s finding at small scale: trained on the IWAE bound (k = 10), a VAE with 4 latent
    dimensions has a higher IWAE bound on test digits and a lower ELBO than the same VAE trained on the
    ELBO. Over seeds 0-3 the gains were 0.65-1.15 nats and the ELBO losses 2.8-3.5 nats."""
    scores = {}
    for objective, k in (("elbo", 1), ("iwae", 10)):
        torch.manual_seed(0)
        model = VAE(64, [32], 4, likelihood="categorical")
        fit(model, digits.train.levels, epochs=20, objective=objective, n_samples=k, progress=False, device="cpu")
        torch.manual_seed(0)
        scores[objective] = (vae.iwae_bound(model, digits.test.levels, 200).mean().item(),
                             evaluate(model, digits.test.levels)["elbo"])
    assert scores["iwae"][0] > scores["elbo"][0] + 0.3
    assert scores["iwae"][1] < scores["elbo"][1] - 1.0


@pytest.mark.parametrize("make, kwargs, error, message", [
    (new_model, dict(objective="iwea"), ValueError, r"objective must be one of \('elbo', 'iwae'\)"),
    (new_model, dict(objective="iwae", n_samples=0), ValueError, "n_samples must be a positive int"),
    (new_model, dict(objective="iwae", n_samples=2.5), TypeError, "n_samples must be a positive int"),
    (new_model, dict(objective="iwae", beta=0.5), ValueError, "no KL term to weight"),
    (new_model, dict(objective="iwae", warmup=3), ValueError, "no KL term to weight"),
    (lambda: Autoencoder(64, [32], 2, likelihood="categorical"), dict(objective="iwae"), ValueError,
     "not an Autoencoder"),
])
def test_bad_iwae_arguments_get_a_clear_error(digits, make, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(make(), digits.train.levels[:50], epochs=1, progress=False, **kwargs)
