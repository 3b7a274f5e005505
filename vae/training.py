"""Training: the loop, the evaluation it reports, and ``fit``, which checks its arguments and runs it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from tqdm import tqdm

from vae.boundary import (
    checked,
    choice,
    data,
    function,
    labels,
    model_is,
    nonnegative,
    nonnegative_int,
    optional,
    pick_device,
    positive,
    positive_int,
)
from vae.models import VAE, Autoencoder
from vae.objectives import ELBO, batches, elbo, importance_weighted, reconstruction
from vae.options import History, Option, option_list, options_from

Objective = Callable[..., ELBO]  # objective(model, x, beta=..., n_samples=..., y=...) -> ELBO, each [B] nats


def objective_of(model: VAE | Autoencoder, name: str = "elbo") -> Objective:
    """What a model is trained on: the ELBO for a VAE (or, ``name="iwae"``, the IWAE bound), the
    reconstruction term for an autoencoder."""
    if isinstance(model, Autoencoder):
        return reconstruction
    return {"elbo": elbo, "iwae": importance_weighted}[name]


def train_loop(
    model: VAE | Autoencoder,
    optimizer: torch.optim.Optimizer,
    train: Tensor,
    y: Tensor | None,
    valid: Tensor | None,
    valid_y: Tensor | None,
    *,
    objective: Objective,
    epochs: int,
    batch_size: int,
    beta: float,
    n_samples: int,
    generator: torch.Generator,
    options: Sequence[Option] = (),
    progress: bool = False,
) -> History:
    """The training loop: ``epochs`` passes over ``train`` in a fresh random order, one Adam step per batch.

    Each step ascends ``objective`` (the ELBO, unless :func:`fit` was asked for another). Nothing
    here waits on the device inside an epoch: the losses are summed there, with a count of NaN or
    inf ones, and read once at the epoch's end.
    """
    history = {}
    for epoch in tqdm(range(1, epochs + 1), disable=not progress, unit="epoch", file=sys.stderr):
        model.train()
        weight = beta
        for option in options:
            weight = option.kl_weight(epoch, weight)
        totals = torch.zeros(3, device=train.device)  # summed rec, summed kl, non-finite losses
        order = torch.randperm(len(train), generator=generator).to(train.device)
        for xb, yb in batches(train[order], None if y is None else y[order], batch_size):
            terms = objective(model, xb, beta=weight, n_samples=n_samples, y=yb)
            loss = -terms.elbo.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += torch.stack([terms.rec.detach().sum(), terms.kl.detach().sum(), (~loss.isfinite()).float()])
        rec, kl, n_bad = (totals / len(train)).tolist()  # the one wait on the device per epoch
        if n_bad or epoch == epochs and not finite_after_last_step(model, train[:batch_size], y):
            raise FloatingPointError(
                f"the loss became NaN or inf in epoch {epoch}, so the model's weights are no longer usable; "
                f"rebuild it and try a smaller learning rate than lr={optimizer.param_groups[0]['lr']:g}"
            )
        history.setdefault("lr", []).append(optimizer.param_groups[0]["lr"])
        record(history, "train", dict(elbo=rec - beta * kl, rec=rec, kl=kl))
        if valid is not None:
            record(history, "valid", evaluate(model, valid, beta, y=valid_y))
        if any([option.end_epoch(epoch, model, optimizer, history) for option in options]):  # all act, then stop
            break
    for option in options:
        option.finish(model)
    model.eval()
    return history


def record(history: History, split: str, scores: dict[str, float]) -> None:
    """Append this epoch's ``scores`` to ``history`` as ``{split}_elbo``, ``{split}_rec``, ``{split}_kl``."""
    for key, value in scores.items():
        history.setdefault(f"{split}_{key}", []).append(value)


@torch.no_grad()
def finite_after_last_step(model: VAE | Autoencoder, x: Tensor, y: Tensor | None) -> bool:
    """Whether the loss is still finite after the final update, which no training step has seen."""
    y = None if y is None else y[: len(x)]
    return bool(torch.isfinite(objective_of(model)(model, x, y=y).elbo).all())


@torch.inference_mode()
@checked(model=model_is(VAE, Autoencoder), x=data, beta=nonnegative, batch_size=positive_int, y=labels)
def evaluate(
    model: VAE | Autoencoder, x: Tensor, beta: float = 1.0, batch_size: int = 1024, y: Tensor | None = None
) -> dict[str, float]:
    """Average ELBO, reconstruction log-likelihood and KL over ``x``, nats per example (Python floats).

    Computed in eval mode (dropout off). With a learned prior the KL, and so the ELBO, is a Monte
    Carlo estimate (one draw per example). One wait on the device.
    """
    was_training = model.training
    model.eval()
    objective = objective_of(model)
    totals = torch.zeros(3, device=x.device)
    for xb, yb in batches(x, y, batch_size):
        totals += torch.stack([t.sum() for t in objective(model, xb, beta=beta, y=yb)])
    model.train(was_training)
    return dict(zip(("elbo", "rec", "kl"), (totals / len(x)).tolist()))


def _interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where a progress bar helps."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


@checked(model=model_is(VAE, Autoencoder), epochs=positive_int, batch_size=positive_int, lr=positive,
         beta=nonnegative, warmup=nonnegative_int, n_samples=positive_int, seed=nonnegative_int,
         patience=optional(positive_int), lr_patience=optional(positive_int), weight_decay=nonnegative,
         callback=optional(function), options=option_list, objective=choice("elbo", "iwae"))
def fit(
    model: VAE | Autoencoder,
    train: Tensor,
    valid: Tensor | None = None,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 1.0,
    warmup: int = 0,
    n_samples: int = 1,
    seed: int = 0,
    patience: int | None = None,
    lr_patience: int | None = None,
    weight_decay: float = 0.0,
    progress: bool | None = None,
    device: str | torch.device | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
    options: Sequence[Option] = (),
    y: Tensor | None = None,
    valid_y: Tensor | None = None,
    objective: str = "elbo",
) -> History:
    """Train ``model`` by maximising the (beta-weighted) ELBO with Adam: check, then run :func:`train_loop`.

    ``train`` and ``valid`` are [N, D] tensors or arrays; each epoch visits ``train`` in a fresh
    random order, in batches of ``batch_size``, with ``n_samples`` draws of z per input. The model
    moves to ``device`` (default: CUDA when available) and stays there. ``seed`` fixes the batch
    order and the noise (the initial weights are fixed when the model is built). A
    :class:`vae.ConditionalVAE` needs labels: ``y`` [N] for ``train``, ``valid_y`` for ``valid``.

    Options (:mod:`vae.options`) come from ``warmup`` > 0 (KL warm-up), ``patience`` (early
    stopping), ``lr_patience`` (learning-rate decay) and ``callback(epoch, model)``, then
    ``options``; early stopping and decay need ``valid`` and skip the warm-up's epochs.

    ``objective="iwae"`` trains a VAE on the IWAE bound with k = ``n_samples`` draws instead
    (Burda et al., 2016; :func:`vae.objectives.importance_weighted`): ``train_elbo`` is then that
    bound, ``train_rec`` the draws' average log p(x|z) and ``train_kl`` = rec − bound. It takes no
    ``beta`` or ``warmup``; validation is still scored by the ELBO.

    Returns per-epoch ``lr``, ``train_elbo`` (= rec − beta · kl), ``train_rec``, ``train_kl`` and,
    with ``valid``, ``valid_elbo``, ``valid_rec``, ``valid_kl``, in nats per example; a NaN or inf
    loss raises ``FloatingPointError``. The model is left in eval mode.
    """
    if valid is None and (patience is not None or lr_patience is not None or valid_y is not None):
        raise ValueError("patience, lr_patience and valid_y need validation data: pass valid=... as well")
    if objective == "iwae" and (isinstance(model, Autoencoder) or beta != 1 or warmup):
        raise ValueError("objective='iwae' trains a VAE on the IWAE bound, which has no KL term to weight: "
                         "it needs a vae.VAE (not an Autoencoder), beta=1 and no warmup")
    device = pick_device(device)
    model.to(device)
    train = data("train", train, model, {})
    y = labels("y", y, model, {"x": train})
    if valid is not None:
        valid = data("valid", valid, model, {})
        valid_y = labels("valid_y", valid_y, model, {"x": valid})
    options = options_from(warmup, patience, lr_patience, callback) + list(options)
    # The fused Adam updates all parameters in one kernel: the same algorithm, about 2.5 times faster
    # than the CPU's default per-tensor update on networks this small (benchmarks/throughput.py).
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return train_loop(model, optimizer, train, y, valid, valid_y, objective=objective_of(model, objective),
                          epochs=epochs, batch_size=batch_size, beta=beta, n_samples=n_samples,
                          generator=torch.Generator().manual_seed(seed), options=options,
                          progress=_interactive() if progress is None else progress)

