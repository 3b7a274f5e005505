"""The networks: small multilayer perceptrons."""

from __future__ import annotations

from torch import nn


def mlp(sizes: list[int], final_activation: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes with LeakyReLU (and dropout, if > 0) between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.LeakyReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
