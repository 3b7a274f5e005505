"""The classroom interface: the VAE of the assignments, as the seed's assignment defines it.

Students write a ``VAE(input_dim, hidden_dims, latent_dim)`` with ``encode``, ``decode``,
``reparameterize(mean, logvar, n_samples_per_z)`` and a ``forward(x, n_samples_per_z)`` that
returns a dict; a loss is then written as ``loss(output, x)``. This module adapts the library's
:class:`vae.VAE` to that interface, so the loss doctor and the chapters can speak it.
"""

from __future__ import annotations

from torch import Tensor

from vae.boundary import checked, codes, data, positive_int
from vae.models import VAE


@checked(x=data, n_samples_per_z=positive_int)
def classroom_output(model: VAE, x: Tensor, n_samples_per_z: int = 1) -> dict[str, Tensor]:
    """Encode, sample and decode a batch ``x`` [B, D] as the classroom's ``forward`` does.

    Returns ``imgs`` [B, D] (the decoder's mean image, averaged over the S samples), ``z`` ([B, L]
    when S = ``n_samples_per_z`` is 1, else [B, S, L]), and ``mean``, ``logvar`` [B, L] of q(z|x).
    """
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar, n_samples_per_z)
    imgs = model.decode(z)
    return {"imgs": imgs.mean(-2) if n_samples_per_z > 1 else imgs, "z": z, "mean": mean, "logvar": logvar}


class ClassroomVAE(VAE):
    """A :class:`vae.VAE` with the classroom's signatures: ``latent_dim`` defaults to ``hidden_dims[-1] // 2``."""

    def __init__(self, input_dim: int, hidden_dims: list[int], latent_dim: int | None = None, **settings) -> None:
        if latent_dim is None and isinstance(hidden_dims, (list, tuple)) and hidden_dims:
            latent_dim = hidden_dims[-1] // 2
        super().__init__(input_dim, hidden_dims, latent_dim, **settings)

    @checked(mean=codes, logvar=codes, n_samples_per_z=positive_int)
    def reparameterize(self, mean: Tensor, logvar: Tensor, n_samples_per_z: int = 1) -> Tensor:
        """:meth:`vae.VAE.reparameterize` with the classroom's name for the number of draws."""
        return super().reparameterize(mean, logvar, n_samples_per_z)

    def forward(self, x: Tensor, n_samples_per_z: int = 1) -> dict[str, Tensor]:
        """:func:`classroom_output`: the dict ``imgs``, ``z``, ``mean``, ``logvar``."""
        return classroom_output(self, x, n_samples_per_z)
