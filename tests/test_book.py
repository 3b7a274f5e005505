import numpy as np
import pytest
import torch

import vae


def test_glue_records_plain_python_numbers(monkeypatch):
    recorded = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: recorded.update({name: (value, display)}))
    assert vae.glue("a", torch.tensor(0.25)) == 0.25
    vae.glue("b", np.float32(1.5))
    vae.glue("c", np.int64(7))
    vae.glue("d", np.array([[3.0]]))
    assert recorded == {"a": (0.25, False), "b": (1.5, False), "c": (7, False), "d": (3.0, False)}
    assert [type(v) for v, _ in recorded.values()] == [float, float, int, float]


def test_glue_rejects_what_the_prose_cannot_quote():
    with pytest.raises(ValueError, match="single numbers"):
        vae.glue("x", torch.zeros(3))
    with pytest.raises(TypeError, match="name"):
        vae.glue("", 1.0)
