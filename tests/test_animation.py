"""The notebook animation: an offline HTML player with a still of the last frame."""

import base64

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from vae import animation

matplotlib.use("Agg")


def test_codes_over_training_gives_a_player_and_a_still_of_the_last_frame():
    snapshots = [torch.zeros(5, 2), torch.ones(5, 2)]
    anim = animation.codes_over_training(snapshots, torch.arange(5), epochs=[1, 10])
    bundle = anim._repr_mimebundle_()
    assert "<script" in bundle["text/html"] and "anim" in bundle["text/html"]
    assert "://" not in bundle["text/html"] and 'class="fa' not in bundle["text/html"]  # works offline
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    assert not plt.get_fignums()  # the figure is closed once the animation is made
    with pytest.raises(ValueError, match="one snapshot per epoch"):
        animation.codes_over_training(snapshots, torch.arange(5), epochs=[1])
    with pytest.raises(ValueError, match=r"2-D codes \[N, 2\]"):
        animation.codes_over_training([torch.zeros(5, 3)], torch.arange(5), epochs=[1])


def test_offline_player_replaces_every_icon_and_drops_the_stylesheet():
    html = ('<link rel="stylesheet"\n href="https://cdn.example/font-awesome/4.4.0/css/font-awesome.min.css">'
            + "".join(f'<button><i class="{icon}"></i></button>' for icon in animation.PLAYER_ICONS))
    out = animation.offline_player(html)
    assert "font-awesome" not in out and "<i " not in out
    assert out == "".join(f"<button>{text}</button>" for text in animation.PLAYER_ICONS.values())


def test_animate_plays_every_frame_and_keeps_the_last_as_the_still():
    fig, ax = plt.subplots(figsize=(1, 1), dpi=50)
    line, = ax.plot([0, 1], [0, 0])
    drawn = []

    def draw(i: int) -> None:
        drawn.append(i)
        line.set_ydata([i, i])

    anim = animation.animate(fig, draw, n_frames=3, interval_ms=100)
    assert set(drawn) == {0, 1, 2} and drawn[-1] == 2
    assert anim.still_png.startswith(b"\x89PNG") and "<script" in anim.html
    with pytest.raises(ValueError, match="n_frames"):
        animation.animate(plt.figure(), draw, n_frames=0)
    plt.close("all")
