"""Animations for the notebooks: matplotlib's HTML/JavaScript player, made to work offline, with
a still image of the last frame for front ends that cannot run it; and the book's one animation,
the codes of a VAE moving during training (:func:`codes_over_training`).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from torch import Tensor

from vae.latent import to_numpy
from vae.plots import digit_scatter
from vae.validation import check_positive, check_positive_int

# The player's buttons show Font Awesome icons, from a stylesheet on a CDN. The book works offline:
# each icon (by its class) becomes plain characters.
PLAYER_ICONS = {
    "fa fa-minus": "&minus;", "fa fa-fast-backward": "|&#x25C1;", "fa fa-step-backward": "&#x25C1;",
    "fa fa-play fa-flip-horizontal": "&#x25C0;", "fa fa-pause": "&#x2759;&#x2759;", "fa fa-play": "&#x25B6;",
    "fa fa-step-forward": "&#x25B7;", "fa fa-fast-forward": "&#x25B7;|", "fa fa-plus": "+",
}
_ICON_STYLESHEET = re.compile(r'<link rel="stylesheet"\s+href="[^"]*font-awesome[^"]*">')


@dataclass(frozen=True)
class Animation:
    """An animation for a notebook: an HTML/JavaScript player, with its last frame as a still image
    for front ends that cannot run it (the notebook picks whichever it can show)."""

    html: str
    still_png: bytes

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, object]:
        return {"text/html": self.html, "image/png": base64.b64encode(self.still_png).decode()}


def offline_player(html: str) -> str:
    """The HTML of matplotlib's player (``FuncAnimation.to_jshtml``) without its Font Awesome
    stylesheet, each button's icon written as plain characters (:data:`PLAYER_ICONS`)."""
    html = _ICON_STYLESHEET.sub("", html)
    for icon, text in PLAYER_ICONS.items():
        html = html.replace(f'<i class="{icon}"></i>', text)
    return html


def animate(fig: Figure, draw: Callable[[int], object], n_frames: int, interval_ms: int = 400) -> Animation:
    """Play ``draw(0)``, ..., ``draw(n_frames - 1)`` (each updates ``fig`` in place) every ``interval_ms``
    milliseconds, in an offline player that stops at the end; the still is the last frame. Closes ``fig``.

    Every frame is embedded as a JPEG, at the figure's own dpi: keep the figure light.
    """
    check_positive_int("n_frames", n_frames)
    check_positive_int("interval_ms", interval_ms)
    player = FuncAnimation(fig, draw, frames=n_frames, interval=interval_ms)
    with plt.rc_context({"animation.frame_format": "jpeg"}):  # half the bytes of PNG frames
        html = offline_player(player.to_jshtml(default_mode="once"))
    draw(n_frames - 1)
    still = io.BytesIO()
    fig.savefig(still, format="png", dpi=fig.dpi)
    plt.close(fig)
    return Animation(html, still.getvalue())


def codes_over_training(
    snapshots: list[Tensor], labels: Tensor, epochs: list[int], limit: float = 4.0, interval_ms: int = 400
) -> Animation:
    """Animate 2-D codes [N, 2], one snapshot per entry of ``epochs``, coloured by ``labels`` [N].

    The axes are fixed at [-limit, limit] with the prior's 1, 2 and 3 standard-deviation circles,
    so the frames can be compared.
    """
    if not snapshots or len(snapshots) != len(epochs):
        raise ValueError(f"need one snapshot per epoch, got {len(snapshots)} snapshots and {len(epochs)} epochs")
    frames = [to_numpy(z) for z in snapshots]
    if any(z.ndim != 2 or z.shape[1] != 2 for z in frames):
        raise ValueError("each snapshot must hold 2-D codes [N, 2]")
    check_positive("limit", limit)
    # The player embeds every frame: keep them light (100 CSS pixels per inch, as the book's figures).
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=100, layout="constrained")
    labels = to_numpy(labels).astype(int)
    digit_scatter(ax, frames[0], labels)
    points = dict(zip(np.unique(labels), ax.collections))
    names = list(ax.texts)
    for r in (1, 2, 3):
        ax.add_patch(plt.Circle((0, 0), r, fill=False, color="grey", lw=0.8, ls="--"))
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal", xlabel="$z_1$", ylabel="$z_2$")
    title = ax.set_title("")

    def draw(i: int) -> None:
        for (digit, collection), name in zip(points.items(), names):
            here = frames[i][labels == digit]
            collection.set_offsets(here)
            name.set_position(np.median(here, axis=0))
        title.set_text(f"posterior means after epoch {epochs[i]}")

    return animate(fig, draw, len(frames), interval_ms)
