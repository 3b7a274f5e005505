"""How long the loss doctor takes: vae.diagnose_loss on a batch of 128 binarised digits, on the CPU.

Times the three steps (make_probes, evaluate, diagnose_values) and the whole call for three losses
(a correct one, one written with torch.distributions, the seed notes' sign slip), ``--repeats``
times each after a warm-up, and prints the median and the slowest run in seconds, with the
machine's load average. The goal is under 0.1 s for the whole call on one thread.

    python benchmarks/doctor.py [--threads N] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae
from vae import loss_doctor as doctor


def kl(o: dict) -> torch.Tensor:
    return 0.5 * (o["mean"] ** 2 + o["logvar"].exp() - o["logvar"] - 1).sum(-1)


LOSSES = {
    "correct (F.binary_cross_entropy)": lambda o, x: (
        F.binary_cross_entropy(o["imgs"], x, reduction="none").sum(-1) + kl(o)).mean(),
    "torch.distributions": lambda o, x: (
        -Independent(Bernoulli(probs=o["imgs"]), 1).log_prob(x)
        + kl_divergence(Independent(Normal(o["mean"], (0.5 * o["logvar"]).exp()), 1),
                        Independent(Normal(torch.zeros_like(o["mean"]), 1.0), 1))).mean(),
    "seed's sign slip": lambda o, x: (
        F.binary_cross_entropy(o["imgs"], x, reduction="none").sum(-1)
        + 0.5 * (o["logvar"] + o["logvar"].exp() + o["mean"] ** 2 - 1).sum(-1)).mean(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = (vae.load_digits().train.x[:128] > 0.5).float()
    model = vae.VAE(64, [128, 64], latent_dim=8)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f} before")
    print(f"{'loss':>34s} {'probes':>7s} {'evaluate':>9s} {'analysis':>9s} {'total':>7s} {'slowest':>8s}")
    for name, loss in LOSSES.items():
        vae.diagnose_loss(loss, model, x)  # warm-up
        steps, totals = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            probes = doctor.make_probes(x, model.latent_dim)
            t1 = time.perf_counter()
            values = doctor.evaluate(loss, probes)
            training = doctor.check_training(loss, probes)
            t2 = time.perf_counter()
            doctor.diagnose_values(probes, values, training)
            t3 = time.perf_counter()
            vae.diagnose_loss(loss, model, x)
            totals.append(time.perf_counter() - t3)
            steps.append((t1 - t0, t2 - t1, t3 - t2))
        make, run, analyse = (statistics.median(s) for s in zip(*steps))
        print(f"{name:>34s} {make:7.3f} {run:9.3f} {analyse:9.3f} {statistics.median(totals):7.3f} "
              f"{max(totals):8.3f}")
    print(f"load average {os.getloadavg()[0]:.2f} after; seconds, median of {args.repeats}")


if __name__ == "__main__":
    main()
