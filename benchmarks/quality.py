"""Model quality on the digits: test −ELBO, IWAE log-likelihood and bits/dim, over several seeds.

The setting used in the literature for scikit-learn's 8×8 digits: train on the first 1000 images,
stop early on the next 350, test on the last 447; a per-pixel Categorical over the 17 grey levels;
a 16-dimensional latent; one hidden layer of 256 units. The first row trains plainly (Adam, lr 1e-3,
batch 64); each following row adds one of the book's training tricks to it; the recipe row
combines the three that help; the rows after it give the recipe a learned prior (chapter 10), a flow
posterior or training on the importance-weighted bound (chapter 11), and their combinations.
Each trained model is scored three ways on the test split: the ELBO with the encoder's q(z|x)
(with a learned prior its KL is a Monte Carlo estimate, one draw per image); the ELBO with q
refined for each test image (``vae.refine_posterior``, 100 Adam steps from the encoder's q: the
amortisation gap closed, the decoder unchanged); and the IWAE estimate of log p(x). All numbers
are nats per test image (mean ± standard deviation over the seeds), except bits/dim; times are
wall times in one worker process. The first line of the table is the figure reported in the
literature for this setting (Tomczak, 2022), for reference.

    python benchmarks/quality.py [--seeds 0 1 2] [--workers 2] [--k 1000] [--rows NAME ...] [--out FILE]

With every row measured, the table is also written to ``book/_data/quality.md``, which the
benchmarks page includes: the page shows what the script measured, never a hand-copied number.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from pathlib import Path

import torch

import vae

OUT = Path(__file__).resolve().parents[1] / "book" / "_data" / "quality.md"

PLAIN = dict(lr=1e-3, batch_size=64, patience=50)
RECIPE = dict(dropout=0.5, weight_decay=1e-2, batch_size=32)
ROWS = {
    "plain": {},
    "+ KL warm-up over 50 epochs": dict(warmup=50),
    "+ 4 samples of z per input": dict(n_samples=4),
    "+ halving the lr on plateaus of 10 epochs": dict(lr_patience=10),
    "+ batch 32": dict(batch_size=32),
    "+ weight decay 1e-2": dict(weight_decay=1e-2),
    "+ dropout 0.5": dict(dropout=0.5),
    "recipe: dropout 0.5 + weight decay 1e-2 + batch 32": RECIPE,
    "recipe + mixture prior, K = 10": dict(RECIPE, prior="mixture", n_components=10),
    "recipe + VampPrior, K = 100": dict(RECIPE, prior="vamp", n_components=100),
    "recipe, patience 100, lr halved on plateaus of 20": dict(RECIPE, patience=100, lr_patience=20),
    "recipe + planar flow, 8 steps": dict(RECIPE, flow="planar", flow_length=8),
    "recipe + IAF, 2 steps": dict(RECIPE, flow="iaf", flow_length=2),
    "recipe + IWAE training, k = 5": dict(RECIPE, objective="iwae", n_samples=5),
    "recipe + IAF, 2 steps + IWAE training, k = 5": dict(RECIPE, flow="iaf", flow_length=2, objective="iwae", n_samples=5),
    "recipe + VampPrior + IAF, 2 steps + IWAE training, k = 5": dict(RECIPE, prior="vamp", n_components=100, flow="iaf",
                                                                  flow_length=2, objective="iwae", n_samples=5),
}
MODEL_SETTINGS = ("dropout", "prior", "n_components", "flow", "flow_length")
REFERENCE = 96.8  # test −ELBO reported for this setting (Tomczak, 2022)


def run(settings: dict, seed: int, k: int) -> dict[str, float]:
    """Train one model with ``settings`` on top of the plain ones; score it on the test split."""
    torch.set_num_threads(1)  # one core per worker: the networks are too small to share one well
    digits = vae.load_digits()
    settings = {**PLAIN, **settings}
    torch.manual_seed(seed)
    model_settings = {key: settings.pop(key) for key in MODEL_SETTINGS if key in settings}
    model_class = vae.FlowVAE if "flow" in model_settings else vae.VAE
    model = model_class(64, [256], latent_dim=16, likelihood="categorical", **model_settings)
    start = time.perf_counter()
    history = vae.fit(model, digits.train.levels, digits.valid.levels, epochs=3000, seed=seed,
                      progress=False, device="cpu", **settings)
    seconds = time.perf_counter() - start
    test = digits.test.levels
    torch.manual_seed(seed)
    neg_elbo = -vae.evaluate(model, test)["elbo"]
    start = time.perf_counter()
    posterior = vae.refine_posterior(model, test)
    refine_seconds = time.perf_counter() - start
    with torch.inference_mode():
        neg_refined = -vae.elbo(model, test, n_samples=100, posterior=posterior).elbo.mean().item()
    neg_ll = -vae.log_likelihood_estimate(model, test, n_samples=k).mean().item()
    return dict(neg_elbo=neg_elbo, neg_refined=neg_refined, neg_ll=neg_ll, epochs=len(history["train_elbo"]),
                seconds=seconds, refine_seconds=refine_seconds, parameters=sum(p.numel() for p in model.parameters()))


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.mean(values):.{digits}f}\u00a0±\u00a0{statistics.stdev(values):.{digits}f}" if len(values) > 1 \
        else f"{values[0]:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--k", type=int, default=1000, help="importance samples for the log-likelihood estimate")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="NAME",
                        help="measure only these rows (default: all); 'plain' is always measured")
    parser.add_argument("--out", type=Path, help=f"write the table here (default with every row measured: {OUT})")
    args = parser.parse_args()
    out = args.out or (OUT if set(args.rows) == set(ROWS) else None)
    start = time.perf_counter()
    rows = ["plain", *(name for name in args.rows if name != "plain")]

    jobs = [(name, seed) for name in rows for seed in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {job: pool.submit(run, ROWS[job[0]], job[1], args.k) for job in jobs}
        results = {job: future.result() for job, future in futures.items()}

    n_dims = 64
    lines = ["| training | test −ELBO (nats) | test −ELBO, q refined (nats) | −log p(x), IWAE (nats) | bits/dim (IWAE) "
             "| parameters | epochs | train time (s) |",
             "| --- | --- | --- | --- | --- | ---: | --- | --- |",
             f"| reported for this setting {{cite:p}}`tomczak2022deep` | {REFERENCE} | | | | | | |"]
    plain = statistics.mean(results[("plain", s)]["neg_elbo"] for s in args.seeds)
    for name in rows:
        runs = [results[(name, s)] for s in args.seeds]
        elbo = [r["neg_elbo"] for r in runs]
        gain = "" if name == "plain" else f" ({statistics.mean(elbo) - plain:+.2f})"
        lines.append(f"| {name} | {spread(elbo)}{gain} | {spread([r['neg_refined'] for r in runs])} | "
                     f"{spread([r['neg_ll'] for r in runs])} | "
                     f"{spread([vae.bits_per_dim(r['neg_ll'], n_dims) for r in runs], 3)} | "
                     f"{runs[0]['parameters']:,} | "
                     f"{spread([r['epochs'] for r in runs], 0)} | {spread([r['seconds'] for r in runs], 1)} |")
    refine = [r["refine_seconds"] for r in results.values()]
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    header = (f"Measured on {datetime.date.today().isoformat()} by `python benchmarks/quality.py` on "
              f"{os.cpu_count()} CPU cores ({args.workers} workers), torch {torch.__version__}, seeds "
              f"{', '.join(map(str, args.seeds))}, IWAE k = {args.k}: {minutes} min {seconds} s in all. "
              f"Refining q for the 447 test images took {spread(refine, 1)} s per model.")
    print(header + "\n\n" + "\n".join(lines))
    if out is not None:
        out.write_text(header + "\n\n" + "\n".join(lines) + "\n")
        print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
