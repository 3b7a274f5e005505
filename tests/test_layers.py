"""The shape of the library: its modules form layers, import no private names and no cycles.

Every import between ``vae`` modules is read from the source with ``ast`` (those under
``if TYPE_CHECKING:`` and inside functions included). A module may import from its own layer or
the layers below; the imports as a whole must form no cycle; and no module imports a name that
starts with an underscore from another one, so that each module's private helpers stay its own.
"""

import ast
from pathlib import Path

import pytest

VAE_DIR = Path(__file__).resolve().parents[1] / "vae"

# The layers, from the bottom. The core is layers 2 to 5.
LAYERS = {
    "validation": 0, "style": 0, "book": 0, "networks": 0,  # no imports from the library
    "boundary": 1,  # checks arguments at the public entry points
    "likelihoods": 2, "priors": 2, "flows": 2,  # core: p(x|z), p(z) and the flows of q(z|x)
    "models": 3,  # core: Autoencoder, VAE, ConditionalVAE, FlowVAE
    "objectives": 4, "interface": 4, "saving": 4,  # core: ELBO, IWAE; the classroom adapter; files
    "options": 5, "training": 5,  # core: the training loop and its options
    # topic modules, one or two chapters each
    "data": 6, "diagnostics": 6, "tractable": 6, "estimators": 6, "symbolic": 6, "em": 6,
    "loss_doctor": 6, "latent": 6,
    "plots": 7, "animation": 7, "explorer": 7, "export": 7, "web_figures": 7,  # figures and interactive pieces
    "__init__": 8,
}


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported vae module, imported name or '', line) for every import of ``vae/{module}.py``."""
    tree = ast.parse((VAE_DIR / f"{module}.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "vae":  # from vae import plots
                found += [(alias.name, "", node.lineno) for alias in node.names]
            elif node.module.startswith("vae."):
                found += [(node.module[4:], alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name[4:], "", node.lineno) for alias in node.names if alias.name.startswith("vae.")]
    return found


def modules() -> list[str]:
    return sorted(p.stem for p in VAE_DIR.glob("*.py"))


def test_every_module_has_a_layer():
    assert set(modules()) == set(LAYERS), "add new modules to LAYERS (and remove deleted ones)"


@pytest.mark.parametrize("module", modules())
def test_no_module_imports_from_a_layer_above_its_own(module):
    above = [(target, line) for target, _, line in imports(module) if LAYERS[target] > LAYERS[module]]
    assert not above, f"vae/{module}.py (layer {LAYERS[module]}) imports from higher layers: {above}"


@pytest.mark.parametrize("module", modules())
def test_no_module_imports_a_private_name(module):
    private = [(target, name, line) for target, name, line in imports(module) if name.startswith("_")]
    assert not private, f"vae/{module}.py imports private names: {private}"


def test_the_import_graph_has_no_cycle():
    graph = {m: {target for target, _, _ in imports(m)} - {m} for m in modules()}
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for target in graph[m]:
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join(path + [m, target]))
            if target not in state:
                visit(target, path + [m])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [])


def test_the_checker_sees_a_private_import(tmp_path, monkeypatch):
    """A planted private import and an upward import are caught (the check is not vacuous)."""
    planted = tmp_path / "vae"
    planted.mkdir()
    (planted / "models.py").write_text("from vae.training import _check_seed\n")
    monkeypatch.setattr(__import__(__name__), "VAE_DIR", planted)
    assert imports("models") == [("training", "_check_seed", 1)]
    with pytest.raises(AssertionError, match="private"):
        test_no_module_imports_a_private_name("models")
    with pytest.raises(AssertionError, match="higher layers"):
        test_no_module_imports_from_a_layer_above_its_own("models")
