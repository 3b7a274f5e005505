"""Options for the training loop: each adds one behaviour to :func:`vae.training.train` at fixed points.

An option may set the KL weight of an epoch (:meth:`Option.kl_weight`), act at the end of each
epoch and ask the loop to stop (:meth:`Option.end_epoch`), and act once training ends
(:meth:`Option.finish`). :func:`vae.fit` builds them from its arguments (``warmup``, ``patience``,
``lr_patience``, ``callback``); pass your own with ``options=[...]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from vae.boundary import outside

History = dict[str, list[float]]  # per-epoch records, nats per example: train_elbo, valid_elbo, ...


class Option:
    """Does nothing; subclasses override the hooks they need."""

    def kl_weight(self, epoch: int, beta: float) -> float:
        """The KL weight for epoch ``epoch`` (from 1), given the final weight ``beta``."""
        return beta

    def end_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, history: History) -> bool:
        """Called after each epoch's records are in ``history``; True stops training."""
        return False

    def finish(self, model: nn.Module) -> None:
        """Called once after the last epoch."""


class WarmUp(Option):
    """KL warm-up: the KL weight rises linearly from 0 in epoch 1 to ``beta`` at epoch ``epochs + 1``.

    It helps the decoder use the code before the KL pulls q(z|x) to the prior (Bowman et al.,
    2016; Sønderby et al., 2016).
    """

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def kl_weight(self, epoch: int, beta: float) -> float:
        return beta * min(1.0, (epoch - 1) / self.epochs)


class EarlyStopping(Option):
    """Stop once the validation ELBO has not improved for ``patience`` epochs; put the best weights back.

    Epochs up to ``after`` (the warm-up, whose ELBOs use a smaller KL weight) are not compared.
    """

    def __init__(self, patience: int, after: int = 0) -> None:
        self.patience, self.after = patience, after
        self.best, self.best_state, self.since_best = -float("inf"), None, 0

    def end_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, history: History) -> bool:
        if epoch > self.after:
            if history["valid_elbo"][-1] > self.best:
                self.best, self.since_best = history["valid_elbo"][-1], 0
                self.best_state = copy.deepcopy(model.state_dict())
            else:
                self.since_best += 1
        return self.since_best >= self.patience

    def finish(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class LearningRateDecay(Option):
    """Halve the learning rate whenever the validation ELBO has not improved for ``patience`` epochs.

    torch's ``ReduceLROnPlateau``; epochs up to ``after`` (the warm-up) are not counted.
    """

    def __init__(self, patience: int, after: int = 0) -> None:
        self.patience, self.after, self.schedule = patience, after, None

    def end_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, history: History) -> bool:
        if self.schedule is None:
            self.schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=0.5, patience=self.patience
            )
        if epoch > self.after:
            self.schedule.step(history["valid_elbo"][-1])
        return False


class Callback(Option):
    """Call ``function(epoch, model)`` after each epoch, with the model in eval mode.

    It may look at the model (e.g. record its codes) but must not train it. Its random numbers
    are its own: they leave training's noise unchanged.
    """

    def __init__(self, function: Callable[[int, nn.Module], None]) -> None:
        self.function = function

    def end_epoch(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, history: History) -> bool:
        model.eval()
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), outside():
            self.function(epoch, model)
        return False


def options_from(
    warmup: int, patience: int | None, lr_patience: int | None, callback: Callable[[int, nn.Module], None] | None
) -> list[Option]:
    """The options that :func:`vae.fit`'s arguments ask for, in the order the loop calls them."""
    options: list[Option] = [WarmUp(warmup)] if warmup else []
    options += [EarlyStopping(patience, after=warmup)] if patience is not None else []
    options += [LearningRateDecay(lr_patience, after=warmup)] if lr_patience is not None else []
    options += [Callback(callback)] if callback is not None else []
    return options


def option_list(name: str, value: object, model: object, arguments: dict) -> list[Option]:
    """The boundary's check of ``fit(options=...)``: a sequence of :class:`Option` objects."""
    if isinstance(value, Option) or not all(isinstance(option, Option) for option in value):
        raise TypeError(f"{name} must be a list of vae.options.Option objects (WarmUp, EarlyStopping, ...)")
    return list(value)
